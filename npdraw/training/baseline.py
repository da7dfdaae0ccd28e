"""Training any baseline of the systems registry (npdraw.workflow.systems) on the run's splits.

The model is built from the run's configuration by its class (npdraw.models.interface.GenerativeModel);
loss (minimised, nats per image) = -(log p(x|z) - KL) from its `terms` with one posterior sample;
Adam at the section's `lr` and `batch_size`; the section's `epochs` passes, or `training.image_updates`
images in `training.rounds` epochs (npdraw.training.loop.plan), the same for every system; training
images binarised afresh at every read where the dataset says dynamic, validation once with a fixed
seed; the checkpoint kept by the same rule as NP-DRAW's (`training.select`, npdraw.training.select);
a killed run resumes (npdraw.training.loop.Run); several ranks train data-parallel as in
npdraw.compute.distributed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from npdraw.compute import seeds
from npdraw.compute.precision import autocast, compiled, layout, use_layout
from npdraw.data.binarize import as_float, binarize, fixed_targets
from npdraw.models.checkpoints import save_model
from npdraw.models.interface import model_class
from npdraw.training.loop import Run, check_finite, fit, plan
from npdraw.training.select import ELBO_SELECTOR, Selector, epoch_score
from npdraw.workflow.resolve import numerics
from npdraw.workflow.systems import system

log = logging.getLogger(__name__)


@torch.no_grad()
def evaluate_elbo(model, x: torch.Tensor, batch_size: int = 500, seed: int = 0, dist=None,
                  precision: str = "fp32") -> dict:
    """Per-image means (nats) with one posterior sample: ELBO, BCE = -log p(x|z), KL; `precision` of the
    forward passes (npdraw.compute.precision: the terms come back fp32)."""
    was = model.training
    model.eval()
    part = dist.chunk(len(x)) if dist is not None else slice(0, len(x))
    g = torch.Generator().manual_seed(dist.seed(seed) if dist is not None else seed)
    elbo = bce = kl = 0.0
    for s in range(part.start, part.stop, batch_size):
        xb = x[s:min(s + batch_size, part.stop)]
        with autocast(x.device, precision):
            t = model.terms(xb, xb, generator=g)
        elbo += (t["log_px"] - t["kl"]).double().sum().item()
        bce -= t["log_px"].double().sum().item()
        kl += t["kl"].double().sum().item()
    model.train(was)
    if dist is not None:
        elbo, bce, kl = dist.sum(elbo, bce, kl)
    return {"elbo_nats": elbo / len(x), "bce_nats": bce / len(x), "kl_nats": kl / len(x)}


def train_baseline(cfg, images: dict[str, torch.Tensor], best_path: Path, resume_path: Path, device: torch.device,
                   live=None, dist=None, select: Selector = ELBO_SELECTOR) -> dict:
    """Train the run's system (cfg.system, a baseline) on images uint8 (N, C, H, W) per split (train,
    valid); write the best checkpoint by `select`; return the run's state (history, best epoch)."""
    rank, world = (dist.rank, dist.world) if dist is not None else (0, 1)
    entry = system(cfg.system)
    section = cfg[entry.section]
    torch.manual_seed(seeds.torch_seed(cfg.seed, entry.salt))
    compute = cfg.compute
    model = use_layout(model_class(entry.name).build(cfg).to(device), compute.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=section.lr)
    order = torch.Generator().manual_seed(cfg.seed)
    epochs, per_round = plan(cfg.training, len(images["train"]), section.epochs, cfg.training.image_updates)
    fingerprint = json.dumps({entry.section: dict(section), "training": dict(cfg.training), "ds": dict(cfg.ds),
                              "seed": cfg.seed, "n": len(images["train"]), "numerics": numerics(cfg.compute)},
                             sort_keys=True)
    run = Run(resume_path, fingerprint, live, main=rank == 0)
    forward = compiled(dist.wrap(model, "terms") if dist is not None else model.terms, compute.compile)
    train_x = images["train"].to(device)
    valid_x = fixed_targets(images["valid"], True, cfg.seed).to(device)

    def step(epoch: int, i: int, batch: torch.Tensor):
        x = as_float(train_x[batch[rank::world]])
        if cfg.ds.binarize == "dynamic":
            x = binarize(x)
        x = layout(x, compute.channels_last)
        with autocast(device, compute.precision):
            terms = forward(x, x)
        check_finite({"log p(x|z)": terms["log_px"], "KL": terms["kl"]},
                     f"{entry.name} epoch {epoch + 1}, step {i + 1}", resume_path)
        # Summed over this rank's images / global batch * world: DDP's average is then the global mean.
        loss = -(terms["log_px"] - terms["kl"]).sum() * world / len(batch)
        return loss, {"loss": loss.item() * len(batch) / world, "bce": -terms["log_px"].sum().item(),
                      "kl": terms["kl"].sum().item()}

    def validate(epoch: int, sums: dict, seen: int, seconds: float):
        val = evaluate_elbo(model, layout(valid_x, compute.channels_last), seed=cfg.seed, dist=dist,
                            precision=compute.precision)
        record = {"epoch": epoch + 1, **{f"train_{k}_nats": v / seen for k, v in sums.items()},
                  **{f"valid_{k}": v for k, v in val.items()}, "seconds": seconds, "images_per_s": seen / seconds}
        score, scored = epoch_score(select, model, epoch, epochs, cfg.training.select_every, val["elbo_nats"])
        record.update(scored)
        log.info("epoch %d: train loss %.2f, valid ELBO %.2f (BCE %.2f, KL %.2f) nats, %.0f images/s", epoch + 1,
                 record["train_loss_nats"], val["elbo_nats"], val["bce_nats"], val["kl_nats"], record["images_per_s"])
        return record, score

    fit(run, model, opt, order, device, name=entry.name, epochs=epochs, n=len(train_x),
        batch_size=section.batch_size, step=step, validate=validate, seed=cfg.seed, stream=entry.salt, dist=dist,
        per_epoch_items=per_round)
    return run.finish(model, lambda m, epoch, best: save_model(
        best_path, m, {"epoch": epoch, "selected_by": select.rule, "selection_score": best}))
