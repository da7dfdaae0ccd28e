"""Benchmark: heuristic parsing of all 60,000 MNIST training images (K=5, M=50).

Prints seconds, images/s and the ratio to the arithmetic floor.  The floor is
the distance matrix product: 60,000 images x 36 cells x 50 parts x 25 values
= 2.7 G multiply-adds; at the machine's measured matmul rate that is the
fastest any exact nearest-part search can go.
"""

import time

import numpy as np
import torch

from benchmarks.common import machine, mnist_arrays
from npdraw.parts.bank import build_bank
from npdraw.parts.parser import parse_dataset

DS = {"canvas_size": 28, "patch_size": 5, "channels": 1, "image_size": 28, "bank_size": 50}


def matmul_rate() -> float:
    """Measured float32 multiply-adds per second for the parser's product shape."""
    a, b = torch.rand(294912, 25), torch.rand(25, 50)
    a @ b
    start = time.perf_counter()
    for _ in range(10):
        a @ b
    return 10 * a.shape[0] * 25 * 50 / (time.perf_counter() - start)


def main() -> None:
    images = mnist_arrays()["train_images"]
    bank, _ = build_bank(images, DS, {"n_patches": 20000, "method": "fasterpam", "init": "random", "max_iter": 300}, 0)
    bank = torch.from_numpy(bank)
    parse_dataset(images[:1000], bank, DS, 0.01)  # warm-up
    times = []
    for _ in range(3):
        start = time.perf_counter()
        z_id, _, z_is = parse_dataset(images, bank, DS, 0.01)
        times.append(time.perf_counter() - start)
    best = min(times)
    macs = len(images) * 36 * 50 * 25
    rate = matmul_rate()
    print(f"machine: {machine()}")
    print(f"parse 60,000 MNIST train images (K=5, M=50): best {best:.3f} s of {len(times)} "
          f"({len(images) / best:,.0f} images/s); runs {', '.join(f'{t:.3f}' for t in times)} s")
    print(f"arithmetic: {macs / 1e9:.2f} G multiply-adds; measured matmul rate {rate / 1e9:.1f} GMAC/s "
          f"-> floor {macs / rate:.3f} s; ratio to floor {best / (macs / rate):.1f}x")
    print(f"cells drawn: {z_is.mean():.1%}; distinct parts used: {len(np.unique(z_id[z_is]))}/50")


if __name__ == "__main__":
    main()
