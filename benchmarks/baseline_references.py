"""The baselines against public references (method §14): the pipeline's conv VAE, PixelVAE and DRAW trained
side by side with a port of each one's reference code (benchmarks/references/: igul222/PixelVAE for the
VAE and the PixelVAE, ericjang/draw for DRAW), on the same images, batches, steps and seed.

    python -m benchmarks.baseline_references                        # 3 seeds, 600 and 2,400 updates, all three
    python -m benchmarks.baseline_references --systems vae --seeds 0

Both sides see the same MNIST training images (the findings profile's full split) in the same order,
binarised by the same Bernoulli draws, in batches of 100; the pipeline's model is built from the findings
profile's settings and trained as train_baseline trains it (its precision and layout, Adam at its
section's lr, loss -(log p(x|z) - KL)); the reference keeps its own recipe (fp32; the PixelVAE code's KL
annealing switched off, as every system trains on the ELBO from its first step: with the script's 10,000
steps, the reference's test KL after 600 updates is 86 nats; ericjang/draw's Adam beta1 0.5 and gradient
clipping).  After 600 and 2,400 updates each is
scored on the same 1,000 test images (binarised once): the negative ELBO with one posterior sample per
image (nats), its BCE and KL.  Results append to results/findings/references/runs.jsonl (one line per
system, implementation, seed and point; a run already there is skipped, and a run cut short goes on from
its last save in benchmarks/out/references/, made every SAVE_EVERY updates, so the command resumes), and
the summary table results/findings/references/README.md is rebuilt from them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks.references.draw_ericjang import ReferenceDRAW
from benchmarks.references.pixelvae_igul222 import ReferenceVAE
from npdraw.artifacts.io import atomic_path
from npdraw.compute import seeds as streams
from npdraw.compute.precision import autocast, layout, use_layout
from npdraw.data.binarize import as_float, fixed_targets
from npdraw.data.prepare import load_prepared
from npdraw.data.splits import make_splits
from npdraw.models.interface import model_class
from npdraw.reporting.tables import write_table
from npdraw.workflow.params import load_params
from npdraw.workflow.provenance import code_version
from npdraw.workflow.resolve import resolve
from npdraw.workflow.systems import system

OUT = Path("results/findings/references")
RESUME = Path("benchmarks/out/references")   # a run's last save (not committed: one machine's)
SAVE_EVERY = 100   # updates between saves: a PixelVAE update takes seconds on a 2-core CPU
BATCH = 100
TEST_IMAGES = 1000


def reference(name: str, cfg, kl_warmup: int = 0) -> torch.nn.Module:
    """The reference port of system `name`, sized as the pipeline's model of the run `cfg` (the PixelVAE
    code's KL annealing over `kl_warmup` steps; 0: none, the ELBO from the first step)."""
    if name == "vae":
        return ReferenceVAE(cfg.vae.latent, kl_warmup=kl_warmup)
    if name == "pixelvae":
        return ReferenceVAE(cfg.pixelvae.latent, cfg.pixelvae.pixelcnn_layers, cfg.pixelvae.width, kl_warmup)
    d = cfg.draw
    return ReferenceDRAW(28, d.steps, d.hidden, d.latent, d.read, d.write)


@torch.no_grad()
def score(terms, test: torch.Tensor, seed: int) -> dict[str, float]:
    """Mean negative ELBO, BCE and KL (nats) over the test images, one posterior sample each."""
    torch.manual_seed(seed)
    t = [terms(test[s:s + 250]) for s in range(0, len(test), 250)]
    log_px, kl = torch.cat([x["log_px"] for x in t]).double(), torch.cat([x["kl"] for x in t]).double()
    return {"neg_elbo": float((kl - log_px).mean()), "bce": float(-log_px.mean()), "kl": float(kl.mean())}


def train(name: str, impl: str, seed: int, points: tuple[int, ...], train_u8: torch.Tensor, test: torch.Tensor,
          cfg, landed=None, resume: Path | None = None) -> list[dict]:
    """One side of one comparison: `points` (increasing update counts) scored along one training run;
    `landed(row)`, if given, receives each point's row as it is scored.  With `resume`, the run saves
    itself there every SAVE_EVERY updates (weights, optimiser, the batch order and every random stream) and
    a run started again goes on from the last save as the uninterrupted run would have; the file is removed
    when the run ends."""
    order = torch.Generator().manual_seed(seed)            # the same batches and draws for both sides
    draws = torch.Generator().manual_seed(seed + 1)
    compute = cfg.compute
    if impl == "pipeline":
        torch.manual_seed(streams.torch_seed(seed, system(name).salt))
        model = use_layout(model_class(name).build(cfg), compute.channels_last)
        opt = torch.optim.Adam(model.parameters(), lr=cfg[system(name).section].lr)

        def loss(x, step):
            with autocast("cpu", compute.precision):
                t = model.terms(layout(x, compute.channels_last), layout(x, compute.channels_last))
            return -(t["log_px"] - t["kl"]).mean()

        def terms(x):
            model.eval()
            with autocast("cpu", compute.precision):
                out = model.terms(layout(x, compute.channels_last), layout(x, compute.channels_last))
            model.train()
            return out
        clip = None
    else:
        torch.manual_seed(seed)
        model = reference(name, cfg)
        opt = model.optimizer()
        loss, terms, clip = model.loss, model.terms, getattr(model, "clip", None)
    rows, step, perm, first, before = [], 0, None, 0, 0.0
    if resume is not None and resume.is_file():   # where a run cut short saved itself: the same run goes on
        saved = torch.load(resume, weights_only=False)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        order.set_state(saved["order"])
        draws.set_state(saved["draws"])
        torch.set_rng_state(saved["rng"])
        step, perm, first, before = saved["step"], saved["perm"], saved["next"], saved["seconds"]
        print(f"{name} {impl} seed {seed}: resumed at update {step:,} ({resume})", flush=True)
    start = time.perf_counter()
    model.train()
    while step < points[-1]:
        if perm is None:
            perm, first = torch.randperm(len(train_u8), generator=order), 0
        while first + BATCH <= len(perm) and step < points[-1]:
            x = torch.bernoulli(as_float(train_u8[perm[first:first + BATCH]]), generator=draws)
            first += BATCH
            opt.zero_grad(set_to_none=True)
            loss(x, step).backward()
            if clip is not None:
                clip()
            opt.step()
            step += 1
            seconds = before + time.perf_counter() - start
            if step in points:
                rows.append({"system": name, "implementation": impl, "seed": seed, "updates": step,
                             **score(terms, test, 1234), "train_seconds": round(seconds, 1),
                             "precision": compute.precision if impl == "pipeline" else "fp32",
                             "code": code_version(".")["git_commit"]})
                print(json.dumps(rows[-1]), flush=True)
                if landed is not None:
                    landed(rows[-1])
            if resume is not None and step % SAVE_EVERY == 0 and step < points[-1]:
                resume.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(resume) as tmp:
                    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "order": order.get_state(),
                                "draws": draws.get_state(), "rng": torch.get_rng_state(), "step": step,
                                "perm": perm, "next": first, "seconds": seconds}, tmp)
        if first + BATCH > len(perm):
            perm = None
    if resume is not None:
        resume.unlink(missing_ok=True)
    return rows


def summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per system and point: each side's mean, sd and range over seeds of the test negative ELBO (and KL), the
    difference, and whether it lies within the seed-to-seed spread (the larger side's range)."""
    out = []
    for (name, updates), at in runs.groupby(["system", "updates"]):
        row = {"system": system(name).label, "updates": updates}
        ranges = []
        for impl, side in at.groupby("implementation"):
            v = side["neg_elbo"]
            row.update({f"{impl}_neg_elbo": v.mean(), f"{impl}_sd": v.std(), f"{impl}_kl": side["kl"].mean(),
                        f"{impl}_seeds": len(v)})
            ranges.append(v.max() - v.min())
        if {"pipeline_neg_elbo", "reference_neg_elbo"} <= set(row):
            diff = row["pipeline_neg_elbo"] - row["reference_neg_elbo"]
            # One seed a side has no spread to compare with: the judgement waits for a second.
            seeds = min(row["pipeline_seeds"], row["reference_seeds"])
            row.update({"difference": diff, "seed_spread": max(ranges) if seeds > 1 else None,
                        "within_spread": bool(abs(diff) <= max(ranges)) if seeds > 1 else None})
        out.append(row)
    return pd.DataFrame(out)


def write_summary(done: list[dict], out: Path) -> None:
    """The summary table of every run so far (README.md, summary.csv)."""
    runs = pd.DataFrame(done)
    write_table(summary(runs), out / "README.md", out / "summary.csv", title=(
        "The baselines against their references: test negative ELBO (nats, one posterior sample, 1,000 MNIST "
        "test images) after the same updates on the same batches (100 images), mean and sd over seeds; KL in "
        "nats. pipeline: npdraw.models at the findings profile's settings, trained as train_baseline does; "
        "reference: a port of igul222/PixelVAE (VAE, PixelVAE) or ericjang/draw (DRAW) with its own "
        "initialisation and recipe (benchmarks/references/). within_spread: |difference| at most the larger "
        "side's range over seeds (blank until each side has two). Made by "
        "`python -m benchmarks.baseline_references`; every run: runs.jsonl."))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--systems", nargs="+", default=["vae", "pixelvae", "draw"], choices=["vae", "pixelvae", "draw"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--updates", nargs="+", type=int, default=[600, 2400])
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    params = load_params("params.yaml")
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / "runs.jsonl"
    done = [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []
    base = resolve(params, dataset="mnist", profile="findings")
    arrays = load_prepared(f"data/prepared/{base.dataset}", base)
    splits = make_splits(arrays, base)[0]
    train_u8 = torch.from_numpy(np.asarray(arrays["train_images"][splits["train"]]))
    test = fixed_targets(torch.from_numpy(np.array(arrays["test_images"][:TEST_IMAGES])), True, 1234)
    points = tuple(sorted(args.updates))
    for seed in args.seeds:   # seed by seed: a comparison cut short has every system once
        for name in args.systems:
            cfg = resolve(params, dataset="mnist", profile="findings", variant=name)
            for impl in ("pipeline", "reference"):
                key = (name, impl, seed)
                have = {r["updates"] for r in done if (r["system"], r["implementation"], r["seed"]) == key}
                if set(points) <= have:
                    continue

                def landed(row, have=have):   # each point as it is scored: a run cut short keeps its first
                    if row["updates"] not in have:
                        with log.open("a") as f:
                            f.write(json.dumps(row) + "\n")
                        done.append(row)
                        write_summary(done, args.out)

                train(name, impl, seed, points, train_u8, test, cfg, landed, RESUME / f"{name}-{impl}-s{seed}.pt")


if __name__ == "__main__":
    main()
