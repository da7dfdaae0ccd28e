"""Shared setup for the benchmarks: MNIST straight from the data mirror."""

from __future__ import annotations

import argparse
import os
import platform

import torch

from npdraw.data.prepare import load_source
from npdraw.runtime.config import load_params
from npdraw.runtime.precision import PRECISIONS


def mnist_arrays() -> dict:
    ds = {"source": "mnist_idx", "image_size": 28, "channels": 1}
    arrays, _ = load_source("mnist_idx", ds, "mnist", allow_download=False)
    return arrays


def machine() -> str:
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads)")


def gemm_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """This machine's measured n x n matrix-multiply rate in `dtype`, GFLOP/s, on torch's threads: the
    roof the benchmarks' achieved rates are compared with (measured in the same run)."""
    import time

    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b   # warm-up (kernel selection, page faults)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def flops(fn) -> int:
    """Floating-point operations of one call of fn() (torch.utils.flop_counter: matmuls and convolutions,
    forward and backward), counted once."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def roofline(label: str, per_s: float, flops_per_item: int, roofs: dict[str, float]) -> str:
    """'label: F GFLOP per image, achieved A GFLOP/s = x% of fp32 GEMM, y% of bf16 GEMM'."""
    achieved = per_s * flops_per_item / 1e9
    ratios = ", ".join(f"{achieved / rate:.0%} of the {name} GEMM rate" for name, rate in roofs.items())
    return f"{label}: {flops_per_item / 1e9:.3f} GFLOP per image, achieved {achieved:.1f} GFLOP/s = {ratios}"


def gemm_roofs() -> dict[str, float]:
    return {"fp32": gemm_gflops(torch.float32), "bf16": gemm_gflops(torch.bfloat16)}


def add_compute_options(p: argparse.ArgumentParser) -> None:
    """--precision, --channels-last, --compile (default: params.yaml's compute section) and --grid."""
    p.add_argument("--precision", choices=PRECISIONS, help="default: params.yaml compute.precision")
    p.add_argument("--channels-last", choices=("yes", "no"), help="default: params.yaml compute.channels_last")
    p.add_argument("--compile", choices=("yes", "no"), help="default: params.yaml compute.compile")
    p.add_argument("--grid", action="store_true", help="also time every precision x layout, and compiled")


def compute_choice(args: argparse.Namespace) -> tuple[str, bool, bool]:
    """(precision, channels_last, compile) of the run: the options given, else params.yaml's."""
    compute = load_params("params.yaml")["compute"]
    return (args.precision or compute["precision"],
            compute["channels_last"] if args.channels_last is None else args.channels_last == "yes",
            compute["compile"] if args.compile is None else args.compile == "yes")
