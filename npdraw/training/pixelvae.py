"""Training the PixelVAE baseline (method §12) on the same splits as NP-DRAW.

Loss (minimised, nats per image) = -(log p(x|z) - KL(q || N(0, I))) with one
reparameterised sample; Adam; MNIST training images binarised afresh at every
read (dynamic), validation binarised once with a fixed seed; the validation
ELBO picks the checkpoint; a killed run resumes (npdraw.training.loop.Run); several
ranks train data-parallel as in npdraw.runtime.distributed.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from npdraw.data.binarize import as_float, binarize, fixed_targets
from npdraw.models.checkpoints import pixelvae_config, save_pixelvae
from npdraw.models.pixelvae import PixelVAE
from npdraw.runtime import seeds
from npdraw.runtime.config import numerics
from npdraw.runtime.precision import autocast, compiled, layout, use_layout
from npdraw.training.loop import Run, check_finite, fit

log = logging.getLogger(__name__)


@torch.no_grad()
def evaluate_pixelvae(model: PixelVAE, x: torch.Tensor, batch_size: int = 500, seed: int = 0, dist=None,
                      precision: str = "fp32") -> dict:
    """Per-image means (nats) with one sample z ~ q: ELBO, BCE = -log p(x|z), KL; `precision` of the
    forward passes (npdraw.runtime.precision: the terms come back fp32)."""
    was = model.training
    model.eval()
    part = dist.chunk(len(x)) if dist is not None else slice(0, len(x))
    g = torch.Generator().manual_seed(dist.seed(seed) if dist is not None else seed)
    elbo = bce = kl = 0.0
    for s in range(part.start, part.stop, batch_size):
        with autocast(x.device, precision):
            t = model.terms(x[s:min(s + batch_size, part.stop)], g)
        elbo += (t["log_px"] - t["kl"]).double().sum().item()
        bce -= t["log_px"].double().sum().item()
        kl += t["kl"].double().sum().item()
    model.train(was)
    if dist is not None:
        elbo, bce, kl = dist.sum(elbo, bce, kl)
    return {"elbo_nats": elbo / len(x), "bce_nats": bce / len(x), "kl_nats": kl / len(x)}


def train_pixelvae(cfg, images: dict[str, torch.Tensor], best_path: Path, resume_path: Path, device: torch.device,
                   live=None, dist=None) -> dict:
    """images: uint8 (N, 1, 28, 28) per split (train, valid).  Writes the best checkpoint; returns the state."""
    rank, world = (dist.rank, dist.world) if dist is not None else (0, 1)
    pc = cfg.pixelvae
    torch.manual_seed(seeds.torch_seed(cfg.seed, "pixelvae"))
    compute = cfg.compute
    model = use_layout(PixelVAE(pixelvae_config(cfg)).to(device), compute.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=pc.lr)
    order = torch.Generator().manual_seed(cfg.seed)
    fingerprint = json.dumps({"pixelvae": dict(pc), "ds": dict(cfg.ds), "seed": cfg.seed,
                              "n": len(images["train"]), "numerics": numerics(cfg.compute)}, sort_keys=True)
    run = Run(resume_path, fingerprint, live, main=rank == 0)
    forward = compiled(dist.wrap(model, "terms") if dist is not None else model.terms, compute.compile)
    train_x = images["train"].to(device)
    valid_x = fixed_targets(images["valid"], True, cfg.seed).to(device)

    def step(epoch: int, i: int, batch: torch.Tensor):
        x = as_float(train_x[batch[rank::world]])
        if cfg.ds.binarize == "dynamic":
            x = binarize(x)
        with autocast(device, compute.precision):
            terms = forward(layout(x, compute.channels_last))
        check_finite({"log p(x|z)": terms["log_px"], "KL": terms["kl"]},
                     f"pixelvae epoch {epoch + 1}, step {i + 1}", resume_path)
        loss = -(terms["log_px"] - terms["kl"]).sum() * world / len(batch)
        return loss, {"loss": loss.item() * len(batch) / world, "bce": -terms["log_px"].sum().item(),
                      "kl": terms["kl"].sum().item()}

    def validate(epoch: int, sums: dict, seen: int, seconds: float):
        val = evaluate_pixelvae(model, layout(valid_x, compute.channels_last), seed=cfg.seed, dist=dist,
                                precision=compute.precision)
        record = {"epoch": epoch + 1, **{f"train_{k}_nats": v / seen for k, v in sums.items()},
                  **{f"valid_{k}": v for k, v in val.items()}, "seconds": seconds, "images_per_s": seen / seconds}
        log.info("epoch %d: train loss %.2f, valid ELBO %.2f (BCE %.2f, KL %.2f) nats, %.0f images/s", epoch + 1,
                 record["train_loss_nats"], val["elbo_nats"], val["bce_nats"], val["kl_nats"], record["images_per_s"])
        return record, -val["elbo_nats"]

    fit(run, model, opt, order, device, name="pixelvae", epochs=pc.epochs, n=len(train_x), batch_size=pc.batch_size,
        step=step, validate=validate, seed=cfg.seed, stream="pixelvae", dist=dist)
    return run.finish(model, lambda m, epoch, best: save_pixelvae(
        best_path, m, {"epoch": epoch, "valid_elbo_nats": -best}))
