"""Training the full model (method §9): encoder and decoder around the frozen prior.

Loss (minimised, nats per image) = -(log p(x|z) - kl_weight * KL) + lambda * CE(q, parse).
Adam with the decoder's learning rate scaled by `decoder_lr_scale`; Gumbel
temperature annealed geometrically from tau_start to tau_end over training;
MNIST / Omniglot training images are binarised afresh at every read, the
validation set once with a fixed seed.  The validation ELBO (one hard sample)
is taken every epoch; the checkpoint is the best by `training.select` (a Selector:
FID of samples against the validation images, as the paper; or the validation
ELBO, or the validation NLL), scored every `training.select_every` epochs and at
the last; with `training.image_updates` the run sees that many images, cut into
`training.rounds` epochs (npdraw.training.loop.plan); a killed run resumes
(npdraw.training.loop.Run).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import torch

from npdraw.compute import seeds
from npdraw.compute.precision import autocast, compiled, layout, use_layout
from npdraw.data.binarize import as_float, binarize, fixed_targets
from npdraw.models.checkpoints import save_model
from npdraw.models.npdraw import NPDraw, hard_sample, parse_cross_entropy, step_kl
from npdraw.models.prior import Prior
from npdraw.parts.parser import Latents
from npdraw.training.loop import Run, batches, check_finite, fit, plan
from npdraw.training.select import ELBO_SELECTOR, Selector, epoch_score
from npdraw.workflow.resolve import numerics
from npdraw.workflow.systems import system

log = logging.getLogger(__name__)


@torch.no_grad()
def evaluate(model: NPDraw, x: torch.Tensor, parse: Latents, batch_size: int = 500, seed: int = 0,
             dist=None, precision: str = "fp32") -> dict:
    """Per-image means (nats) with one hard sample z ~ q: ELBO, BCE = -log p(x|z), KL, parse CE.

    With `dist` (npdraw.compute.distributed.Dist) each rank scores its share and the sums are reduced;
    `precision` of the forward passes (npdraw.compute.precision)."""
    was = model.training
    model.eval()
    part = dist.chunk(len(x)) if dist is not None else slice(0, len(x))
    g = torch.Generator().manual_seed(dist.seed(seed) if dist is not None else seed)
    keys = ("elbo_nats", "bce_nats", "kl_nats", "reg_nats")
    sums = dict.fromkeys(keys, 0.0)
    for s in range(part.start, part.stop, batch_size):
        rows = slice(s, min(s + batch_size, part.stop))
        xb = x[rows]
        with autocast(xb.device, precision):
            q = model.encoder(xb)
            z = hard_sample(q, g)
            params, p = model.decoder(model.canvas(*z)), model.prior.logits(*z)
        log_px = model.output.log_prob(params, xb)
        kl = step_kl(q, p).sum(1)
        ce = parse_cross_entropy(q, *parse.batch(rows))
        sums["elbo_nats"] += (log_px - kl).double().sum().item()
        sums["bce_nats"] -= log_px.double().sum().item()
        sums["kl_nats"] += kl.double().sum().item()
        sums["reg_nats"] += ce.double().sum().item()
    model.train(was)
    if dist is not None:
        sums = dict(zip(keys, dist.sum(*(sums[k] for k in keys))))
    return {k: v / len(x) for k, v in sums.items()}


def objective(terms: dict[str, torch.Tensor], kl_weight: float, lambda_reg: float) -> torch.Tensor:
    """The loss of each image (B,), nats: -(log p(x|z) - kl_weight * KL) + lambda * CE(q, parse)."""
    return -(terms["log_px"] - kl_weight * terms["kl"]) + lambda_reg * terms["ce"]


def warmup_probability(epoch: int, rate: float) -> float:
    """The authors' parse warm-up schedule: g_e = exp(-r e (e + 1) / 2) at epoch e (from 0)."""
    return math.exp(-rate * epoch * (epoch + 1) / 2)


def temperature(step: int, total: int, start: float, end: float) -> float:
    """Geometric annealing from start (step 0) to end (last step)."""
    return start * (end / start) ** (step / max(1, total - 1))


def train_model(cfg, prior: Prior, images: dict[str, torch.Tensor], parses: dict[str, Latents], best_path: Path,
                resume_path: Path, device: torch.device, live=None, dist=None, after_epoch=None,
                select: Selector = ELBO_SELECTOR) -> dict:
    """images: uint8 (N, C, H, W) per split (train, valid); parses aligned with them.

    `dist` (npdraw.compute.distributed.Dist): data-parallel over its ranks (see that module); None: one
    process.  `after_epoch(model, record)`, if given, runs after each epoch's validation and returns more
    entries for the epoch's record (they join the history and the curves).  `select` picks the
    checkpoint: its score runs every `training.select_every` epochs and at the last (on every rank: they
    agree)."""
    rank, world = (dist.rank, dist.world) if dist is not None else (0, 1)
    mc, binary = cfg.model, cfg.ds.output == "bernoulli"  # binary targets; dynamic draws when grey
    torch.manual_seed(seeds.torch_seed(cfg.seed, system(cfg.system).salt))
    compute = cfg.compute
    model = use_layout(NPDraw.build(cfg, prior).to(device), compute.channels_last)
    opt = torch.optim.Adam([
        {"params": model.encoder.parameters(), "lr": mc.lr},
        {"params": list(model.decoder_parameters()), "lr": mc.lr * mc.decoder_lr_scale},
    ])
    order = torch.Generator().manual_seed(cfg.seed)
    fingerprint = json.dumps({"model": dict(mc), "training": dict(cfg.training), "ds": dict(cfg.ds), "seed": cfg.seed,
                              "n": len(images["train"]), "prior": prior.cfg.to_dict(),
                              "numerics": numerics(cfg.compute)},
                             sort_keys=True)
    run = Run(resume_path, fingerprint, live, main=rank == 0)
    forward = compiled(dist.wrap(model, "terms") if dist is not None else model.terms, compute.compile)
    train_x, train_parse = images["train"].to(device), parses["train"].to(device)
    valid_x = fixed_targets(images["valid"], binary, cfg.seed).to(device)
    valid_parse = parses["valid"].to(device)
    epochs, per_round = plan(cfg.training, len(train_x), mc.epochs, cfg.training.image_updates)
    per_epoch = batches(per_round or len(train_x), mc.batch_size, world)
    total_steps = per_epoch * epochs
    tau = mc.tau_start

    def step(epoch: int, i: int, batch: torch.Tensor):
        nonlocal tau
        idx = batch[rank::world]
        x = as_float(train_x[idx])
        if binary:
            x = binarize(x)
        x = layout(x, compute.channels_last)
        tau = temperature(epoch * per_epoch + i, total_steps, mc.tau_start, mc.tau_end)
        # Each image of the global batch flips its own coin, from (seed, epoch, step): the same coins
        # whatever the number of ranks.
        warm = warmup_probability(epoch, cfg.ds.warmup_rate) if mc.warmup else 0.0
        replace = None
        if warm > 0:
            coins = np.random.default_rng([cfg.seed, epoch, i]).random(len(batch)) < warm
            replace = torch.from_numpy(coins[rank::world]).to(device)
        with autocast(device, compute.precision):
            terms = forward(x, x, train_parse.batch(idx), tau, mc.relaxed_id == "hard", replace)
        check_finite({"log p(x|z)": terms["log_px"], "KL": terms["kl"], "parse CE": terms["ce"]},
                     f"model epoch {epoch + 1}, step {i + 1}", resume_path)
        elbo = terms["log_px"] - terms["kl"]
        # Summed over this rank's images / global batch * world: DDP's average is then the global mean.
        loss = objective(terms, mc.kl_weight, cfg.ds.lambda_reg).sum() * world / len(batch)
        return loss, {key: value.item() for key, value in (
            ("loss", loss * len(batch) / world), ("elbo", elbo.sum()), ("bce", -terms["log_px"].sum()),
            ("kl", terms["kl"].sum()), ("reg", terms["ce"].sum()))}

    def validate(epoch: int, sums: dict, seen: int, seconds: float):
        val = evaluate(model, valid_x, valid_parse, seed=cfg.seed, dist=dist, precision=compute.precision)
        record = {"epoch": epoch + 1, **{f"train_{k}_nats": v / seen for k, v in sums.items()},
                  **{f"valid_{k}": v for k, v in val.items()}, "tau": tau, "seconds": seconds,
                  "images_per_s": seen / seconds}
        score, scored = epoch_score(select, model, epoch, epochs, cfg.training.select_every, val["elbo_nats"])
        record.update(scored)
        if after_epoch is not None:
            record.update(after_epoch(model, record))
        log.info("epoch %d: train loss %.2f, valid ELBO %.2f (BCE %.2f, KL %.2f) nats, %.0f images/s",
                 epoch + 1, record["train_loss_nats"], val["elbo_nats"], val["bce_nats"], val["kl_nats"],
                 record["images_per_s"])
        return record, score

    fit(run, model, opt, order, device, name="model", epochs=epochs, n=len(train_x), batch_size=mc.batch_size,
        step=step, validate=validate, seed=cfg.seed, stream=system(cfg.system).salt, dist=dist,
        per_epoch_items=per_round)
    return run.finish(model, lambda m, epoch, best: save_model(
        best_path, m, {"epoch": epoch, "selected_by": select.rule, "selection_score": best}))
