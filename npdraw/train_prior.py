"""Pre-training the prior on heuristic parses (SPEC 7, Eq. 5).

Maximum likelihood of the training parses, teacher forced; validation NLL
every epoch; the checkpoint with the lowest validation NLL is kept; a killed
run resumes (npdraw.training.Run).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from npdraw.canvas import Grid
from npdraw.config import ParamsError, numerics
from npdraw.contracts import CheckpointContract
from npdraw.io import read_checkpoint
from npdraw.parse import Latents
from npdraw.precision import autocast, compiled, use_layout
from npdraw.prior import Prior, PriorConfig
from npdraw.training import Run, check_finite, save_checkpoint

log = logging.getLogger(__name__)
PRIOR_SALT = 3
ARCH_KEYS = ("width", "layers", "heads", "head_dim", "position", "mlp_ratio", "dropout", "conv_channels",
             "head_hidden")
# prior/best.pt: the architecture (PriorConfig), the grid, and the weights (the bank among them).
PRIOR_CHECKPOINT = CheckpointContract("prior", "train_prior", ("arch", "grid", "state_dict"))


def prior_config(cfg, grid: Grid) -> PriorConfig:
    return PriorConfig(parts=cfg.ds.bank_size, steps=grid.cells, cells=grid.cells, channels=grid.channels,
                       side=grid.side, **{k: cfg.prior[k] for k in ARCH_KEYS})


def build_prior(arch: dict, bank: torch.Tensor, grid: Grid) -> Prior:
    return Prior(PriorConfig(**arch), bank, grid)


@torch.no_grad()
def evaluate_nll(model: Prior, data: Latents, batch_size: int = 512, dist=None,
                 precision: str = "fp32") -> dict[str, float]:
    """Mean -log p(z) per sequence (nats), in total and split by id / loc / is.

    With `dist` (npdraw.distributed.Dist) each rank scores its share and the sums are reduced;
    `precision` of the forward passes (npdraw.precision)."""
    was_training = model.training
    model.eval()
    part = dist.chunk(len(data)) if dist is not None else slice(0, len(data))
    keys = ("id", "loc", "is", "total")
    sums = dict.fromkeys(keys, 0.0)
    for start in range(part.start, part.stop, batch_size):
        with autocast(model.bank.device, precision):
            lp = model.log_prob(*data.batch(slice(start, min(start + batch_size, part.stop))))
        for k in sums:
            sums[k] -= lp[k].double().sum().item()
    model.train(was_training)
    if dist is not None:
        sums = dict(zip(keys, dist.sum(*(sums[k] for k in keys))))
    return {f"nll_{k}_nats": v / len(data) for k, v in sums.items()}


def batches(n: int, batch_size: int, world: int) -> int:
    """Steps per epoch; with several ranks a last batch smaller than the world is dropped."""
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= world else 0)


def load_prior(path: str | Path, device="cpu", cfg=None) -> Prior:
    """A trained prior in eval mode; with a run's `cfg`, refused unless its architecture is the one the
    run's configuration gives (M parts, T steps, canvas, widths)."""
    ckpt = read_checkpoint(path, device)
    expect = prior_config(cfg, Grid.for_dataset(cfg.ds)).to_dict() if cfg is not None else None
    PRIOR_CHECKPOINT.check(path, ckpt, expect, what=f"this run ({_run_name(cfg)})" if cfg is not None else "")
    with PRIOR_CHECKPOINT.rebuilding(path):
        grid = Grid(**ckpt["grid"])
        model = build_prior(ckpt["arch"], ckpt["state_dict"]["bank"], grid)
        model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval()


def _run_name(cfg) -> str:
    return f"{cfg.dataset}, variant {cfg.variant!r}, profile {cfg.profile!r}"


def train_prior(cfg, bank: torch.Tensor, parses: dict[str, Latents], best_path: Path, resume_path: Path,
                device: torch.device, live=None, dist=None) -> dict:
    """Train; write the best checkpoint (lowest validation NLL) to best_path; return the history.

    `dist` (npdraw.distributed.Dist): data-parallel over its ranks (see that module); None: one process."""
    grid = Grid.for_dataset(cfg.ds)
    steps = parses["train"].z_id.shape[1]
    if steps != grid.cells:
        raise ParamsError(f"parses have {steps} steps but the configuration's grid has {grid.cells} "
                          f"(canvas {grid.side}, K = {grid.patch}): parses from another configuration?")
    pc = cfg.prior
    rank, world = (dist.rank, dist.world) if dist is not None else (0, 1)
    torch.manual_seed(int(np.random.SeedSequence([cfg.seed, PRIOR_SALT]).generate_state(1)[0]))
    compute = cfg.compute
    model = use_layout(Prior(prior_config(cfg, grid), bank, grid).to(device), compute.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=pc.lr)
    order = torch.Generator().manual_seed(cfg.seed)
    fingerprint = json.dumps({"prior": dict(pc), "ds": dict(cfg.ds), "seed": cfg.seed, "n": len(parses["train"]),
                              "numerics": numerics(cfg.compute)},
                             sort_keys=True)
    run = Run(resume_path, fingerprint, live, main=rank == 0)
    first = run.restore(model, opt, order, device)
    forward = compiled(dist.wrap(model, "log_prob") if dist is not None else model.log_prob, compute.compile)
    train, valid = parses["train"].to(device), parses["valid"].to(device)
    per_epoch = batches(len(train), pc.batch_size, world)
    for epoch in range(first, pc.epochs):
        model.train()
        if rank:
            torch.manual_seed(dist.seed(cfg.seed, PRIOR_SALT, epoch))
        start, total, seen = time.perf_counter(), 0.0, 0
        perm = torch.randperm(len(train), generator=order).to(device)
        bar = tqdm(range(per_epoch), desc=f"prior epoch {epoch + 1}/{pc.epochs}", mininterval=5, leave=False,
                   disable=rank > 0)
        for step in bar:
            idx = perm[step * pc.batch_size:(step + 1) * pc.batch_size]
            with autocast(device, compute.precision):
                lp = forward(*train.batch(idx[rank::world]))
            check_finite({f"log p({k})": lp[k] for k in ("id", "loc", "is")},
                         f"prior epoch {epoch + 1}, step {step + 1}", resume_path)
            loss = -lp["total"].sum() * world / len(idx)   # nats per sequence, averaged over the global batch
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, seen = total + loss.item() * len(idx) / world, seen + len(idx)
        seconds = time.perf_counter() - start
        if dist is not None:
            total = dist.sum(total)[0]
        val = evaluate_nll(model, valid, dist=dist, precision=compute.precision)
        record = {"epoch": epoch + 1, "train_nll_nats": total / seen, "valid_nll_nats": val["nll_total_nats"],
                  "seconds": seconds, "sequences_per_s": seen / seconds}
        log.info("epoch %d: train %.3f, valid %.3f nats/sequence (%.0f seq/s)", epoch + 1,
                 record["train_nll_nats"], record["valid_nll_nats"], record["sequences_per_s"])
        run.end_epoch(model, opt, order, record, val["nll_total_nats"])
    return run.finish(model, lambda m, epoch, best: save_checkpoint(
        best_path, m, {"kind": PRIOR_CHECKPOINT.kind, "epoch": epoch, "valid_nll_nats": best}))
