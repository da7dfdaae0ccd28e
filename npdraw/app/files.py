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
    if not paths:
        raise DataError("no images given; expected PNG images or NPZ files of images")
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


# The PNG modes read, per number of channels the model takes: 8-bit grey and bilevel for grey models (16-bit
# grey at its true depth, scaled to 0-255), 8-bit RGB for colour ones.  Anything else (a palette, an alpha
# channel, 32-bit or float pixels) is refused: converting it silently would score another image.
GREY_MODES = {"L": 255, "1": 255, "I;16": 65535, "I;16B": 65535, "I;16L": 65535}
COLOUR_MODES = {"RGB": 255}
MAX_NPZ_VALUES = 100_000_000   # numbers an NPZ's image array may declare (400 MB of float32): read no larger


def _expected(channels: int, side: int) -> str:
    colour = "grey PNG (8-bit L, 1-bit, or 16-bit)" if channels == 1 else "8-bit RGB PNG"
    return f"{side}x{side} {colour} images, ink bright (--invert for dark ink on light paper)"


def _image(path: Path, channels: int, side: int) -> np.ndarray:
    modes = GREY_MODES if channels == 1 else COLOUR_MODES
    try:
        with Image.open(path) as img:
            mode, size = img.mode, img.size
            # The header's size is checked before any pixel is decoded: a header may claim any size.
            if size != (side, side):
                raise DataError(f"{path}: {size[0]}x{size[1]} pixels; this model takes {_expected(channels, side)}")
            if mode not in modes:
                raise DataError(f"{path}: an image of mode {mode} ({_MODE_NAMES.get(mode, 'not read here')}); this "
                                f"model takes {_expected(channels, side)}; convert it first")
            img.load()
            array = np.asarray(img.convert("L") if mode == "1" else img)
    except Image.DecompressionBombError as err:   # raised by Image.open itself, from the header's size
        raise DataError(f"{path}: its header claims a huge image ({err}); this model takes "
                        f"{_expected(channels, side)}") from None
    except (UnidentifiedImageError, OSError) as err:
        raise DataError(f"{path}: not an image PIL can read ({err}); expected a PNG of "
                        f"{_expected(channels, side)}") from None
    if modes[mode] != 255:   # 16-bit grey: its true depth, rounded to 8 bits
        array = np.round(array.astype(np.float64) * 255 / modes[mode])
    array = array.transpose(2, 0, 1) if array.ndim == 3 else array
    return array.reshape(channels, side, side).astype(np.uint8)


_MODE_NAMES = {"P": "a palette", "LA": "grey with alpha", "RGBA": "colour with alpha", "I": "32-bit integers",
               "F": "32-bit floats", "CMYK": "CMYK", "RGB": "colour", "L": "8-bit grey", "PA": "palette with alpha"}


def _npz(path: Path, channels: int, side: int) -> np.ndarray:
    try:
        with np.load(path) as f:
            keys = list(f.files)
            key = "images" if "images" in keys else keys[0] if len(keys) == 1 else None
            if key is None:
                raise DataError(f"{path}: arrays {keys}; expected one named 'images' (or a single array)")
            shape, dtype = _declared(f.zip, f"{key}.npy")
            if int(np.prod(shape, dtype=np.float64)) > MAX_NPZ_VALUES:
                raise DataError(f"{path}: array '{key}' declares shape {shape}, more than {MAX_NPZ_VALUES:,} values; "
                                f"expected (N, {channels}, {side}, {side}) images")
            array = f[key]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise DataError(f"{path}: not a readable NPZ file ({err})") from None
    if array.ndim == 3 and channels == 1:
        array = array[:, None]
    if array.ndim != 4 or array.shape[1:] != (channels, side, side):
        raise DataError(f"{path}: array '{key}' of shape {array.shape}; expected (N, {channels}, {side}, {side}) "
                        f"or (N, {side}, {side}): {_expected(channels, side)}")
    if array.dtype != np.uint8:
        unit = np.issubdtype(array.dtype, np.floating) and np.isfinite(array).all()
        if unit and (not array.size or 0 <= array.min() <= array.max() <= 1):
            array = np.round(array * 255)
        else:
            raise DataError(f"{path}: array '{key}' of {array.dtype}; expected uint8 levels 0-255 or finite floats "
                            f"in [0, 1]")
    return array.astype(np.uint8)


def _declared(archive: zipfile.ZipFile, member: str) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype an NPZ member's header declares, read before its data."""
    with archive.open(member) as f:
        major, _ = np.lib.format.read_magic(f)
        header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, _, dtype = header(f)
    return shape, dtype


def write_output(path: str | Path, picture: Image.Image | None, arrays: dict[str, np.ndarray]) -> Path:
    """`picture` as PNG, or `arrays` as NPZ, by the file's suffix (.png or .npz), written atomically; a folder
    at `path`, a parent that is a file or another suffix is refused before anything is written."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".npz") or (suffix == ".png" and picture is None):
        allowed = "a .npz" if picture is None else "a .png (a picture) or .npz"
        raise DataError(f"{path}: expected {allowed} (the arrays) file name")
    if suffix == ".npz":
        write_npz(path, **arrays)
    else:
        with atomic_path(path) as tmp:
            picture.save(tmp, format="PNG")
    return path
