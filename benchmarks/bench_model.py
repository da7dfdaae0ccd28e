"""Benchmark: full-model training at MNIST settings (batch 150, K=5, M=50, T=36) on this machine.

The first line is the configuration params.yaml selects (compute.precision, compute.channels_last);
then the FLOPs of one training image (forward + backward, torch.utils.flop_counter), the achieved
GFLOP/s against this machine's fp32 and bf16 GEMM rates measured in the same run, and the peak
memory.  `--grid` also times every precision x layout eagerly, and each precision compiled
(compute.compile; the first steps, which compile, are timed apart).
"""

import argparse
import resource
import time

import torch

from benchmarks.common import Usage, add_compute_options, compute_choice, flops, gemm_roofs, machine, roofline
from npdraw.compute.precision import PRECISIONS, autocast, compiled, layout, use_layout
from npdraw.models.npdraw import ModelConfig, NPDraw, objective
from npdraw.models.prior import Prior, PriorConfig
from npdraw.parts.canvas import Grid


def build() -> NPDraw:
    grid = Grid(28, 5, 1)
    prior = Prior(PriorConfig(parts=50, steps=36, cells=36, channels=1, side=28), torch.rand(50, 1, 5, 5), grid)
    cfg = ModelConfig(channels=1, image_size=28, canvas_size=28, parts=50, cells=36, arch="small",
                      output="bernoulli")
    return NPDraw(cfg, prior, grid)


def trainer(precision: str, channels_last: bool, batch: int, compile: bool = False):
    """One training step of the library's loss (npdraw.models.npdraw.objective), as a function of nothing."""
    torch.manual_seed(0)
    model = use_layout(build().train(), channels_last)
    opt = torch.optim.Adam([q for q in model.parameters() if q.requires_grad], lr=1e-3)
    x = layout(torch.bernoulli(torch.full((batch, 1, 28, 28), 0.15)), channels_last)
    parse = (torch.randint(0, 50, (batch, 36)), torch.arange(36).expand(batch, 36), torch.rand(batch, 36) < 0.4)

    forward = compiled(model.terms, compile)

    def step():
        with autocast("cpu", precision):
            terms = forward(x, x, parse, 0.7, False)
        loss = objective(terms, 1.0, 50.0).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def images_per_s(step, batch: int, steps: int) -> tuple[float, float, Usage]:
    """(images/s over `steps` steps, seconds of the two warm-up steps: oneDNN's kernel choice, compiling;
    what the timed steps spent)."""
    start = time.perf_counter()
    for _ in range(2):
        step()
    warm = time.perf_counter() - start
    with Usage() as usage:
        for _ in range(steps):
            step()
    return steps * batch / usage.wall, warm, usage


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch", type=int, default=150)
    add_compute_options(p)
    args = p.parse_args()
    precision, cl, comp = compute_choice(args)
    b = args.batch
    rate, warm, usage = images_per_s(trainer(precision, cl, b, comp), b, args.steps)
    print(f"training at MNIST settings, batch {b}: {rate:.1f} images/s ({b / rate:.3f} s per step; "
          f"{precision}, {'channels_last' if cl else 'NCHW'}{', compiled' if comp else ''}; "
          f"warm-up {warm:.1f} s)")
    print(f"{usage.host_memory('step', args.steps)}; malloc: {args.malloc}")
    print(f"machine: {machine()}")
    per_image = flops(trainer("fp32", False, b)) // b
    roofs = gemm_roofs()
    print(f"GEMM 2048^2 measured now: fp32 {roofs['fp32']:.0f} GFLOP/s, bf16 {roofs['bf16']:.0f} GFLOP/s")
    print(roofline("training", rate, per_image, roofs))
    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if args.grid:
        for prec in PRECISIONS:
            for layout_cl, comp in ((False, False), (True, False), (True, True)):
                r, warm, _ = images_per_s(trainer(prec, layout_cl, b, comp), b, args.steps)
                print(f"  {prec:4} {'channels_last' if layout_cl else 'NCHW':13} {'compiled' if comp else 'eager':8} "
                      f"{r:7.1f} images/s (warm-up {warm:.1f} s)")


if __name__ == "__main__":
    main()
