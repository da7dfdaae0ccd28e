"""Where dataset files come from: the mirror folder, a download cache, or the web.

Lookup order for every file: `$NPDRAW_DATA/<folder>/<name>` (the data mirror;
on the project's machines `../shared/data`), then `$NPDRAW_CACHE/<folder>/<name>`
(default `data/downloads`), then a download from the canonical location into
the cache.  Every file with a known checksum is verified wherever it was found;
downloads land under a temporary name and are renamed only once verified.
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from npdraw.artifacts.errors import DataError
from npdraw.artifacts.io import atomic_path, file_digest

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DataFile:
    folder: str                # folder under the mirror / cache, e.g. "mnist"
    name: str                  # file (or folder, with is_dir) name in it
    md5: str | None = None
    sha256: str | None = None
    url: str | None = None     # canonical download location, if there is one
    is_dir: bool = False


def mirror_root() -> Path:
    env = os.environ.get("NPDRAW_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def cache_root() -> Path:
    env = os.environ.get("NPDRAW_CACHE")
    return Path(env) if env else REPO_ROOT / "data" / "downloads"


def candidates(f: DataFile) -> list[Path]:
    return [mirror_root() / f.folder / f.name, cache_root() / f.folder / f.name]


def present(f: DataFile) -> Path | None:
    for path in candidates(f):
        if (path.is_dir() if f.is_dir else path.is_file()):
            return path
    return None


def verify(path: Path, f: DataFile) -> dict:
    """Check the file's checksums; return {algorithm: digest} of what was checked."""
    checked = {}
    for algorithm, expected in (("sha256", f.sha256), ("md5", f.md5)):
        if expected is None:
            continue
        actual = file_digest(path, algorithm)
        if actual != expected:
            raise DataError(
                f"{path}: {algorithm} checksum mismatch: expected {expected}, got {actual}. "
                f"The file is corrupt, truncated or a different version; delete it and provide "
                f"the original (see shared/data/README.md or the dataset's home page)."
            )
        checked[algorithm] = actual
    if not checked and not f.is_dir:
        log.warning("%s: no published checksum known; used unverified", path)
    return checked


def download(f: DataFile) -> Path:
    """Fetch f.url into the cache, verify it, and rename it into place."""
    dest = cache_root() / f.folder / f.name
    log.info("downloading %s -> %s", f.url, dest)
    try:
        with atomic_path(dest) as tmp, urllib.request.urlopen(f.url, timeout=60) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with open(tmp, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=f.name) as bar:
                for block in iter(lambda: resp.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
            verify(tmp, f)
    except (urllib.error.URLError, OSError) as err:
        raise DataError(
            f"{f.folder}/{f.name}: not in the data mirror {mirror_root() / f.folder} and the download "
            f"from {f.url} failed ({err}). Put the file in the mirror (set NPDRAW_DATA) and rerun."
        ) from None
    return dest


def locate(groups: dict[str, list[DataFile]], dataset: str, allow_download: bool = True) -> tuple[str, dict[str, Path], dict]:
    """Find the first group of alternative files that is wholly present.

    `groups` maps a format name to the files it needs, in order of preference.
    If no group is present, the first group whose files all have URLs is
    downloaded.  Returns (format, {file name: path}, {file name: checksums}).
    """
    for fmt, files in groups.items():
        paths = {f.name: present(f) for f in files}
        if all(paths.values()):
            sums = {f.name: verify(paths[f.name], f) for f in files if not f.is_dir}
            return fmt, paths, sums
    if allow_download:
        for fmt, files in groups.items():
            if all(f.url for f in files):
                paths = {f.name: present(f) or download(f) for f in files}
                sums = {f.name: verify(paths[f.name], f) for f in files}
                return fmt, paths, sums
    lines = []
    for fmt, files in groups.items():
        missing = [f for f in files if present(f) is None]
        looked = "; ".join(" or ".join(str(p) for p in candidates(f)) for f in missing)
        lines.append(f"  {fmt}: missing {', '.join(f.name for f in missing)} (looked for {looked})")
    raise DataError(
        f"dataset {dataset!r}: no complete set of source files found. Any one of these formats will do:\n"
        + "\n".join(lines)
        + f"\nPlace the files in the data mirror {mirror_root()} (or point NPDRAW_DATA at a folder "
        f"that has them); see the README section 'Adding a dataset'."
    )


# --- the registry of source files, by dataset source --------------------------------

_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_LAROCHELLE_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
_OMNIGLOT_URL = "https://github.com/brendenlake/omniglot/raw/master/python/"

SOURCES: dict[str, dict[str, list[DataFile]]] = {
    "mnist_idx": {
        "idx": [
            DataFile("mnist", "train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                     "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                     _MNIST_URL + "train-images-idx3-ubyte.gz"),
            DataFile("mnist", "train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432",
                     "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                     _MNIST_URL + "train-labels-idx1-ubyte.gz"),
            DataFile("mnist", "t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3",
                     "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                     _MNIST_URL + "t10k-images-idx3-ubyte.gz"),
            DataFile("mnist", "t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c",
                     "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                     _MNIST_URL + "t10k-labels-idx1-ubyte.gz"),
        ],
    },
    "binarized_mnist_mat": {
        # Larochelle's text files (sha256 as in TFDS) or their MATLAB repack.
        "amat": [
            DataFile("binarized_mnist", "binarized_mnist_train.amat", None,
                     "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d",
                     _LAROCHELLE_URL + "binarized_mnist_train.amat"),
            DataFile("binarized_mnist", "binarized_mnist_valid.amat", None,
                     "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2",
                     _LAROCHELLE_URL + "binarized_mnist_valid.amat"),
            DataFile("binarized_mnist", "binarized_mnist_test.amat", None,
                     "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c",
                     _LAROCHELLE_URL + "binarized_mnist_test.amat"),
        ],
        "mat": [
            DataFile("binarized_mnist", "binarized_mnist_train.mat", "4e26f7a5b466cfcde0fa4876fa4b60a6",
                     "79a0312c7389d855cfc97e3812de3998417c5829d8a51543b56a90a91252ae7e"),
            DataFile("binarized_mnist", "binarized_mnist_valid.mat", "3c8c0bae400a11eda4c6caf6642d7d34",
                     "7436afc856959075c7787025bb8a4ba2b520b9230ee39667c66aa7dd2819dd68"),
            DataFile("binarized_mnist", "binarized_mnist_test.mat", "3478bd31ef84368bf30234a011d886fa",
                     "5bc30222e1e7896cbccd1e1db6b28540cc1230f4d2d5473841a5f6cc54be8d38"),
        ],
    },
    "omniglot": {
        # IWAE's 28x28 split (Burda et al.) when present: no published checksum.
        "chardata": [DataFile("omniglot", "chardata.mat")],
        "npz": [
            DataFile("omniglot", "images_background.npz", "042c0a3e1688c4f4dc9d7213db63ee80",
                     "8bf84167413cd00beacdce3fe582f780ab538d8dbef043a6d688f2527bbce199"),
            DataFile("omniglot", "images_evaluation.npz", "a6277b6770b9241c6906fa797456e652",
                     "0b84c7ffd94c4841c0040e529c86a82eaaccb986d8eadad5673f7991b7475276"),
            DataFile("omniglot", "characters.csv", "df220d7df409f2fb5c7e92ce4e6c13c0",
                     "ed4ce1fb7d11af20d755be788045eefe5553138a93fa6756f3552f449e175643"),
        ],
        "zip": [
            DataFile("omniglot", "images_background.zip", "68d2efa1b9178cc56df9314c21c6e718",
                     None, _OMNIGLOT_URL + "images_background.zip"),
            DataFile("omniglot", "images_evaluation.zip", "6b91aef0f799c5bb55b94e3f2daec811",
                     None, _OMNIGLOT_URL + "images_evaluation.zip"),
        ],
    },
    "cifar10_python": {
        "tar": [
            DataFile("cifar10", "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                     None, "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
        ],
    },
    "celeba": {
        # CelebA is distributed through Google Drive after accepting its licence:
        # no automatic download; place the files in the mirror's celeba/ folder.
        "zip": [
            DataFile("celeba", "img_align_celeba.zip", "00d2c5bc6d35e252742224ab0c1e8fcb"),
            DataFile("celeba", "list_eval_partition.txt", "d32c9cbf5e040fd4025c592c306e6668"),
        ],
        "dir": [
            DataFile("celeba", "img_align_celeba", is_dir=True),
            DataFile("celeba", "list_eval_partition.txt", "d32c9cbf5e040fd4025c592c306e6668"),
        ],
    },
}
