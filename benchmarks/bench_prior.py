"""Benchmark: prior training throughput and cached vs naive sampling (method §7).

Training: sequences/s of teacher-forced maximum likelihood at MNIST settings
(T = 36 steps, M = 50 parts, batch 64) on random parse-like sequences, in the
precision and layout params.yaml selects, for the paper-size prior and the
authors' ViT (variant token vit).
Sampling: 1,000 sequences with the cached sampler (one new token per step,
keys/values kept) against the naive one (re-encodes the whole prefix each
step, as the authors' code), for T = 36 (28x28 canvas, K = 5) and T = 64
(32x32 canvas, K = 4).  Both samplers draw identical sequences.
"""

import argparse
import time

import torch

from benchmarks.common import machine
from npdraw.compute.memory import keep_freed_memory
from npdraw.compute.precision import autocast, use_layout
from npdraw.models.prior import Prior, PriorConfig
from npdraw.parts.canvas import Grid
from npdraw.workflow.params import load_params
from npdraw.workflow.resolve import PRIOR_TOKENS


def make(side: int, k: int, channels: int = 1, m: int = 50, **arch) -> Prior:
    grid = Grid(side, k, channels)
    cfg = PriorConfig(parts=m, steps=grid.cells, cells=grid.cells, channels=channels, side=side, **arch)
    return Prior(cfg, torch.rand(m, channels, k, k), grid)


def train_rate(model: Prior, batch: int, steps: int, precision: str = "fp32") -> float:
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    t = model.cfg.steps
    data = [(torch.randint(0, model.cfg.parts, (batch, t)), torch.arange(t).expand(batch, t),
             torch.rand(batch, t) < 0.4) for _ in range(steps + 2)]
    model.train()
    for i, z in enumerate(data):
        if i == 2:
            start = time.perf_counter()  # two warm-up steps
        with autocast("cpu", precision):
            loss = -model.log_prob(*z)["total"].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - start)


def sample_seconds(model: Prior, n: int, cached: bool) -> tuple[float, tuple]:
    model.eval()
    model.sample(8, torch.Generator().manual_seed(1), cached=cached)  # warm-up
    start = time.perf_counter()
    out = model.sample(n, torch.Generator().manual_seed(0), cached=cached)
    return time.perf_counter() - start, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=30, help="training steps timed")
    p.add_argument("--samples", type=int, default=1000)
    args = p.parse_args()
    keep_freed_memory()   # as every stage does (npdraw.compute.memory)
    print(f"machine: {machine()}")
    compute = load_params("params.yaml")["compute"]
    for name, arch in (("paper size", {}), ("authors' ViT (vit)", PRIOR_TOKENS["vit"])):
        torch.manual_seed(0)
        model = use_layout(make(28, 5, **arch), compute["channels_last"])
        rate = train_rate(model, 64, args.steps, compute["precision"])
        print(f"training, MNIST settings (T=36, M=50, batch 64), {name}: {rate:,.0f} sequences/s "
              f"({compute['precision']}{', channels_last' if compute['channels_last'] else ''})")
    for side, k in ((28, 5), (32, 4)):
        model = make(side, k)
        fast, a = sample_seconds(model, args.samples, cached=True)
        slow, b = sample_seconds(model, args.samples, cached=False)
        same = all(torch.equal(x, y) for x, y in zip(a[:3], b[:3]))
        print(f"sampling {args.samples} sequences, T={model.cfg.steps}: cached {fast:.2f} s "
              f"({args.samples / fast:,.0f}/s), naive {slow:.2f} s ({args.samples / slow:,.0f}/s), "
              f"speed-up {slow / fast:.1f}x, identical sequences: {same}")


if __name__ == "__main__":
    main()
