"""Benchmark: every baseline of the systems registry at a profile's sizes, on this machine.

For each baseline (npdraw/workflow/systems.py) built from params.yaml at --profile (the sizes its runs
use), in the precision and layout params.yaml selects (bf16 autocast and channels_last by default):
training images/s (forward + backward + Adam at the section's batch size, on MNIST digits binarised as
training does), the importance-sampled NLL's images/s at S = evaluate.nll_samples (as the evaluate stage
scores, npdraw.evaluation.importance), sampling images/s (npdraw.evaluation.importance.generate), and
the peak resident memory of the process so far.  `--systems` picks some.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from benchmarks.common import add_compute_options, compute_choice, machine, mnist_arrays
from npdraw.compute.precision import autocast, layout, use_layout
from npdraw.evaluation.importance import generate, importance_sampled
from npdraw.models.interface import model_class
from npdraw.workflow.params import load_params
from npdraw.workflow.resolve import resolve
from npdraw.workflow.systems import BASELINES, SYSTEMS


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--profile", default="quick", help="the params profile whose sizes the baselines take")
    p.add_argument("--systems", nargs="+", default=list(BASELINES), choices=BASELINES)
    p.add_argument("--steps", type=int, default=10, help="timed training steps (after two)")
    p.add_argument("--nll-images", type=int, default=20, help="images of the timed NLL pass")
    p.add_argument("--samples", type=int, default=200, help="images of the timed sampling pass")
    add_compute_options(p)
    args = p.parse_args()
    precision, cl, _ = compute_choice(args)
    print(f"machine: {machine()}; {precision}, channels_last {cl}; profile {args.profile}")
    params = load_params("params.yaml")
    images = torch.from_numpy(np.asarray(mnist_arrays()["train_images"][:2000])).float() / 255
    for name in args.systems:
        cfg = resolve(params, dataset="mnist", profile=args.profile, variant=name)
        section = cfg[SYSTEMS[name].section]
        torch.manual_seed(0)
        model = use_layout(model_class(name).build(cfg), cl)
        opt = torch.optim.Adam(model.parameters(), lr=section.lr)
        g = torch.Generator().manual_seed(0)

        def step(model=model, opt=opt, batch=section.batch_size, g=g):
            x = layout(torch.bernoulli(images[torch.randint(0, len(images), (batch,), generator=g)]), cl)
            with autocast("cpu", precision):
                t = model.terms(x, x)
            loss = -(t["log_px"] - t["kl"]).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        for _ in range(2):
            step()
        start = time.perf_counter()
        for _ in range(args.steps):
            step()
        train = args.steps * section.batch_size / (time.perf_counter() - start)
        model.eval()
        x = layout(torch.bernoulli(images[:args.nll_images]), cl)
        s = cfg.evaluate.nll_samples
        start = time.perf_counter()
        importance_sampled(model, x, s, progress=False, precision=precision)
        nll = args.nll_images / (time.perf_counter() - start)
        start = time.perf_counter()
        generate(model, args.samples, seed=0, precision=precision, progress=False)
        sampling = args.samples / (time.perf_counter() - start)
        arch = ", ".join(f"{k} {v}" for k, v in model.cfg.to_dict().items())
        print(f"{SYSTEMS[name].label} ({arch}): train {train:.0f} images/s (batch {section.batch_size}); "
              f"NLL, S = {s}: {nll:.1f} images/s; sampling {sampling:.0f} images/s; peak memory {peak_mb():,.0f} MB")


if __name__ == "__main__":
    main()
