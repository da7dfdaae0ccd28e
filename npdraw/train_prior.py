"""Pre-training the prior on heuristic parses (SPEC 7, Eq. 5).

Maximum likelihood of the training parses, teacher forced; validation NLL
every epoch; the checkpoint with the lowest validation NLL is kept.  A resume
file (model, optimiser, epoch, random states) is written after every epoch and
removed when training finishes, so a killed run continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from npdraw.canvas import Grid
from npdraw.config import ParamsError
from npdraw.io import atomic_path
from npdraw.prior import Prior, PriorConfig

log = logging.getLogger(__name__)
PRIOR_SALT = 3
ARCH_KEYS = ("width", "layers", "heads", "mlp_ratio", "dropout", "conv_channels", "head_hidden")


@dataclass
class Latents:
    z_id: torch.Tensor   # (N, T) int64
    z_loc: torch.Tensor  # (N, T) int64
    z_is: torch.Tensor   # (N, T) bool

    def __len__(self) -> int:
        return len(self.z_id)

    def batch(self, idx) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.z_id[idx], self.z_loc[idx], self.z_is[idx]

    def to(self, device) -> "Latents":
        return Latents(self.z_id.to(device), self.z_loc.to(device), self.z_is.to(device))


def load_parses(path: str | Path) -> dict[str, Latents]:
    with np.load(path) as z:
        return {s: Latents(torch.from_numpy(z[f"{s}_z_id"].astype(np.int64)),
                           torch.from_numpy(z[f"{s}_z_loc"].astype(np.int64)),
                           torch.from_numpy(z[f"{s}_z_is"].astype(bool)))
                for s in ("train", "valid", "test")}


def prior_config(cfg, grid: Grid) -> PriorConfig:
    return PriorConfig(parts=cfg.ds.bank_size, steps=grid.cells, cells=grid.cells, channels=grid.channels,
                       side=grid.side, **{k: cfg.prior[k] for k in ARCH_KEYS})


def build_prior(arch: dict, bank: torch.Tensor, grid: Grid) -> Prior:
    return Prior(PriorConfig(**arch), bank, grid)


@torch.no_grad()
def evaluate_nll(model: Prior, data: Latents, batch_size: int = 512) -> dict[str, float]:
    """Mean -log p(z) per sequence (nats), in total and split by id / loc / is."""
    was_training = model.training
    model.eval()
    sums = {"id": 0.0, "loc": 0.0, "is": 0.0, "total": 0.0}
    for start in range(0, len(data), batch_size):
        lp = model.log_prob(*data.batch(slice(start, start + batch_size)))
        for k in sums:
            sums[k] -= lp[k].double().sum().item()
    model.train(was_training)
    return {f"nll_{k}_nats": v / len(data) for k, v in sums.items()}


def save_checkpoint(path: Path, model: Prior, extra: dict) -> None:
    """State dict + configuration (never a pickled module)."""
    with atomic_path(path) as tmp:
        torch.save({"arch": model.cfg.to_dict(), "grid": dataclasses.asdict(model.grid),
                    "state_dict": model.state_dict(), **extra}, tmp)


def load_prior(path: str | Path, device="cpu") -> Prior:
    ckpt = torch.load(path, map_location=device, weights_only=True)
    grid = Grid(**ckpt["grid"])
    model = build_prior(ckpt["arch"], ckpt["state_dict"]["bank"], grid)
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval()


def _log_live(live, record: dict) -> None:
    if live is not None:
        for key in ("train_nll_nats", "valid_nll_nats"):
            live.log_metric(key.replace("_nll_nats", "/nll"), record[key])
        live.next_step()


def train_prior(cfg, bank: torch.Tensor, parses: dict[str, Latents], best_path: Path, resume_path: Path,
                device: torch.device, live=None) -> dict:
    """Train; write the best checkpoint (lowest validation NLL) to best_path; return the history."""
    grid = Grid.for_dataset(cfg.ds)
    steps = parses["train"].z_id.shape[1]
    if steps != grid.cells:
        raise ParamsError(f"parses have {steps} steps but the configuration's grid has {grid.cells} "
                          f"(canvas {grid.side}, K = {grid.patch}): parses from another configuration?")
    pc = cfg.prior
    torch.manual_seed(int(np.random.SeedSequence([cfg.seed, PRIOR_SALT]).generate_state(1)[0]))
    model = Prior(prior_config(cfg, grid), bank, grid).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=pc.lr)
    order = torch.Generator().manual_seed(cfg.seed)
    fingerprint = json.dumps({"prior": dict(pc), "ds": dict(cfg.ds), "seed": cfg.seed, "n": len(parses["train"])},
                             sort_keys=True)
    state = {"epoch": 0, "best": math.inf, "best_epoch": -1, "best_state": None, "history": []}
    if resume_path.exists():
        ckpt = torch.load(resume_path, map_location=device, weights_only=False)
        if ckpt.get("fingerprint") == fingerprint:
            model.load_state_dict(ckpt["state_dict"])
            opt.load_state_dict(ckpt["optimizer"])
            order.set_state(ckpt["order_rng"])
            torch.set_rng_state(ckpt["torch_rng"])
            state = ckpt["state"]
            log.info("resuming from %s at epoch %d", resume_path, state["epoch"])
            for record in state["history"]:  # the curves restart whole, whatever survived of them
                _log_live(live, record)
        else:
            log.info("%s belongs to another configuration: starting afresh", resume_path)
    train, valid = parses["train"].to(device), parses["valid"].to(device)
    per_epoch = math.ceil(len(train) / pc.batch_size)
    for epoch in range(state["epoch"], pc.epochs):
        model.train()
        start, total, seen = time.perf_counter(), 0.0, 0
        perm = torch.randperm(len(train), generator=order).to(device)
        bar = tqdm(range(per_epoch), desc=f"prior epoch {epoch + 1}/{pc.epochs}", mininterval=5, leave=False)
        for step in bar:
            idx = perm[step * pc.batch_size:(step + 1) * pc.batch_size]
            loss = -model.log_prob(*train.batch(idx))["total"].mean()   # nats per sequence
            if not torch.isfinite(loss):
                raise FloatingPointError(f"prior loss is {loss.item()} at epoch {epoch + 1}, step {step + 1}; "
                                         f"the last good checkpoint is kept at {resume_path}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, seen = total + loss.item() * len(idx), seen + len(idx)
        seconds = time.perf_counter() - start
        val = evaluate_nll(model, valid)
        record = {"epoch": epoch + 1, "train_nll_nats": total / seen, "valid_nll_nats": val["nll_total_nats"],
                  "seconds": seconds, "sequences_per_s": seen / seconds}
        state["history"].append(record)
        log.info("epoch %d: train %.3f, valid %.3f nats/sequence (%.0f seq/s)", epoch + 1,
                 record["train_nll_nats"], record["valid_nll_nats"], record["sequences_per_s"])
        _log_live(live, record)
        if val["nll_total_nats"] < state["best"]:
            state["best"], state["best_epoch"] = val["nll_total_nats"], epoch + 1
            state["best_state"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        state["epoch"] = epoch + 1
        with atomic_path(resume_path) as tmp:
            torch.save({"fingerprint": fingerprint, "state_dict": model.state_dict(), "optimizer": opt.state_dict(),
                        "order_rng": order.get_state(), "torch_rng": torch.get_rng_state(), "state": state}, tmp)
    # The best weights are kept in the resume file, so the output is complete even after a restart.
    model.load_state_dict(state["best_state"])
    save_checkpoint(best_path, model, {"epoch": state["best_epoch"], "valid_nll_nats": state["best"]})
    return {k: v for k, v in state.items() if k != "best_state"}
