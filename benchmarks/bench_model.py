"""Benchmark: full-model training at MNIST settings (batch 150, K=5, M=50, T=36) on this machine.

Prints training images/s, the forward+backward time split between the encoder,
rendering, decoder and the prior's scoring of the sample, and the peak memory
(resident set size) of the process.
"""

import argparse
import resource
import time

import torch

from benchmarks.common import machine
from npdraw.canvas import Grid
from npdraw.model import ModelConfig, NPDraw, parse_cross_entropy, relaxed_sample, step_kl
from npdraw.prior import Prior, PriorConfig


def build() -> NPDraw:
    grid = Grid(28, 5, 1)
    prior = Prior(PriorConfig(parts=50, steps=36, cells=36, channels=1, side=28), torch.rand(50, 1, 5, 5), grid)
    cfg = ModelConfig(channels=1, image_size=28, canvas_size=28, parts=50, cells=36, arch="small",
                      output="bernoulli")
    return NPDraw(cfg, prior, grid)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch", type=int, default=150)
    args = p.parse_args()
    torch.manual_seed(0)
    model = build().train()
    opt = torch.optim.Adam([q for q in model.parameters() if q.requires_grad], lr=1e-3)
    b = args.batch
    x = torch.bernoulli(torch.full((b, 1, 28, 28), 0.15))
    parse = (torch.randint(0, 50, (b, 36)), torch.arange(36).expand(b, 36), torch.rand(b, 36) < 0.4)
    parts = {"encoder": 0.0, "rendering": 0.0, "decoder": 0.0, "prior scoring": 0.0, "backward + step": 0.0}
    for step in range(args.steps + 2):
        timings = {}
        t0 = time.perf_counter()
        q = model.encoder(x)
        t1 = time.perf_counter()
        z = relaxed_sample(q, 0.7, False)
        canvas = model.canvas(*z)
        t2 = time.perf_counter()
        log_px = model.output.log_prob(model.decoder(canvas), x)
        t3 = time.perf_counter()
        kl = step_kl(q, model.prior.logits(*z)).sum(1)
        t4 = time.perf_counter()
        loss = (-(log_px - kl) + 50 * parse_cross_entropy(q, *parse)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        t5 = time.perf_counter()
        timings = {"encoder": t1 - t0, "rendering": t2 - t1, "decoder": t3 - t2, "prior scoring": t4 - t3,
                   "backward + step": t5 - t4}
        if step >= 2:  # two warm-up steps
            for k in parts:
                parts[k] += timings[k]
    total = sum(parts.values())
    print(f"machine: {machine()}")
    print(f"training at MNIST settings, batch {b}: {args.steps * b / total:.1f} images/s "
          f"({total / args.steps:.3f} s per step)")
    print("time split: " + ", ".join(f"{k} {v / total:.0%}" for k, v in parts.items()))
    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
