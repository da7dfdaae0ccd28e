"""Benchmark: importance-sampled NLL (S = 50) and sample generation at MNIST settings.

Uses an untrained model of the MNIST architecture (speed does not depend on the
weights): NLL images/s with S importance samples each, and generated images/s
(prior's cached sampler, canvas, decoder, Bernoulli draw).
"""

import argparse
import time

import torch

from benchmarks.bench_model import build
from benchmarks.common import machine
from npdraw.evaluate import generate, importance_sampled


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--samples", type=int, default=50, help="S, importance samples per image")
    p.add_argument("--generate", type=int, default=2000)
    args = p.parse_args()
    torch.manual_seed(0)
    model = build().eval()
    x = torch.bernoulli(torch.full((args.images, 1, 28, 28), 0.15))
    importance_sampled(model, x[:10], 2, progress=False)  # warm-up
    start = time.perf_counter()
    importance_sampled(model, x, args.samples, batch_size=100, progress=False)
    nll = time.perf_counter() - start
    start = time.perf_counter()
    generate(model, args.generate, seed=0)
    gen = time.perf_counter() - start
    print(f"machine: {machine()}")
    print(f"NLL, S={args.samples}: {args.images / nll:.2f} images/s ({nll:.1f} s for {args.images} images)")
    print(f"generation: {args.generate / gen:.0f} images/s ({gen:.1f} s for {args.generate})")


if __name__ == "__main__":
    main()
