"""Pictures a person would rather look at than read: grids of images."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def to_uint8(x) -> np.ndarray:
    """float [0, 1] (N, C, H, W) (numpy or torch) -> uint8 (N, H, W, C)."""
    x = np.asarray(x, dtype=np.float32)
    return np.rint(np.clip(x, 0.0, 1.0) * 255).astype(np.uint8).transpose(0, 2, 3, 1)


def image_grid(images, ncol: int, scale: int = 2, pad: int = 2, pad_value: int = 128) -> Image.Image:
    """Tile (N, C, H, W) images in [0, 1] into one picture, ncol per row, each upscaled by `scale`."""
    tiles = to_uint8(images)
    n, h, w, c = tiles.shape
    nrow = -(-n // ncol)
    out = np.full((nrow * (h + pad) + pad, ncol * (w + pad) + pad, c), pad_value, np.uint8)
    for i, tile in enumerate(tiles):
        r, col = divmod(i, ncol)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + col * (w + pad):pad + col * (w + pad) + w] = tile
    img = Image.fromarray(out[..., 0] if c == 1 else out)
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST)


def titled(image: Image.Image, title: str) -> Image.Image:
    """Add a one-line caption above a picture."""
    band = 16
    out = Image.new("RGB", (max(image.width, 8 * len(title)), image.height + band), "white")
    out.paste(image.convert("RGB"), (0, band))
    ImageDraw.Draw(out).text((2, 2), title, fill="black")
    return out


def pairs_grid(left, right, ncol_pairs: int = 8, scale: int = 3) -> Image.Image:
    """Interleave two same-shaped batches as left|right pairs (e.g. image | parsed canvas)."""
    left, right = np.asarray(left), np.asarray(right)
    both = np.stack([left, right], axis=1).reshape(-1, *left.shape[1:])
    return image_grid(both, ncol=2 * ncol_pairs, scale=scale)
