"""Benchmark: importance-sampled NLL (S = 50) and sample generation at MNIST settings.

Uses an untrained model of the MNIST architecture (speed does not depend on the weights): NLL
images/s with S importance samples each, in the precision and layout params.yaml selects
(compute.precision, compute.channels_last), its FLOPs per image and achieved GFLOP/s against this
machine's GEMM rates measured in the same run; generated images/s (prior's cached sampler, canvas,
decoder, Bernoulli draw).  `--grid` also times every precision x layout eagerly, and each precision
compiled (compute.compile; the first call, which compiles, is timed apart).
"""

import argparse
import resource
import time

import torch

from benchmarks.bench_model import build
from benchmarks.common import Usage, add_compute_options, compute_choice, flops, gemm_roofs, machine, roofline
from npdraw.compute.precision import PRECISIONS, layout, use_layout
from npdraw.evaluation.importance import generate, importance_sampled


def nll_rate(precision: str, channels_last: bool, images: int, samples: int,
             compile: bool = False) -> tuple[float, float, Usage]:
    """(NLL images/s, seconds of the warm-up call: kernel choice, and compiling with `compile`; what the
    timed call spent)."""
    torch.manual_seed(0)
    model = use_layout(build().eval(), channels_last)
    x = layout(torch.bernoulli(torch.full((images, 1, 28, 28), 0.15)), channels_last)
    run = lambda xs, s: importance_sampled(model, xs, s, batch_size=100, progress=False,   # noqa: E731
                                           precision=precision, compile=compile)
    start = time.perf_counter()
    run(x[:images], 1)   # warm-up at the measured batch shape
    warm = time.perf_counter() - start
    with Usage() as usage:
        run(x, samples)
    return images / usage.wall, warm, usage


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--samples", type=int, default=50, help="S, importance samples per image")
    p.add_argument("--generate", type=int, default=2000)
    add_compute_options(p)
    args = p.parse_args()
    precision, cl, comp = compute_choice(args)
    rate, warm, usage = nll_rate(precision, cl, args.images, args.samples, comp)
    print(f"NLL, S={args.samples}: {rate:.2f} images/s ({args.images / rate:.1f} s for {args.images} images; "
          f"{precision}, {'channels_last' if cl else 'NCHW'}{', compiled' if comp else ''}; first call {warm:.1f} s)")
    print(f"{usage.host_memory('image', args.images)}; malloc: {args.malloc}")
    model = build().eval()
    start = time.perf_counter()
    generate(model, args.generate, seed=0, precision=precision)
    gen = time.perf_counter() - start
    print(f"generation: {args.generate / gen:.0f} images/s ({gen:.1f} s for {args.generate})")
    print(f"machine: {machine()}")
    x = torch.bernoulli(torch.full((10, 1, 28, 28), 0.15))
    per_image = flops(lambda: importance_sampled(model, x, args.samples, progress=False)) // len(x)
    roofs = gemm_roofs()
    print(f"GEMM 2048^2 measured now: fp32 {roofs['fp32']:.0f} GFLOP/s, bf16 {roofs['bf16']:.0f} GFLOP/s")
    print(roofline(f"NLL (S={args.samples})", rate, per_image, roofs))
    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if args.grid:
        for prec in PRECISIONS:
            for layout_cl, comp in ((False, False), (True, False), (True, True)):
                r, warm, _ = nll_rate(prec, layout_cl, args.images, args.samples, comp)
                print(f"  {prec:4} {'channels_last' if layout_cl else 'NCHW':13} {'compiled' if comp else 'eager':8} "
                      f"{r:7.2f} NLL images/s (first call {warm:.1f} s)")


if __name__ == "__main__":
    main()
