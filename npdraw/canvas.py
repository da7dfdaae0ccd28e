"""The latent canvas: grid geometry, cells <-> images, and rendering (SPEC 3 and 6).

The canvas (side S) is cut into an n x n grid of K x K cells after zero padding
to n*K, split evenly.  A step draws one bank part into one cell; the canvas is
the element-wise max of everything drawn.  Parts never straddle cells, so the
canvas is computed per cell with a scatter-max: no loop over steps.
Shapes: B images, T steps, T_c = n*n cells, M parts, D = C*K*K values per cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Grid:
    side: int        # canvas side S, pixels
    patch: int       # cell side K, pixels
    channels: int    # C

    @property
    def n(self) -> int:
        return -(-self.side // self.patch)  # ceil(S / K)

    @property
    def cells(self) -> int:
        return self.n * self.n

    @property
    def pad(self) -> tuple[int, int]:
        total = self.n * self.patch - self.side
        return total // 2, total - total // 2

    @property
    def dim(self) -> int:
        return self.channels * self.patch * self.patch

    @classmethod
    def for_dataset(cls, ds) -> "Grid":
        return cls(side=ds["canvas_size"], patch=ds["patch_size"], channels=ds["channels"])


def to_canvas_space(images: np.ndarray | torch.Tensor, ds) -> torch.Tensor:
    """uint8 (N, C, H, W) images -> float (N, C, S, S) in [0, 1] at canvas resolution.

    CelebA's 64-pixel images are average-pooled to the 32-pixel canvas (SPEC 6).
    """
    x = torch.as_tensor(np.asarray(images)).float().div_(255.0)
    factor = ds["image_size"] // ds["canvas_size"]
    return F.avg_pool2d(x, factor) if factor > 1 else x


def to_cells(x: torch.Tensor, grid: Grid) -> torch.Tensor:
    """(B, C, S, S) -> (B, T_c, D): the padded canvas cut into cells, raster order."""
    before, after = grid.pad
    x = F.pad(x, (before, after, before, after))
    b, c, k, n = x.shape[0], grid.channels, grid.patch, grid.n
    cells = x.reshape(b, c, n, k, n, k).permute(0, 2, 4, 1, 3, 5)  # (B, n, n, C, K, K)
    return cells.reshape(b, n * n, c * k * k)


def from_cells(cells: torch.Tensor, grid: Grid) -> torch.Tensor:
    """(B, T_c, D) -> (B, C, S, S): inverse of to_cells, padding cropped away."""
    b, c, k, n = cells.shape[0], grid.channels, grid.patch, grid.n
    x = cells.reshape(b, n, n, c, k, k).permute(0, 3, 1, 4, 2, 5).reshape(b, c, n * k, n * k)
    before, _ = grid.pad
    return x[..., before:before + grid.side, before:before + grid.side]


def render(bank: torch.Tensor, z_id: torch.Tensor, z_loc: torch.Tensor, z_is: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Final canvas c_T from hard latents (SPEC 6, Eq. 3).

    bank (M, C, K, K); z_id, z_loc (B, T) int64; z_is (B, T) bool or {0, 1}.
    Returns (B, C, S, S).  Parts are >= 0, so skipped steps (z_is = 0) draw zeros
    and leave the max unchanged.
    """
    parts = bank.reshape(bank.shape[0], -1)[z_id] * z_is.unsqueeze(-1).to(bank.dtype)  # (B, T, D)
    canvas = parts.new_zeros(parts.shape[0], grid.cells, parts.shape[-1])
    index = z_loc.unsqueeze(-1).expand_as(parts)
    canvas = canvas.scatter_reduce(1, index, parts, reduce="amax", include_self=True)
    return from_cells(canvas, grid)
