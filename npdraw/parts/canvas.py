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
    def crop(self) -> slice:
        """Rows (and columns) of the padded n*K canvas that are the S x S canvas."""
        return slice(self.pad[0], self.pad[0] + self.side)

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
    return x[..., grid.crop, grid.crop]


def token_images(canvas: torch.Tensor, drew: torch.Tensor, grid: Grid, channels_last: bool = False) -> torch.Tensor:
    """The prior's token images (method §7): a canvas and, as one more channel, the mask of a cell.

    canvas (N, T_c, D) in cells; drew (N, T_c) the weight of each cell in the mask (a one-hot, gated by
    z_is; zero for none).  Returns (N, C+1, S, S), contiguous in channels_last (what a channels_last
    convolution reads without converting it) or in NCHW.  Assembled with the channel innermost, so that
    the one reordering copy moves runs of K * (C+1) values, not single ones."""
    n, cells = drew.shape
    c, k, g = grid.channels, grid.patch, grid.n
    pixels = canvas.reshape(n, cells, c, k * k).transpose(2, 3)                        # (N, T_c, K*K, C)
    mask = drew.to(canvas.dtype)[..., None, None].expand(n, cells, k * k, 1)
    both = torch.cat([pixels, mask], dim=3)                                            # (N, T_c, K*K, C+1)
    x = both.reshape(n, g, g, k, k, c + 1).permute(0, 1, 3, 2, 4, 5).reshape(n, g * k, g * k, c + 1)
    x = x[:, grid.crop, grid.crop].permute(0, 3, 1, 2)                                 # (N, C+1, S, S) view
    return x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


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


class _PrefixMax(torch.autograd.Function):
    """before[:, t] = max over s < t of where[:, s, :, None] * parts[:, s, None, :], zero at t = 0:
    (B, T, T_c) x (B, T, D) -> (B, T, T_c, D), in the inputs' (common) dtype.

    The gradient is the running max's (torch.cummax's): each output element's gradient goes to the step
    that set the max, the latest of any tied steps (so a cell still blank at step t passes its gradient
    to step t - 1's contribution there, which is zero).  Written as a loop over the T steps of
    (B, T_c * D) slabs, because torch.cummax over the step axis, with the copies that put that axis last
    and its scatter_add backward, is several times slower on a CPU (benchmarks/bench_layers.py); the
    backward sums the gradients in fp32 at least."""

    @staticmethod
    def forward(ctx, where: torch.Tensor, parts: torch.Tensor) -> torch.Tensor:
        b, t, cells = where.shape
        out = parts.new_empty(b, t, cells, parts.shape[-1])
        grad = any(ctx.needs_input_grad)
        # took[:, s]: step s set the max (>=: of tied steps, the latest); the last step reaches no output.
        took = torch.empty(b, t - 1, *out.shape[2:], dtype=torch.bool, device=out.device) if grad else None
        out[:, 0] = 0
        for s in range(t - 1):
            contrib = where[:, s, :, None] * parts[:, s, None, :]                # (B, T_c, D)
            if took is not None:
                torch.ge(contrib, out[:, s], out=took[:, s])
            torch.maximum(out[:, s], contrib, out=out[:, s + 1])
        if took is not None:
            ctx.save_for_backward(where, parts, took)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        where, parts, took = ctx.saved_tensors
        t = where.shape[1]
        wide = torch.promote_types(grad.dtype, torch.float32)                    # sums in fp32 at least
        g_contrib = grad.new_zeros(grad.shape, dtype=wide)                      # (B, T, T_c, D)
        carried = grad.new_zeros(grad[:, 0].shape, dtype=wide)                  # gradient waiting for its step
        zero = carried.new_zeros(())
        for s in range(t - 2, -1, -1):
            carried += grad[:, s + 1]
            torch.where(took[:, s], carried, zero, out=g_contrib[:, s])
            carried.masked_fill_(took[:, s], 0.0)
        g_where = torch.einsum("btcd,btd->btc", g_contrib, parts.to(wide)) if ctx.needs_input_grad[0] else None
        g_parts = torch.einsum("btcd,btc->btd", g_contrib, where.to(wide)) if ctx.needs_input_grad[1] else None
        return (g_where.to(where.dtype) if g_where is not None else None,
                g_parts.to(parts.dtype) if g_parts is not None else None)


def prefix_cells(bank: torch.Tensor, z_id, z_loc, z_is, grid: Grid) -> torch.Tensor:
    """Every canvas *before* each step, c_0 .. c_{T-1}, at once, cut into cells: (B, T, T_c, D).

    Each step's contribution is its part placed in its cell; the canvas after step t is the running
    max of the contributions (parts are >= 0), so no step renders a canvas from scratch."""
    parts = step_parts(bank, z_id, z_is)                               # (B, T, D)
    where = location_weights(z_loc, grid.cells, parts.dtype)           # (B, T, T_c)
    return _PrefixMax.apply(where, parts)


def cell_masks(z_loc, z_is, grid: Grid) -> torch.Tensor:
    """Weight of each cell in the mask of the cell each step drew in, gated by z_is: (B, T, T_c)
    (one-hot where a step draws, zero where it skips; relaxed weights pass through)."""
    return location_weights(z_loc, grid.cells) * z_is.unsqueeze(-1).to(torch.float32)


def render_relaxed(bank: torch.Tensor, z_id, z_loc, z_is, grid: Grid) -> torch.Tensor:
    """Final canvas from (relaxed) one-hot latents, differentiable: (B, C, S, S).

    z_id (B, T, M), z_loc (B, T, T_c) weights, z_is (B, T) in [0, 1].  The canvas
    is the max over steps of each step's part placed by its location weights;
    with hard one-hots this equals render() exactly.  One batched max, no loop.
    """
    parts = step_parts(bank, z_id, z_is)                                  # (B, T, D)
    where = location_weights(z_loc, grid.cells, parts.dtype)              # (B, T, T_c)
    cells = (where.unsqueeze(-1) * parts.unsqueeze(2)).amax(dim=1)       # (B, T_c, D)
    return from_cells(cells, grid)

