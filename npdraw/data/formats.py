"""Readers for the published dataset formats.

Every reader returns uint8 images shaped (N, C, H, W) (ink = 255 for the
binary / stroke datasets) and raises DataError naming the file when the file
is truncated, corrupt or not what it claims to be.
"""

from __future__ import annotations

import csv
import gzip
import io
import pickle
import re
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image
from tqdm import tqdm

from npdraw.data.sources import DataError

# --- MNIST IDX (LeCun) ----------------------------------------------------------------


def read_idx(path: Path) -> np.ndarray:
    """Read a gzipped IDX file (magic 2051 images or 2049 labels) into an array."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:  # BadGzipFile is an OSError
        raise DataError(f"{path}: not a readable gzip file ({err}); the download is truncated or corrupt") from None
    if len(raw) < 8:
        raise DataError(f"{path}: {len(raw)} bytes, too short for an IDX header")
    magic = struct.unpack(">I", raw[:4])[0]
    ndim = {2049: 1, 2051: 3}.get(magic)
    if ndim is None:
        raise DataError(f"{path}: IDX magic number {magic}, expected 2049 (labels) or 2051 (images)")
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise DataError(f"{path}: header promises {dims} = {expected} bytes of data, found {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def load_mnist(paths: dict[str, Path]) -> dict[str, np.ndarray]:
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(paths[f"{prefix}-images-idx3-ubyte.gz"])
        labels = read_idx(paths[f"{prefix}-labels-idx1-ubyte.gz"])
        if len(images) != len(labels):
            raise DataError(f"MNIST {split}: {len(images)} images but {len(labels)} labels")
        out[f"{split}_images"] = images[:, None]
        out[f"{split}_labels"] = labels.astype(np.int64)
    return out


# --- Larochelle binarized MNIST -----------------------------------------------------------


def read_amat(path: Path) -> np.ndarray:
    """Larochelle's text format: one image per line, 784 values '0'/'1' separated by spaces."""
    raw = np.fromfile(path, dtype=np.uint8)
    row_bytes = 784 * 2  # 784 single-digit values, each followed by ' ' or '\n'
    if raw.size == 0 or raw.size % row_bytes:
        raise DataError(f"{path}: {raw.size} bytes is not a whole number of 784-value rows; truncated or not .amat")
    rows = raw.reshape(-1, row_bytes)
    digits, seps = rows[:, 0::2], rows[:, 1::2]
    if not (np.isin(digits, (ord("0"), ord("1"))).all() and (seps[:, :-1] == ord(" ")).all() and (seps[:, -1] == ord("\n")).all()):
        raise DataError(f"{path}: expected rows of 784 space-separated 0/1 values")
    return (digits - ord("0")).astype(np.uint8)


def read_binarized_mat(path: Path) -> np.ndarray:
    try:
        x = scipy.io.loadmat(path)["X"]
    except Exception as err:  # scipy raises several types for corrupt files
        raise DataError(f"{path}: not a readable MATLAB file with an 'X' array ({err})") from None
    if x.ndim != 2 or x.shape[1] != 784 or not np.isin(x, (0, 1)).all():
        raise DataError(f"{path}: 'X' should be N x 784 with values 0/1, got shape {x.shape}")
    return x.astype(np.uint8)


def load_binarized_mnist(paths: dict[str, Path], fmt: str) -> dict[str, np.ndarray]:
    """Train and the official validation set are stored together, validation last (n_valid = 10000)."""
    read = read_amat if fmt == "amat" else read_binarized_mat
    parts = {s: read(paths[f"binarized_mnist_{s}.{fmt}"]) for s in ("train", "valid", "test")}
    as_images = lambda x: (x.reshape(-1, 1, 28, 28) * 255).astype(np.uint8)  # noqa: E731
    return {
        "train_images": as_images(np.concatenate([parts["train"], parts["valid"]])),
        "test_images": as_images(parts["test"]),
    }


# --- Omniglot -------------------------------------------------------------------------------


def downsample_box(ink: np.ndarray, size: int) -> np.ndarray:
    """Area-average a (H, W) float image to (size, size) with PIL's BOX filter."""
    return np.asarray(Image.fromarray(ink.astype(np.float32)).resize((size, size), Image.BOX))


def _omniglot_arrays(records, size: int, alphabet_order: list[str]) -> dict[str, np.ndarray]:
    """records: (char_number, drawer, alphabet, ink float HxW). Drawers 1-15 train, 16-20 test."""
    records = sorted(records, key=lambda r: (r[0], r[1]))
    alpha_id = {name: i for i, name in enumerate(alphabet_order)}
    out: dict[str, list] = {f"{s}_{k}": [] for s in ("train", "test") for k in ("images", "characters", "alphabets")}
    for char_number, drawer, alphabet, ink in tqdm(records, desc="omniglot 28x28", mininterval=2):
        split = "train" if drawer <= 15 else "test"
        small = ink if ink.shape[0] == size else downsample_box(ink, size)
        out[f"{split}_images"].append(np.rint(np.clip(small, 0, 1) * 255).astype(np.uint8))
        out[f"{split}_characters"].append(char_number - 1)
        out[f"{split}_alphabets"].append(alpha_id[alphabet])
    arrays = {k: np.asarray(v) for k, v in out.items()}
    for s in ("train", "test"):
        arrays[f"{s}_images"] = arrays[f"{s}_images"][:, None]
        arrays[f"{s}_characters"] = arrays[f"{s}_characters"].astype(np.int64)
        arrays[f"{s}_alphabets"] = arrays[f"{s}_alphabets"].astype(np.int64)
    return arrays


def read_characters_csv(path: Path) -> dict[int, tuple[str, str]]:
    """char_number -> (set, alphabet) from the mirror's characters.csv."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or set(rows[0]) != {"char_number", "set", "alphabet", "character"}:
        raise DataError(f"{path}: expected header char_number,set,alphabet,character")
    return {int(r["char_number"]): (r["set"], r["alphabet"]) for r in rows}


def load_omniglot_npz(paths: dict[str, Path], size: int) -> tuple[dict[str, np.ndarray], list[str]]:
    chars = read_characters_csv(paths["characters.csv"])
    records, order = [], []
    for name, first in (("images_background.npz", 1), ("images_evaluation.npz", 965)):
        try:
            with np.load(paths[name]) as z:
                white = z["images"]
        except Exception as err:
            raise DataError(f"{paths[name]}: not a readable npz with an 'images' array ({err})") from None
        if white.ndim != 4 or white.shape[1] != 20:
            raise DataError(f"{paths[name]}: 'images' should be (characters, 20, H, W), got {white.shape}")
        for i in range(white.shape[0]):
            alphabet = chars[first + i][1]
            if alphabet not in order:
                order.append(alphabet)
            for d in range(20):
                records.append((first + i, d + 1, alphabet, (~white[i, d]).astype(np.float32)))
    return _omniglot_arrays(records, size, order), order


_OMNIGLOT_PNG = re.compile(r"images_(?:background|evaluation)/([^/]+)/character\d+/(\d+)_(\d+)\.png$")


def load_omniglot_zip(paths: dict[str, Path], size: int) -> tuple[dict[str, np.ndarray], list[str]]:
    records = []
    for name in ("images_background.zip", "images_evaluation.zip"):
        try:
            with zipfile.ZipFile(paths[name]) as zf:
                for entry in zf.namelist():
                    m = _OMNIGLOT_PNG.search(entry)
                    if m:
                        png = Image.open(io.BytesIO(zf.read(entry))).convert("L")
                        ink = 1.0 - np.asarray(png, dtype=np.float32) / 255.0  # black strokes -> 1
                        records.append((int(m.group(2)), int(m.group(3)), m.group(1), ink))
        except (zipfile.BadZipFile, OSError) as err:
            raise DataError(f"{paths[name]}: not a readable zip archive ({err})") from None
    if not records:
        raise DataError(f"{paths['images_background.zip']}: no images_*/<alphabet>/characterNN/*.png entries")
    order = []
    for number, _, alphabet, _ in sorted(records, key=lambda r: r[0]):
        if alphabet not in order:
            order.append(alphabet)
    return _omniglot_arrays(records, size, order), order


def load_omniglot_chardata(path: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """IWAE's chardata.mat: 784 x N matrices in column-major order, ink = 1."""
    try:
        m = scipy.io.loadmat(path)
    except Exception as err:
        raise DataError(f"{path}: not a readable MATLAB file ({err})") from None
    out = {}
    for split, prefix in (("train", ""), ("test", "test")):
        try:
            data, target, targetchar = m[f"{prefix}data"], m[f"{prefix}target"], m[f"{prefix}targetchar"]
        except KeyError as err:
            raise DataError(f"{path}: missing matrix {err}; expected data/target/targetchar and test*") from None
        n = data.shape[1]
        images = data.T.reshape(n, 28, 28).transpose(0, 2, 1)  # column-major pixels
        out[f"{split}_images"] = np.rint(np.clip(images, 0, 1) * 255).astype(np.uint8)[:, None]
        out[f"{split}_alphabets"] = np.argmax(target, axis=0).astype(np.int64)
        out[f"{split}_characters"] = np.asarray(targetchar).ravel().astype(np.int64)
    names = [f"alphabet{i:02d}" for i in range(int(out["train_alphabets"].max()) + 1)]
    return out, names


# --- CIFAR-10 -----------------------------------------------------------------------------


def load_cifar10(path: Path) -> dict[str, np.ndarray]:
    """cifar-10-python.tar.gz: pickled batches of (10000, 3072) uint8 rows, CHW order."""
    batches = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if re.fullmatch(r"data_batch_[1-5]|test_batch", name):
                    batches[name] = pickle.load(tar.extractfile(member), encoding="bytes")
    except (tarfile.TarError, OSError, EOFError, pickle.UnpicklingError) as err:
        raise DataError(f"{path}: not a readable CIFAR-10 tar.gz ({err}); truncated or corrupt") from None
    expected = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [b for b in expected if b not in batches]
    if missing:
        raise DataError(f"{path}: missing batches {missing} (expected cifar-10-batches-py/data_batch_1..5, test_batch)")
    out = {}
    for split, names in (("train", expected[:5]), ("test", expected[5:])):
        data = np.concatenate([np.asarray(batches[b][b"data"], dtype=np.uint8) for b in names])
        if data.ndim != 2 or data.shape[1] != 3072:
            raise DataError(f"{path}: {split} rows have {data.shape[1:]} values, expected 3072 (3x32x32)")
        out[f"{split}_images"] = data.reshape(-1, 3, 32, 32)
        out[f"{split}_labels"] = np.concatenate([batches[b][b"labels"] for b in names]).astype(np.int64)
    return out


# --- CelebA -------------------------------------------------------------------------------

CELEBA_CROP = 148


def celeba_image(data: bytes | Path, size: int) -> np.ndarray:
    """Centre-crop 148x148 and resize to size x size (bilinear, PIL antialiases)."""
    img = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data).convert("RGB")
    w, h = img.size
    left, top = (w - CELEBA_CROP) // 2, (h - CELEBA_CROP) // 2
    img = img.crop((left, top, left + CELEBA_CROP, top + CELEBA_CROP)).resize((size, size), Image.BILINEAR)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


def load_celeba(paths: dict[str, Path], fmt: str, size: int) -> dict[str, np.ndarray]:
    """Train partition (0) for training; the 'valid' partition (1) as the test set (as the authors' code)."""
    partition = {}
    txt = paths["list_eval_partition.txt"]
    for line_no, line in enumerate(txt.read_text().splitlines(), 1):
        fields = line.split()
        if len(fields) != 2 or fields[1] not in "012":
            raise DataError(f"{txt}:{line_no}: expected '<file>.jpg <0|1|2>', got {line!r}")
        partition[fields[0]] = int(fields[1])
    wanted = {"train": sorted(f for f, p in partition.items() if p == 0),
              "test": sorted(f for f, p in partition.items() if p == 1)}
    out = {}
    if fmt == "zip":
        try:
            zf = zipfile.ZipFile(paths["img_align_celeba.zip"])
        except (zipfile.BadZipFile, OSError) as err:
            raise DataError(f"{paths['img_align_celeba.zip']}: not a readable zip archive ({err})") from None
        read = lambda f: zf.read(f"img_align_celeba/{f}")  # noqa: E731
    else:
        read = lambda f: paths["img_align_celeba"] / f  # noqa: E731
    try:
        for split, files in wanted.items():
            out[f"{split}_images"] = np.stack(
                [celeba_image(read(f), size) for f in tqdm(files, desc=f"celeba {split}", mininterval=2)]
            ) if files else np.zeros((0, 3, size, size), np.uint8)
    except (KeyError, FileNotFoundError) as err:
        raise DataError(f"CelebA: an image listed in {txt} is missing from the image archive/folder ({err})") from None
    return out
