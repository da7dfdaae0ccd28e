"""Benchmark: k-medoids methods and sample sizes for the MNIST part bank (K=5, M=50).

For each (patches sampled, method, init): time, k-medoids objective (sum of
distances to the nearest medoid, on that sample), and the PSNR of parsing
10,000 MNIST test images with the bank.  Objectives compare only within one
sample size (same points).  scikit-learn-extra's `pam` runs only on the
smaller samples unless --pam-max is raised (it is quadratic per swap).
"""

import argparse
import json
import time
from pathlib import Path

import torch

from benchmarks.common import machine, mnist_arrays
from npdraw.compute import seeds
from npdraw.parts.bank import drop_empty, kmedoids, sample_patches
from npdraw.parts.parser import parse_dataset, psnr_summary, reconstruction_mse

DS = {"canvas_size": 28, "patch_size": 5, "channels": 1, "image_size": 28, "bank_size": 50}
METHODS = [("fasterpam", "random"), ("fasterpam", "build"), ("alternate", "k-medoids++"),
           ("alternate", "build"), ("pam", "build")]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000, 20000])
    p.add_argument("--pam-max", type=int, default=5000, help="largest sample given to scikit-learn-extra's pam")
    p.add_argument("--out", default="benchmarks/out/bank.json")
    args = p.parse_args()
    arrays = mnist_arrays()
    train, test = arrays["train_images"][:59000], arrays["test_images"]
    print(f"machine: {machine()}")
    print(f"{'sampled':>8} {'points':>7} {'method':<10} {'init':<12} {'seconds':>8} {'objective':>11} "
          f"{'mean dist':>9} {'PSNR dB':>8}")
    rows = []
    for size in args.sizes:
        rng = seeds.rng(0, "bank")
        points = drop_empty(sample_patches(train, DS, size, rng))
        for method, init in METHODS:
            if method == "pam" and size > args.pam_max:
                continue
            start = time.perf_counter()
            medoids, stats = kmedoids(points, 50, method, init, 300, seed=0)
            seconds = time.perf_counter() - start
            bank = torch.from_numpy(points[medoids])
            parsed = parse_dataset(test, bank, DS, 0.01)
            psnr = psnr_summary(reconstruction_mse(test, bank, *parsed, DS))["psnr_db"]
            row = {"sampled": size, "points": len(points), "method": method, "init": init, "seconds": seconds,
                   "objective": stats["objective"], "mean_distance": stats["mean_distance"], "psnr_db": psnr}
            rows.append(row)
            print(f"{size:>8} {len(points):>7} {method:<10} {init:<12} {seconds:>8.2f} {stats['objective']:>11.1f} "
                  f"{stats['mean_distance']:>9.4f} {psnr:>8.3f}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
