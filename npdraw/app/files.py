"""Images in and out of the `npdraw` command: PNG files (one image each) or NPZ files (an array of images),
read with a message that names the file and says what is expected when it is not an image, or an image
of another size or colour than the model takes."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from npdraw.artifacts.errors import DataError
from npdraw.artifacts.io import atomic_path, write_npz


def read_images(paths: list[str | Path], channels: int, side: int,
                invert: bool = False) -> tuple[np.ndarray, list[str]]:
    """uint8 (N, C, side, side) from PNG files (one image each; grey for C = 1, RGB for C = 3) and NPZ files
    (key `images`, or their only array: (N, side, side) or (N, C, side, side) uint8), and a name for each
    image (the file, with [i] for an NPZ's i-th).  `invert`: dark ink on a light background, as most
    drawings are, turned into the model's bright ink."""
    out, names = [], []
    for path in map(Path, paths):
        if not path.is_file():
            raise DataError(f"{path}: no such file (expected a PNG image or an NPZ file of images)")
        if path.suffix.lower() == ".npz":
            array = _npz(path, channels, side)
            names += [f"{path}[{i}]" for i in range(len(array))]
        else:
            array = _image(path, channels, side)[None]
            names.append(str(path))
        out.append(array)
    images = np.concatenate(out)
    return (255 - images if invert else images), names


def _expected(channels: int, side: int) -> str:
    colour = "grey (one channel)" if channels == 1 else "RGB"
    return f"{side}x{side} {colour} images, ink bright (--invert for dark ink on light paper)"


def _image(path: Path, channels: int, side: int) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img.load()
            mode, size = img.mode, img.size
            if channels == 1 and mode in ("L", "1", "P", "LA", "I", "I;16"):
                array = np.asarray(img.convert("L"))
            elif channels == 3 and mode in ("RGB", "RGBA", "P"):
                array = np.asarray(img.convert("RGB")).transpose(2, 0, 1)
            else:
                raise DataError(f"{path}: an image of mode {mode}; this model takes {_expected(channels, side)}")
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{path}: not an image PIL can read ({err}); expected a PNG of "
                        f"{_expected(channels, side)}") from None
    if size != (side, side):
        raise DataError(f"{path}: {size[0]}x{size[1]} pixels; this model takes {_expected(channels, side)}")
    return array.reshape(channels, side, side).astype(np.uint8)


def _npz(path: Path, channels: int, side: int) -> np.ndarray:
    try:
        with np.load(path) as f:
            keys = list(f.files)
            key = "images" if "images" in keys else keys[0] if len(keys) == 1 else None
            if key is None:
                raise DataError(f"{path}: arrays {keys}; expected one named 'images' (or a single array)")
            array = f[key]
    except (zipfile.BadZipFile, ValueError, OSError) as err:
        raise DataError(f"{path}: not a readable NPZ file ({err})") from None
    if array.ndim == 3 and channels == 1:
        array = array[:, None]
    if array.ndim != 4 or array.shape[1:] != (channels, side, side):
        raise DataError(f"{path}: array '{key}' of shape {array.shape}; expected (N, {channels}, {side}, {side}) "
                        f"or (N, {side}, {side}): {_expected(channels, side)}")
    if array.dtype != np.uint8:
        unit = np.issubdtype(array.dtype, np.floating) and np.isfinite(array).all()
        if unit and 0 <= array.min() <= array.max() <= 1:
            array = np.round(array * 255)
        else:
            raise DataError(f"{path}: array '{key}' of {array.dtype}; expected uint8 levels 0-255 or floats in [0, 1]")
    return array.astype(np.uint8)


def write_output(path: str | Path, picture: Image.Image, arrays: dict[str, np.ndarray]) -> Path:
    """`picture` as PNG, or `arrays` as NPZ, by the file's suffix (.png or .npz), written atomically."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        write_npz(path, **arrays)
    elif path.suffix.lower() == ".png":
        with atomic_path(path) as tmp:
            picture.save(tmp, format="PNG")
    else:
        raise DataError(f"{path}: expected a .png (a picture) or .npz (the arrays) file name")
    return path
