"""Shared setup for the benchmarks: MNIST straight from the data mirror."""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from dataclasses import dataclass

import torch

from npdraw.compute.memory import keep_freed_memory
from npdraw.compute.precision import PRECISIONS
from npdraw.data.prepare import load_source
from npdraw.workflow.params import load_params


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
    p.add_argument("--malloc", choices=("keep", "default"), default="keep",
                   help="keep: glibc keeps freed memory for reuse, as every stage sets it "
                        "(npdraw.compute.memory); default: the C library's own policy, for comparison")


def compute_choice(args: argparse.Namespace) -> tuple[str, bool, bool]:
    """(precision, channels_last, compile) of the run: the options given, else params.yaml's.  Also sets
    the allocator policy --malloc names, before anything is timed."""
    if args.malloc == "keep":
        keep_freed_memory()
    compute = load_params("params.yaml")["compute"]
    return (args.precision or compute["precision"],
            compute["channels_last"] if args.channels_last is None else args.channels_last == "yes",
            compute["compile"] if args.compile is None else args.compile == "yes")


@dataclass
class Usage:
    """What the process spent over a `with` block: wall seconds, CPU seconds in user and kernel mode,
    and minor page faults (getrusage)."""
    wall: float = 0.0
    user: float = 0.0
    system: float = 0.0
    faults: int = 0

    def __enter__(self) -> Usage:
        self._start = (time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF))
        return self

    def __exit__(self, *exc) -> None:
        wall, r0 = self._start
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        self.wall = time.perf_counter() - wall
        self.user, self.system = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
        self.faults = r1.ru_minflt - r0.ru_minflt

    def host_memory(self, per: str, n: int) -> str:
        """'host memory: F page faults and S s of system time per <per> (P % of the CPU time)'."""
        share = self.system / max(self.user + self.system, 1e-9)
        return (f"host memory: {self.faults / n:,.0f} page faults and {self.system / n:.3f} s of system time per "
                f"{per} ({share:.0%} of the CPU time)")
