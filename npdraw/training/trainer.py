"""Training any system of the registry (npdraw.workflow.systems): NP-DRAW's encoder and decoder around its
frozen prior (method §8-9), and every baseline (method §12-13).  One loop for all of them; what differs is
the model's, through the written interface (npdraw.models.interface.GenerativeModel): its parameter groups,
the extra arguments of its `terms` at a step, and its `objective`, the one loss call.

Loss (minimised, nats per image): the model's objective of one posterior sample (NP-DRAW: -(log p(x|z) -
kl_weight KL) + lambda CE(q, parse); a baseline: -(log p(x|z) - KL)).  Adam with the model's parameter
groups (NP-DRAW's decoder at `decoder_lr_scale` of the encoder's rate); the section's `epochs` passes, or
`training.image_updates` images in `training.rounds` epochs (npdraw.training.loop.plan), the same for every
system; training images binarised afresh at every read where the dataset says dynamic, validation once
with a fixed seed; the validation ELBO (one hard sample) every epoch; the checkpoint kept by
`training.select` (npdraw.training.select: FID of samples against the validation images, as the paper; or
the validation ELBO, or NLL), scored every `training.select_every` epochs and at the last; a killed run
resumes (npdraw.training.loop.Run); several ranks train data-parallel as in npdraw.compute.distributed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from npdraw.compute import seeds
from npdraw.compute.precision import autocast, compiled, layout, use_layout
from npdraw.data.binarize import as_float, binarize, fixed_targets
from npdraw.models.checkpoints import save_milestones, save_model
from npdraw.models.interface import model_class
from npdraw.training.loop import Run, batches, check_finite, fit, plan
from npdraw.training.select import ELBO_SELECTOR, Selector, epoch_score
from npdraw.workflow.resolve import numerics
from npdraw.workflow.systems import system

log = logging.getLogger(__name__)
# How a term is named in the message that stops training on NaN / inf.
TERM_NAMES = {"log_px": "log p(x|z)", "kl": "KL", "ce": "parse CE"}


@dataclass(frozen=True)
class Step:
    """Where a training step is: epoch and step within it (from 0), steps per epoch and in all, this rank's
    rows of the split, the global batch's size, the rank and world, and the run's configuration."""
    epoch: int
    index: int
    per_epoch: int
    total: int
    rows: torch.Tensor
    global_batch: int
    rank: int
    world: int
    cfg: object


@torch.no_grad()
def evaluate(model, x: torch.Tensor, data: dict | None = None, batch_size: int = 500, seed: int = 0, dist=None,
             precision: str = "fp32") -> dict:
    """Per-image means (nats) with one hard posterior sample of images `x` (and the split's `data`, NP-DRAW:
    its parses): ELBO, BCE = -log p(x|z), KL, and the parse CE (`reg_nats`) where the model gives one.  With
    `dist` each rank scores its share and the sums are reduced; `precision` of the forward passes."""
    was = model.training
    model.eval()
    part = dist.chunk(len(x)) if dist is not None else slice(0, len(x))
    g = torch.Generator().manual_seed(dist.seed(seed) if dist is not None else seed)
    sums: dict[str, float] = {}
    for s in range(part.start, part.stop, batch_size):
        rows = slice(s, min(s + batch_size, part.stop))
        t = model.validation_terms(x[rows], g, data or {}, rows, precision)
        for key, value in (("elbo_nats", t["log_px"] - t["kl"]), ("bce_nats", -t["log_px"]), ("kl_nats", t["kl"]),
                           ("reg_nats", t.get("ce"))):
            if value is not None:
                sums[key] = sums.get(key, 0.0) + value.double().sum().item()
    model.train(was)
    if dist is not None:
        sums = dict(zip(sums, dist.sum(*sums.values())))
    return {k: v / len(x) for k, v in sums.items()}


def train(cfg, images: dict[str, torch.Tensor], best_path: Path, resume_path: Path, device: torch.device,
          live=None, dist=None, select: Selector = ELBO_SELECTOR, inputs: dict | None = None,
          data: dict[str, dict] | None = None, after_epoch=None, milestones_path: Path | None = None) -> dict:
    """Train the run's system (cfg.system) on images uint8 (N, C, H, W) per split (train, valid); `inputs`
    what its model is built from besides the configuration (NP-DRAW: its trained prior), `data` what each
    split brings besides images ({split: {name: value}}; NP-DRAW: {"parse": Latents}).  `after_epoch(model,
    record)`, if given, runs after each epoch's validation and returns more entries for the epoch's record.
    Writes the best checkpoint by `select`, and to `milestones_path` the checkpoint kept at each of
    `training.milestones` (npdraw.models.checkpoints.save_milestones); returns the run's state (history,
    best epoch, budget, where and why it stopped)."""
    rank, world = (dist.rank, dist.world) if dist is not None else (0, 1)
    entry = system(cfg.system)
    name = "model" if entry.parts else entry.name   # what its progress bars and messages call the trainee
    section, compute = cfg[entry.section], cfg.compute
    torch.manual_seed(seeds.torch_seed(cfg.seed, entry.salt))
    model = use_layout(model_class(entry.name).build(cfg, **(inputs or {})).to(device), compute.channels_last)
    opt = torch.optim.Adam(model.param_groups(cfg))
    order = torch.Generator().manual_seed(cfg.seed)
    fingerprint = json.dumps({entry.section: dict(section), "training": dict(cfg.training), "ds": dict(cfg.ds),
                              "seed": cfg.seed, "n": len(images["train"]), "numerics": numerics(compute),
                              **model.fingerprint()}, sort_keys=True)
    run = Run(resume_path, fingerprint, live, main=rank == 0)
    forward = compiled(dist.wrap(model, "terms") if dist is not None else model.terms, compute.compile)
    train_x = images["train"].to(device)
    valid_x = fixed_targets(images["valid"], cfg.ds.output == "bernoulli", cfg.seed).to(device)
    train_data = {k: v.to(device) for k, v in (data or {}).get("train", {}).items()}
    valid_data = {k: v.to(device) for k, v in (data or {}).get("valid", {}).items()}
    budget = plan(cfg.training, len(train_x), section.epochs, cfg.training.image_updates, cfg.training.split_epochs)
    epochs, per_round = budget.epochs, budget.per_epoch
    # Checks of the rule: every epoch for the ELBO, every select_every for a score; training.patience counts them.
    every = cfg.training.select_every if select.score else 1
    keep = budget.milestones(cfg.training.milestones, len(train_x), every)
    patience = cfg.training.patience and cfg.training.patience * every
    per_epoch = batches(per_round or len(train_x), section.batch_size, world)

    def where(epoch: int, i: int, rows: torch.Tensor, n: int) -> Step:
        return Step(epoch, i, per_epoch, per_epoch * epochs, rows, n, rank, world, cfg)

    def step(epoch: int, i: int, batch: torch.Tensor):
        rows = batch[rank::world]
        x = as_float(train_x[rows])
        if cfg.ds.binarize == "dynamic":
            x = binarize(x)
        x = layout(x, compute.channels_last)
        args = model.training_args(where(epoch, i, rows, len(batch)), train_data)
        with autocast(device, compute.precision):
            terms = forward(x, x, *args)
        check_finite({TERM_NAMES.get(k, k): v for k, v in terms.items() if k in TERM_NAMES},
                     f"{name} epoch {epoch + 1}, step {i + 1}", resume_path)
        # Summed over this rank's images / global batch * world: DDP's average is then the global mean.
        loss = model.objective(terms, cfg).sum() * world / len(batch)
        report = {"loss": loss * len(batch) / world, "elbo": (terms["log_px"] - terms["kl"]).sum(),
                  "bce": -terms["log_px"].sum(), "kl": terms["kl"].sum()}
        if "ce" in terms:
            report["reg"] = terms["ce"].sum()
        return loss, {key: value.item() for key, value in report.items()}

    def validate(epoch: int, sums: dict, seen: int, seconds: float):
        val = evaluate(model, layout(valid_x, compute.channels_last), valid_data, seed=cfg.seed, dist=dist,
                       precision=compute.precision)
        record = {"epoch": epoch + 1, **{f"train_{k}_nats": v / seen for k, v in sums.items()},
                  **{f"valid_{k}": v for k, v in val.items()},
                  **model.epoch_record(where(epoch, per_epoch - 1, torch.empty(0), 0)),
                  "seconds": seconds, "images_per_s": seen / seconds}
        score, scored = epoch_score(select, model, epoch, epochs, cfg.training.select_every, val["elbo_nats"])
        record.update(scored)
        if after_epoch is not None:
            record.update(after_epoch(model, record))
        log.info("epoch %d: train loss %.2f, valid ELBO %.2f (BCE %.2f, KL %.2f) nats, %.0f images/s", epoch + 1,
                 record["train_loss_nats"], val["elbo_nats"], val["bce_nats"], val["kl_nats"], record["images_per_s"])
        return record, score

    fit(run, model, opt, order, device, name=name, epochs=epochs,
        n=len(train_x), batch_size=section.batch_size, step=step, validate=validate, seed=cfg.seed,
        stream=entry.salt, dist=dist, per_epoch_items=per_round, patience=patience, keep=keep)
    kept = milestone_entries(run.state, cfg.training.milestones, budget, len(train_x))

    def save(m, epoch: int, best: float) -> None:
        save_model(best_path, m, {"epoch": epoch, "selected_by": select.rule, "selection_score": best})
        if milestones_path is not None:
            save_milestones(milestones_path, m, kept)

    state = run.finish(model, save)
    stopped = state["stopped"]["after_epoch"]
    return {**state, "budget": {"rule": budget.rule, "planned_updates": budget.items, "round": budget.per_epoch,
                                "updates": budget.seen(stopped, len(train_x)), "stopped_after_epoch": stopped,
                                "stopped_by": state["stopped"]["reason"], "patience_checks": cfg.training.patience},
            "milestones": [{k: v for k, v in e.items() if k != "state_dict"} for e in kept]}


def milestone_entries(state: dict, counts, budget, n: int) -> list[dict]:
    """One entry per count of `training.milestones`: the checkpoint a run of that budget would have kept
    (the best validation score among the checks up to it), its weights only where they are not the
    selected checkpoint's.  A count the run did not reach (stopped early, or beyond its budget) gets the
    selected checkpoint, saying why."""
    kept = {e["label"]: e for e in state["kept"]}
    final, entries = state["best_epoch"], []
    for count in counts:
        e = kept.get(count)
        if e is None:
            why = (f"stopped by patience after {budget.seen(state['stopped']['after_epoch'], n):,} updates"
                   if state["stopped"]["reason"] == "patience" and count <= budget.items
                   else f"beyond the run's budget of {budget.items:,} updates")
            entries.append({"image_updates": count, "reached": False, "why": why, "selected_epoch": final,
                            "selection_score": state["best"]})
            continue
        entry = {"image_updates": count, "reached": True, "selected_epoch": e["best_epoch"],
                 "selection_score": e["best"]}
        if e["best_epoch"] != final:
            entry["state_dict"] = e["state_dict"]
        entries.append(entry)
    return entries
