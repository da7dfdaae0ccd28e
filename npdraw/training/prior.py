"""Pre-training the prior on heuristic parses (method §7, Eq. 5).

Maximum likelihood of the training parses, teacher forced, for `prior.epochs`
passes (or `prior.updates` sequences in `training.rounds` epochs); validation NLL
every epoch; the checkpoint with the lowest validation NLL is kept; a killed
run resumes (npdraw.training.loop).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from npdraw.artifacts.errors import ParamsError
from npdraw.compute import seeds
from npdraw.compute.precision import autocast, compiled, use_layout
from npdraw.models.prior import Prior, prior_config, save_prior
from npdraw.parts.canvas import Grid
from npdraw.parts.parser import Latents
from npdraw.training.loop import Run, check_finite, fit, plan
from npdraw.workflow.resolve import numerics

log = logging.getLogger(__name__)


@torch.no_grad()
def evaluate_nll(model: Prior, data: Latents, batch_size: int = 512, dist=None,
                 precision: str = "fp32") -> dict[str, float]:
    """Mean -log p(z) per sequence (nats), in total and split by id / loc / is.

    With `dist` (npdraw.compute.distributed.Dist) each rank scores its share and the sums are reduced;
    `precision` of the forward passes (npdraw.compute.precision)."""
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


def train_prior(cfg, bank: torch.Tensor, parses: dict[str, Latents], best_path: Path, resume_path: Path,
                device: torch.device, live=None, dist=None) -> dict:
    """Train; write the best checkpoint (lowest validation NLL) to best_path; return the history.

    `dist` (npdraw.compute.distributed.Dist): data-parallel over its ranks (see that module); None: one
    process."""
    grid = Grid.for_dataset(cfg.ds)
    steps = parses["train"].z_id.shape[1]
    if steps != grid.cells:
        raise ParamsError(f"parses have {steps} steps but the configuration's grid has {grid.cells} "
                          f"(canvas {grid.side}, K = {grid.patch}): parses from another configuration?")
    pc = cfg.prior
    rank, world = (dist.rank, dist.world) if dist is not None else (0, 1)
    torch.manual_seed(seeds.torch_seed(cfg.seed, "prior"))
    compute = cfg.compute
    model = use_layout(Prior(prior_config(cfg, grid), bank, grid).to(device), compute.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=pc.lr)
    order = torch.Generator().manual_seed(cfg.seed)
    budget = plan(cfg.training, len(parses["train"]), pc.epochs, pc.updates, pc.split_epochs)
    epochs, per_round = budget.epochs, budget.per_epoch
    fingerprint = json.dumps({"prior": dict(pc), "rounds": [epochs, per_round], "ds": dict(cfg.ds), "seed": cfg.seed,
                              "n": len(parses["train"]),
                              "numerics": numerics(cfg.compute)},
                             sort_keys=True)
    run = Run(resume_path, fingerprint, live, main=rank == 0)
    forward = compiled(dist.wrap(model, "log_prob") if dist is not None else model.log_prob, compute.compile)
    train, valid = parses["train"].to(device), parses["valid"].to(device)

    def step(epoch: int, i: int, batch: torch.Tensor):
        with autocast(device, compute.precision):
            lp = forward(*train.batch(batch[rank::world]))
        check_finite({f"log p({k})": lp[k] for k in ("id", "loc", "is")},
                     f"prior epoch {epoch + 1}, step {i + 1}", resume_path)
        loss = -lp["total"].sum() * world / len(batch)   # nats per sequence, averaged over the global batch
        return loss, {"nll": loss.item() * len(batch) / world}

    def validate(epoch: int, sums: dict, seen: int, seconds: float):
        val = evaluate_nll(model, valid, dist=dist, precision=compute.precision)
        record = {"epoch": epoch + 1, "train_nll_nats": sums["nll"] / seen, "valid_nll_nats": val["nll_total_nats"],
                  "seconds": seconds, "sequences_per_s": seen / seconds}
        log.info("epoch %d: train %.3f, valid %.3f nats/sequence (%.0f seq/s)", epoch + 1,
                 record["train_nll_nats"], record["valid_nll_nats"], record["sequences_per_s"])
        return record, val["nll_total_nats"]

    fit(run, model, opt, order, device, name="prior", epochs=epochs, n=len(train), batch_size=pc.batch_size,
        step=step, validate=validate, seed=cfg.seed, stream="prior", dist=dist, per_epoch_items=per_round)
    return run.finish(model, lambda m, epoch, best: save_prior(best_path, m, {"epoch": epoch, "valid_nll_nats": best}))
