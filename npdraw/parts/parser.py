"""Heuristic parsing (paper Algorithm 1, method §5) and its PSNR.

For every image and every cell t in raster order: z_id = nearest bank part
(Euclidean), cost = ||x_c - part|| - ||x_c||, z_is = cost <= epsilon, z_loc = t.
Vectorised over images and cells: one matrix product per chunk of images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from npdraw.artifacts.contracts import ArrayContract, Field
from npdraw.artifacts.io import read_arrays
from npdraw.parts.canvas import Grid, render, to_canvas_space, to_cells

MSE_FLOOR = 1e-10  # per-image PSNR of a perfect reconstruction is capped at 100 dB
SPLITS = ("train", "valid", "test")

# parses.npz: per split s, T steps of N_s images: part ids below M, cells below T, draw flags.
PARSES = ArrayContract("parses file", "parse", tuple(
    field for s in SPLITS for field in (
        Field(f"{s}_z_id", "int", (f"N_{s}", "T"), low=0, below="M"),
        Field(f"{s}_z_loc", "int", (f"N_{s}", "T"), low=0, below="T"),
        Field(f"{s}_z_is", "bool", (f"N_{s}", "T")),
    )))


@dataclass
class Latents:
    """Discrete latents of N images, T steps each (a parse, or samples of q or the prior)."""
    z_id: torch.Tensor   # (N, T) int64
    z_loc: torch.Tensor  # (N, T) int64
    z_is: torch.Tensor   # (N, T) bool

    def __len__(self) -> int:
        return len(self.z_id)

    def batch(self, idx) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.z_id[idx], self.z_loc[idx], self.z_is[idx]

    def to(self, device) -> Latents:
        return Latents(self.z_id.to(device), self.z_loc.to(device), self.z_is.to(device))


def load_parses(path: str | Path, parts: int, steps: int, counts: dict[str, int] | None = None) -> dict[str, Latents]:
    """The run's parses per split, checked: ids below M = `parts`, cells below T = `steps`, and with
    `counts` (split -> number of images of the run's splits) one row per image."""
    z = read_arrays(path, "parses file", "parse")
    dims = {"M": parts, "T": steps, **{f"N_{s}": n for s, n in (counts or {}).items()}}
    PARSES.check(path, z, **dims)
    return {s: Latents(torch.from_numpy(z[f"{s}_z_id"].astype(np.int64)),
                       torch.from_numpy(z[f"{s}_z_loc"].astype(np.int64)),
                       torch.from_numpy(z[f"{s}_z_is"].astype(bool)))
            for s in SPLITS}


@torch.no_grad()
def parse_cells(x: torch.Tensor, bank: torch.Tensor, grid: Grid, epsilon: float) -> tuple[torch.Tensor, torch.Tensor]:
    """x (B, C, S, S) in [0, 1] -> z_id (B, T) int64, z_is (B, T) bool."""
    cells = to_cells(x, grid)                                  # (B, T, D)
    b, t, d = cells.shape
    flat = cells.reshape(b * t, d)
    parts = bank.reshape(bank.shape[0], d).to(flat.dtype)      # (M, D)
    # ||x - p||^2 = ||x||^2 - 2 x.p + ||p||^2; ||x||^2 is the same for every p,
    # so the nearest part needs only the last two terms: one (BT, D) x (D, M) product.
    score = torch.addmm((parts * parts).sum(1), flat, parts.T, alpha=-2.0)  # (BT, M)
    z_id = score.argmin(1)
    # The cost is computed exactly from the chosen part (no cancellation error).
    dist = (flat - parts[z_id]).norm(dim=1)
    cost = dist - flat.norm(dim=1)
    z_is = cost <= epsilon
    return z_id.reshape(b, t), z_is.reshape(b, t)


def parse_dataset(images: np.ndarray, bank: torch.Tensor, ds, epsilon: float, chunk: int = 8192, progress=None):
    """Parse uint8 images (N, C, H, W) in chunks; return numpy z_id, z_loc, z_is (N, T)."""
    grid = Grid.for_dataset(ds)
    n = len(images)
    z_id = np.empty((n, grid.cells), np.int16)
    z_is = np.empty((n, grid.cells), bool)
    for start in range(0, n, chunk):
        x = to_canvas_space(images[start:start + chunk], ds)
        ids, draws = parse_cells(x, bank, grid, epsilon)
        z_id[start:start + chunk] = ids.numpy()
        z_is[start:start + chunk] = draws.numpy()
        if progress is not None:
            progress.update(len(x))
    z_loc = np.broadcast_to(np.arange(grid.cells, dtype=np.int16), (n, grid.cells)).copy()
    return z_id, z_loc, z_is


@torch.no_grad()
def reconstruction_mse(images: np.ndarray, bank: torch.Tensor, z_id, z_loc, z_is, ds, chunk: int = 8192) -> np.ndarray:
    """Per-image MSE between the parsed canvas and the image at canvas resolution."""
    grid = Grid.for_dataset(ds)
    out = []
    for s in range(0, len(images), chunk):
        x = to_canvas_space(images[s:s + chunk], ds)
        canvas = render(bank, *(torch.as_tensor(np.asarray(a[s:s + chunk]), dtype=torch.long) for a in (z_id, z_loc)),
                        torch.as_tensor(np.asarray(z_is[s:s + chunk])), grid)
        out.append(((canvas - x) ** 2).flatten(1).mean(1).double().numpy())
    return np.concatenate(out)


def psnr_summary(mse: np.ndarray) -> dict[str, float]:
    """PSNR (MAX_I = 1): mean of per-image values, and of the mean MSE (method §5)."""
    per_image = -10.0 * np.log10(np.maximum(mse, MSE_FLOOR))
    return {
        "psnr_db": float(per_image.mean()),
        "psnr_of_mean_mse_db": float(-10.0 * math.log10(max(float(mse.mean()), MSE_FLOOR))),
        "mse": float(mse.mean()),
    }
