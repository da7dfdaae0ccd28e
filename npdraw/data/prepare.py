"""The prepare_data stage: source files -> compact arrays + a JSON manifest.

Output folder (written whole, then renamed into place):
  train_images.npy, test_images.npy   uint8 (N, C, H, W), ink / intensity 0..255
  train_labels.npy, test_labels.npy   int64 class labels (MNIST, CIFAR-10)
  train_alphabets.npy, train_characters.npy, ... (Omniglot)
  manifest.json                       counts, shapes, source files and checksums
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from npdraw.data import formats
from npdraw.data.sources import SOURCES, DataError, locate
from npdraw.artifacts.io import atomic_path

log = logging.getLogger(__name__)


def load_source(source: str, ds: dict, dataset: str, allow_download: bool = True) -> tuple[dict, dict]:
    """Locate and read a dataset's files; return (arrays, provenance)."""
    fmt, paths, sums = locate(SOURCES[source], dataset, allow_download)
    log.info("%s: reading %s format from %s", dataset, fmt, sorted({str(p.parent) for p in paths.values()}))
    extra: dict = {}
    if source == "mnist_idx":
        arrays = formats.load_mnist(paths)
        static = static_mnist_test()
        if static is not None:
            arrays["static_test_images"], extra["static_test"] = static
    elif source == "binarized_mnist_mat":
        arrays = formats.load_binarized_mnist(paths, fmt)
        extra["official_valid"] = "last 10000 of train"
    elif source == "omniglot":
        if fmt == "chardata":
            arrays, names = formats.load_omniglot_chardata(paths["chardata.mat"])
            extra["split"] = "IWAE (Burda et al.) chardata.mat"
        else:
            loader = formats.load_omniglot_npz if fmt == "npz" else formats.load_omniglot_zip
            arrays, names = loader(paths, ds["image_size"])
            extra["split"] = "per character: drawers 1-15 train, 16-20 test; 105x105 -> 28x28 by PIL BOX"
        extra["alphabet_names"] = names
    elif source == "cifar10_python":
        arrays = formats.load_cifar10(paths["cifar-10-python.tar.gz"])
    elif source == "celeba":
        arrays = formats.load_celeba(paths, fmt, ds["image_size"])
        extra["split"] = "train partition 0; test = 'valid' partition 1"
    else:  # the schema admits only the sources above
        raise ValueError(f"unknown source {source!r}")
    provenance = {
        "format": fmt,
        "files": {name: {"path": str(p), **sums.get(name, {})} for name, p in sorted(paths.items())},
        **extra,
    }
    return arrays, provenance


def static_mnist_test() -> tuple[np.ndarray, dict] | None:
    """Larochelle's statically binarized MNIST test set, if the mirror or cache has it (never downloaded
    here): MNIST's NLL is also reported on it, for comparison with the literature (method §2)."""
    groups = {fmt: [f for f in files if "_test." in f.name]
              for fmt, files in SOURCES["binarized_mnist_mat"].items()}
    try:
        fmt, paths, sums = locate(groups, "binarized_mnist (test)", allow_download=False)
    except DataError:
        log.info("Larochelle binarized MNIST test set not found: its NLL will not be reported")
        return None
    (name, path), = paths.items()
    x = formats.read_amat(path) if fmt == "amat" else formats.read_binarized_mat(path)
    return (x.reshape(-1, 1, 28, 28) * 255).astype(np.uint8), {"file": str(path), **sums[name]}


def check_arrays(arrays: dict[str, np.ndarray], ds: dict, dataset: str) -> None:
    """Images must match the configured size and channels; per-split arrays must agree in length."""
    want = (ds["channels"], ds["image_size"], ds["image_size"])
    for split in ("train", "test"):
        images = arrays[f"{split}_images"]
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != want:
            raise DataError(
                f"dataset {dataset!r}: {split} images are {images.dtype} {images.shape[1:]}, expected uint8 "
                f"(C, H, W) = {want} from datasets.{dataset}.channels / image_size"
            )
        if len(images) == 0:
            raise DataError(f"dataset {dataset!r}: the {split} set is empty")
        for key, value in arrays.items():
            if key.startswith(f"{split}_") and len(value) != len(images):
                raise DataError(f"dataset {dataset!r}: {key} has {len(value)} rows, {split}_images has {len(images)}")
            if key.endswith(("_labels", "_alphabets", "_characters")) and (
                    value.dtype.kind not in "iu" or value.ndim != 1 or (len(value) and value.min() < 0)):
                raise DataError(f"dataset {dataset!r}: {key} is {value.dtype} {value.shape}, expected one "
                                f"non-negative whole-number class index per image")


def prepare(dataset: str, ds: dict, out_dir: str | Path, allow_download: bool = True) -> dict:
    """Build the prepared folder for one dataset; return its manifest."""
    start = time.perf_counter()
    arrays, provenance = load_source(ds["source"], ds, dataset, allow_download)
    check_arrays(arrays, ds, dataset)
    manifest = {
        "dataset": dataset,
        "source": ds["source"],
        "counts": {s: int(len(arrays[f"{s}_images"])) for s in ("train", "test", "static_test")
                   if f"{s}_images" in arrays},
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in sorted(arrays.items())},
        "provenance": provenance,
        "seconds": round(time.perf_counter() - start, 2),
    }
    with atomic_path(out_dir, directory=True) as tmp:
        tmp.mkdir()
        for key, value in arrays.items():
            np.save(tmp / f"{key}.npy", value)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("%s: %s train / %s test images -> %s (%.1f s)", dataset, manifest["counts"]["train"],
             manifest["counts"]["test"], out_dir, manifest["seconds"])
    return manifest


def load_prepared(folder: str | Path, cfg=None, mmap: bool = True) -> dict[str, np.ndarray]:
    """Read a prepared folder back (memory-mapped by default); with a run's `cfg`, check that its
    images have the dataset's configured size, channels and dtype."""
    folder = Path(folder)
    if not (folder / "manifest.json").is_file():
        raise DataError(f"{folder}: not a prepared dataset (no manifest.json); run the prepare_data stage")
    try:
        arrays = {p.stem: np.load(p, mmap_mode="r" if mmap else None) for p in sorted(folder.glob("*.npy"))}
    except (ValueError, OSError) as err:
        raise DataError(f"{folder}: a prepared array is unreadable ({err}); rerun the prepare_data stage") from None
    if cfg is not None:
        try:
            check_arrays(arrays, cfg.ds, cfg.dataset)
        except (DataError, KeyError) as err:
            raise DataError(f"{folder}: {err}") from None
    return arrays
