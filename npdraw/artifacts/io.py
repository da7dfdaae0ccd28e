"""Atomic writes: a killed stage never leaves a file that looks finished.

Every output is written under a temporary name in the destination folder and
renamed into place only once complete (rename is atomic on one filesystem).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

# The temporary of `<dest>` is `.<dest name>.<random>.tmp` in dest's folder; TEMPORARY_GLOB finds the
# ones a killed process left (npdraw.workflow.recovery).
TEMPORARY_SUFFIX = ".tmp"
TEMPORARY_GLOB = ".*" + TEMPORARY_SUFFIX


@contextlib.contextmanager
def atomic_path(dest: str | Path, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `dest`; rename it to `dest` on success.

    A file output (the default) replaces a file and nothing else: an existing folder at `dest`, a parent
    that is a file, or a name the file system refuses is an ArtifactError naming the path, raised before
    anything is written.  With `directory`, whatever the caller creates at the temporary path (a folder)
    replaces the folder at `dest`; a file there is refused.  On an exception the temporary is removed.
    """
    from npdraw.artifacts.errors import ArtifactError

    dest = Path(dest)
    try:
        _check_destination(dest, directory)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=TEMPORARY_SUFFIX, dir=dest.parent))
    except OSError as err:   # a name too long, a read-only folder, ...
        raise ArtifactError(f"{dest}: cannot be written here ({err.strerror or err})") from None
    tmp.rmdir()  # the caller decides whether it becomes a file or a directory
    try:
        yield tmp
        if directory and dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def _check_destination(dest: Path, directory: bool) -> None:
    """An ArtifactError unless `dest` may be replaced by a file (a folder is never replaced by one) or, with
    `directory`, by a folder; and unless every existing parent is a folder."""
    from npdraw.artifacts.errors import ArtifactError

    if dest.is_dir() and not dest.is_symlink() and not directory:
        raise ArtifactError(f"{dest}: a folder is there; expected a file name (nothing in the folder was touched)")
    if dest.is_file() and directory:
        raise ArtifactError(f"{dest}: a file is there; expected a folder name (the file was not touched)")
    for parent in dest.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ArtifactError(f"{dest}: its parent {parent} is a file, not a folder")
            return


def write_json(dest: str | Path, obj: Any) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


# np.savez stamps every member with the current time, so two identical results would differ
# byte for byte (and in their DVC hash); members written here carry this fixed date instead.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def write_npz(dest: str | Path, **arrays: np.ndarray) -> None:
    """np.savez's format (np.load reads it), byte-identical for identical arrays."""
    with atomic_path(dest) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            with archive.open(zipfile.ZipInfo(f"{name}.npy", _ZIP_EPOCH), "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def write_npy(dest: str | Path, array: np.ndarray) -> None:
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)


def save_torch(dest: str | Path, obj: Any) -> None:
    """torch.save atomically.  Saved through a file object: given a path, torch names the archive's
    root folder after the (random) temporary's name, and identical checkpoints would differ."""
    import torch

    with atomic_path(dest) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)


def save_image(dest: str | Path, image) -> None:
    """Save a PIL image atomically (format from dest's suffix)."""
    dest = Path(dest)
    with atomic_path(dest) as tmp:
        image.save(tmp, format=dest.suffix.lstrip(".").upper().replace("JPG", "JPEG"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_checkpoint(path: str | Path, map_location="cpu", weights_only: bool = True) -> dict:
    """torch.load a checkpoint this pipeline wrote; a missing or unreadable file is a CheckpointError
    naming it (its kind, keys and configuration are the reader's contract: npdraw.artifacts.contracts)."""
    import torch

    from npdraw.artifacts.errors import CheckpointError

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found; run the stage that writes it first")
    damaged = _zip_damage(path)
    if damaged:
        raise CheckpointError(f"{path}: damaged ({damaged}); it does not load. Rerun the stage that writes it, or "
                              f"restore the file (a download cut short, a disk error)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=weights_only)
    except Exception as err:   # torch raises several types for damaged files (RuntimeError, UnpicklingError, ...)
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__}: {str(err)[:200]}); "
                              f"rerun the stage that writes it") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a readable checkpoint (expected a dict of tensors and settings, got "
                              f"{type(ckpt).__name__}); rerun the stage that writes it")
    return ckpt


def _zip_damage(path: Path) -> str | None:
    """Why a checkpoint's archive fails its own checksums (torch.save writes a zip whose every member carries
    a CRC-32, which torch.load does not check: a flipped byte would load), or None when it is whole."""
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        return f"not a whole zip archive: {err}"
    return None if bad is None else f"member {bad} fails its CRC-32 check"


def read_arrays(path: str | Path, what: str, writer: str, name: str = "array") -> dict[str, np.ndarray]:
    """The arrays of an .npy (under `name`) or .npz file, loaded whole; a missing or unreadable file is
    an ArtifactError naming it and the stage that writes it."""
    from npdraw.artifacts.errors import ArtifactError

    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: {what} not found; run the {writer} stage first (or fix the path)")
    try:
        with open(path, "rb") as f:
            loaded = np.load(f, allow_pickle=False)
            if isinstance(loaded, np.ndarray):
                return {name: loaded}
            with loaded:
                return {name: loaded[name] for name in loaded.files}
    except Exception as err:   # numpy raises ValueError, OSError, zipfile.BadZipFile, EOFError, ... for damage
        raise ArtifactError(f"{path}: not a readable {what} ({type(err).__name__}: {str(err)[:200]}); rerun the "
                            f"{writer} stage") from None


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes (`algorithm` as hashlib names it: a download's checksum, a committed
    artifact's identity in the records that use it)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

