"""Writers of tiny dataset files in the true published formats (for loader tests)."""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image


def write_idx(path: Path, array: np.ndarray) -> None:
    """LeCun IDX, gzipped: magic 2051 for (N, 28, 28) uint8 images, 2049 for labels."""
    magic = 2051 if array.ndim == 3 else 2049
    header = struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_mnist(folder: Path, n_train: int = 30, n_test: int = 10, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    data = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.arange(n_test, dtype=np.uint8) % 10,
    }
    for name, arr in data.items():
        write_idx(folder / name, arr)
    return data


def write_amat(path: Path, x: np.ndarray) -> None:
    """Larochelle's text format: 784 space-separated 0/1 values per line."""
    path.write_text("".join(" ".join(map(str, row)) + "\n" for row in x.reshape(len(x), -1)))


def write_binarized_mat(path: Path, x: np.ndarray) -> None:
    scipy.io.savemat(path, {"X": x.reshape(len(x), -1).astype(np.uint8)})


def write_cifar10(path: Path, per_batch: int = 4, seed: int = 0) -> dict:
    """cifar-10-python.tar.gz with data_batch_1..5 and test_batch (tiny batches)."""
    rng = np.random.default_rng(seed)
    batches = {}
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            batch = {b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                     b"labels": list(rng.integers(0, 10, per_batch).tolist())}
            batches[name] = batch
            raw = pickle.dumps(batch)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return batches


def celeba_jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    return buf.getvalue()


def write_celeba(folder: Path, partitions=(0, 0, 0, 1, 1, 2), as_zip: bool = True) -> list[str]:
    """img_align_celeba (zip or folder) of 178x218 JPEGs + list_eval_partition.txt."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{i + 1:06d}.jpg" for i in range(len(partitions))]
    (folder / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in zip(names, partitions)))
    if as_zip:
        with zipfile.ZipFile(folder / "img_align_celeba.zip", "w") as zf:
            for i, n in enumerate(names):
                zf.writestr(f"img_align_celeba/{n}", celeba_jpeg(i))
    else:
        (folder / "img_align_celeba").mkdir(exist_ok=True)
        for i, n in enumerate(names):
            (folder / "img_align_celeba" / n).write_bytes(celeba_jpeg(i))
    return names


def omniglot_stroke(seed: int, size: int = 105) -> np.ndarray:
    """A bool 'white background' image with one dark stroke (True = white, as the npz)."""
    rng = np.random.default_rng(seed)
    white = np.ones((size, size), bool)
    r = rng.integers(10, size - 30)
    white[r:r + 20, 30:40] = False
    return white


def write_omniglot_zip(folder: Path, alphabets=(("Alpha", 2), ("Beta", 1)), evaluation=(("Gamma", 1),)) -> int:
    """images_{background,evaluation}.zip with <alphabet>/characterNN/<number>_<drawer>.png (20 drawers)."""
    folder.mkdir(parents=True, exist_ok=True)
    number = 0
    for zname, alphas in (("images_background", alphabets), ("images_evaluation", evaluation)):
        with zipfile.ZipFile(folder / f"{zname}.zip", "w") as zf:
            for alphabet, n_chars in alphas:
                for c in range(n_chars):
                    number += 1
                    for d in range(1, 21):
                        buf = io.BytesIO()
                        Image.fromarray(omniglot_stroke(number * 100 + d)).convert("1").save(buf, format="PNG")
                        zf.writestr(f"{zname}/{alphabet}/character{c + 1:02d}/{number:04d}_{d:02d}.png", buf.getvalue())
    return number


def write_chardata(path: Path, n_train: int = 6, n_test: int = 3, seed: int = 0) -> dict:
    """IWAE chardata.mat: 784 x N matrices, column-major images, one-hot alphabets (50 x N)."""
    rng = np.random.default_rng(seed)
    out, images = {}, {}
    for prefix, n in (("", n_train), ("test", n_test)):
        imgs = rng.random((n, 28, 28))
        images[prefix] = imgs
        out[f"{prefix}data"] = imgs.transpose(0, 2, 1).reshape(n, 784).T  # column-major per image
        target = np.zeros((50, n))
        target[np.arange(n) % 3, np.arange(n)] = 1
        out[f"{prefix}target"] = target
        out[f"{prefix}targetchar"] = (np.arange(n) % 5 + 1)[None, :]
    scipy.io.savemat(path, out)
    return images
