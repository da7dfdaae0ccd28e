"""The part bank (method §4): random K x K patches clustered by k-medoids.

Solvers (`bank.method`):
  fasterpam  the `kmedoids` package's FasterPAM: reaches PAM's objective, runs in
             seconds at 20,000 points (the default; see README for the measurements)
  alternate  scikit-learn-extra's Voronoi iteration: fast, a worse objective
  pam        scikit-learn-extra's PAM: exact but quadratic in time per swap;
             impractical beyond ~10,000 points on a CPU
All three take the same precomputed Euclidean distance matrix (n x n float32),
and the medoids are always members of the sample.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from npdraw.artifacts.contracts import ArrayContract, Field
from npdraw.artifacts.errors import ParamsError
from npdraw.artifacts.io import read_arrays
from npdraw.compute import seeds
from npdraw.parts.canvas import to_canvas_space

log = logging.getLogger(__name__)

# bank.npy: M parts of C x K x K pixels in [0, 1] (canvas space), float32.
BANK = ArrayContract("part bank", "build_bank", (
    Field("bank", "float", ("M", "C", "K", "K"), low=0.0, high=1.0),
))


def load_bank(path: str | Path, ds) -> np.ndarray:
    """The run's part bank (M, C, K, K), checked against the dataset settings `ds` (M, channels, K)."""
    bank = read_arrays(path, "part bank", "build_bank", name="bank")
    BANK.check(path, bank, M=ds.bank_size, C=ds.channels, K=ds.patch_size)
    return bank["bank"].astype(np.float32, copy=False)


def sample_patches(images: np.ndarray, ds, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` K x K patches at uniform random images and positions, in [0, 1].

    images: uint8 (N, C, H, W).  Patches come from the canvas-resolution image
    (CelebA: 64 -> 32).  Returns float32 (count, C, K, K).
    """
    k, side = ds["patch_size"], ds["canvas_size"]
    which = rng.integers(0, len(images), count)
    rows = rng.integers(0, side - k + 1, count)
    cols = rng.integers(0, side - k + 1, count)
    # Convert only the images that were drawn (CelebA's full set would not fit in memory).
    unique, inverse = np.unique(which, return_inverse=True)
    x = to_canvas_space(np.asarray(images[unique]), ds).numpy()              # (U, C, S, S)
    r = rows[:, None, None] + np.arange(k)[None, :, None]                    # (count, K, 1)
    c = cols[:, None, None] + np.arange(k)[None, None, :]                    # (count, 1, K)
    patches = x[inverse[:, None, None, None], np.arange(x.shape[1])[None, :, None, None], r[:, None], c[:, None]]
    return patches.astype(np.float32)                                        # (count, C, K, K)


def drop_empty(patches: np.ndarray) -> np.ndarray:
    """Drop all-zero patches: 'draw nothing' is z_is = 0, not a part."""
    return patches[patches.reshape(len(patches), -1).max(1) > 0]


def distance_matrix(points: np.ndarray) -> np.ndarray:
    """Euclidean distances (n, n) in float64 (the solvers' native type), zero diagonal."""
    x = torch.from_numpy(points.reshape(len(points), -1)).double()
    d = torch.cdist(x, x)
    d.fill_diagonal_(0.0)
    return d.numpy()


def kmedoids(points: np.ndarray, m: int, method: str, init: str, max_iter: int, seed: int) -> tuple[np.ndarray, dict]:
    """Cluster points (n, ...) into m medoids; return (medoid indices, stats)."""
    n = len(points)
    if m > n:
        raise ParamsError(f"bank size M = {m} is larger than the {n} non-empty patches sampled; "
                         f"raise bank.n_patches or lower the bank size")
    start = time.perf_counter()
    diss = distance_matrix(points)
    t_dist = time.perf_counter() - start
    if method == "fasterpam":
        import kmedoids as kmedoids_pkg

        result = kmedoids_pkg.fasterpam(diss, m, max_iter=max_iter, init=init, random_state=seed, n_cpu=1)
        medoids = np.asarray(result.medoids, dtype=np.int64)
        n_iter = int(result.n_iter)
    else:
        from sklearn_extra.cluster import KMedoids

        with warnings.catch_warnings():  # k-medoids++ warns about sklearn's stable_cumsum on every fit
            warnings.simplefilter("ignore", FutureWarning)
            model = KMedoids(n_clusters=m, metric="precomputed", method=method, init=init,
                             max_iter=max_iter, random_state=seed).fit(diss)
        medoids = np.asarray(model.medoid_indices_, dtype=np.int64)
        n_iter = int(model.n_iter_)
    nearest = diss[:, medoids].min(1)
    stats = {
        "method": method,
        "init": init,
        "points": n,
        "objective": float(nearest.sum()),          # sum of distances to the nearest medoid
        "mean_distance": float(nearest.mean()),
        "iterations": n_iter,
        "seconds_distances": round(t_dist, 3),
        "seconds_total": round(time.perf_counter() - start, 3),
    }
    if len(np.unique(medoids)) != m:
        raise RuntimeError(f"k-medoids returned {len(np.unique(medoids))} distinct medoids, expected {m}")
    return medoids, stats


def build_bank(images: np.ndarray, ds, bank_cfg, seed: int) -> tuple[np.ndarray, dict]:
    """Sample patches, drop empty ones, k-medoids to M parts. Returns (bank (M, C, K, K), stats)."""
    rng = seeds.rng(seed, "bank")
    patches = sample_patches(images, ds, bank_cfg["n_patches"], rng)
    kept = drop_empty(patches)
    log.info("sampled %d patches, %d non-empty; k-medoids (%s) to %d parts",
             len(patches), len(kept), bank_cfg["method"], ds["bank_size"])
    solver_seed = int(rng.integers(0, 2**31 - 1))
    medoids, stats = kmedoids(kept, ds["bank_size"], bank_cfg["method"], bank_cfg["init"],
                              bank_cfg["max_iter"], solver_seed)
    # Most ink first, for the picture.
    order = np.argsort(-kept[medoids].reshape(len(medoids), -1).sum(1), kind="stable")
    bank = kept[medoids[order]]
    stats.update({"patches_sampled": len(patches), "patches_nonempty": len(kept)})
    return bank, stats
