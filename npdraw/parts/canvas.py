"""The latent canvas: grid geometry, cells <-> images, and rendering (method §3 and 6).

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
    def for_dataset(cls, ds) -> Grid:
        return cls(side=ds["canvas_size"], patch=ds["patch_size"], channels=ds["channels"])


def to_canvas_space(images: np.ndarray | torch.Tensor, ds) -> torch.Tensor:
    """uint8 (N, C, H, W) images -> float (N, C, S, S) in [0, 1] at canvas resolution.

    CelebA's 64-pixel images are average-pooled to the 32-pixel canvas (method §6).
    """
    x = torch.from_numpy(np.asarray(images, dtype=np.float32)).div_(255.0)  # a fresh, writable copy
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
    """Final canvas c_T from hard latents (method §6, Eq. 3).

    bank (M, C, K, K); z_id, z_loc (B, T) int64; z_is (B, T) bool or {0, 1}.
    Returns (B, C, S, S).  Parts are >= 0, so skipped steps (z_is = 0) draw zeros
    and leave the max unchanged.
    """
    parts = step_parts(bank, z_id, z_is)                                  # (B, T, D)
    canvas = parts.new_zeros(parts.shape[0], grid.cells, parts.shape[-1])
    index = z_loc.unsqueeze(-1).expand_as(parts)
    canvas = canvas.scatter_reduce(1, index, parts, reduce="amax", include_self=True)
    return from_cells(canvas, grid)


def step_parts(bank: torch.Tensor, z_id: torch.Tensor, z_is: torch.Tensor) -> torch.Tensor:
    """What each step draws, flattened: (B, T, D); zero where z_is = 0.

    z_id may be indices (B, T) or (relaxed) one-hot weights (B, T, M); z_is may be
    bool, {0, 1} or a relaxed probability in [0, 1].
    """
    flat = bank.reshape(bank.shape[0], -1)
    parts = flat[z_id] if z_id.dtype == torch.long else z_id.to(flat.dtype) @ flat
    return parts * z_is.unsqueeze(-1).to(parts.dtype)


def location_weights(z_loc: torch.Tensor, cells: int, dtype=torch.float32) -> torch.Tensor:
    """Cell indices (B, T) -> one-hot (B, T, T_c); (relaxed) one-hot weights pass through."""
    return F.one_hot(z_loc, cells).to(dtype) if z_loc.dtype == torch.long else z_loc.to(dtype)


def prefix_canvases(bank: torch.Tensor, z_id, z_loc, z_is, grid: Grid) -> torch.Tensor:
    """Every canvas *before* each step, c_0 .. c_{T-1}, at once: (B, T, C, S, S).

    Each step's contribution is its part placed in its cell; the canvas after
    step t is the running (cumulative) max of the contributions, so all T prefixes
    come from one cummax over the step axis, without a loop over steps.
    """
    parts = step_parts(bank, z_id, z_is)                               # (B, T, D)
    where = location_weights(z_loc, grid.cells, parts.dtype)           # (B, T, T_c)
    contrib = where.unsqueeze(-1) * parts.unsqueeze(2)                 # (B, T, T_c, D)
    b, t = contrib.shape[:2]
    # cummax along a contiguous last axis: (B, T_c * D, T) is 4x faster than along the strided T axis
    # of (B, T, T_c, D) on a CPU (same values, same gradient rule).
    steps_last = contrib.reshape(b, t, -1).transpose(1, 2).contiguous()   # (B, T_c * D, T)
    after = steps_last.cummax(dim=-1).values.transpose(1, 2).reshape(contrib.shape)   # c_1 .. c_T
    before = torch.cat([torch.zeros_like(after[:, :1]), after[:, :-1]], dim=1)
    return from_cells(before.reshape(b * t, grid.cells, -1), grid).reshape(b, t, grid.channels, grid.side, grid.side)


def cell_masks(z_loc, z_is, grid: Grid) -> torch.Tensor:
    """Binary image of the cell each step drew in, gated by z_is: (B, T, 1, S, S)."""
    where = location_weights(z_loc, grid.cells) * z_is.unsqueeze(-1).to(torch.float32)   # (B, T, T_c)
    b, t = where.shape[:2]
    ones = where.reshape(b * t, grid.cells, 1).expand(-1, -1, grid.patch * grid.patch)
    mask_grid = Grid(side=grid.side, patch=grid.patch, channels=1)
    return from_cells(ones, mask_grid).reshape(b, t, 1, grid.side, grid.side)


def render_relaxed(bank: torch.Tensor, z_id, z_loc, z_is, grid: Grid) -> torch.Tensor:
    """Final canvas from (relaxed) one-hot latents, differentiable: (B, C, S, S).

    z_id (B, T, M), z_loc (B, T, T_c) weights, z_is (B, T) in [0, 1].  The canvas
    is the max over steps of each step's part placed by its location weights;
    with hard one-hots this equals render() exactly.  One batched max, no loop.
    """
    parts = step_parts(bank, z_id, z_is)                                  # (B, T, D)
    where = location_weights(z_loc, grid.cells, parts.dtype)              # (B, T, T_c)
    cells = (where.unsqueeze(-1) * parts.unsqueeze(2)).amax(dim=1)        # (B, T_c, D)
    return from_cells(cells, grid)
