"""What a trained model's checkpoint holds, and how a model is rebuilt from it or from a run's
configuration: the prior (prior/best.pt), NP-DRAW and the PixelVAE baseline (model/best.pt).

A checkpoint is a state dict plus the configuration that rebuilds the module (never a pickled
module), checked against its contract (npdraw.runtime.contracts) and, given a run's
configuration, against the architecture that configuration gives.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from npdraw.models.npdraw import ModelConfig, NPDraw
from npdraw.models.pixelvae import PixelVAE, PixelVAEConfig
from npdraw.models.prior import Prior, PriorConfig
from npdraw.parts.canvas import Grid
from npdraw.runtime.contracts import CheckpointContract
from npdraw.runtime.io import read_checkpoint, save_torch

# The params keys of each architecture (the rest of its configuration comes from the dataset and grid).
PRIOR_ARCH_KEYS = ("width", "layers", "heads", "head_dim", "position", "mlp_ratio", "dropout", "conv_channels",
                   "head_hidden")
MODEL_ARCH_KEYS = ("width", "head_hidden", "n_mix", "decoder", "pixelcnn_layers", "pixelcnn_width")
PIXELVAE_ARCH_KEYS = ("latent", "pixelcnn_layers", "width")

# prior/best.pt: the architecture (PriorConfig), the grid, and the weights (the bank among them).
PRIOR_CHECKPOINT = CheckpointContract("prior", "train_prior", ("arch", "grid", "state_dict"))
# model/best.pt of NP-DRAW: encoder + decoder architecture (ModelConfig), the frozen prior's
# architecture, the grid, and the weights of all three.
MODEL_CHECKPOINT = CheckpointContract("npdraw", "train_model", ("arch", "prior_arch", "grid", "state_dict"))
# model/best.pt of the PixelVAE baseline: its architecture (PixelVAEConfig) and weights.
PIXELVAE_CHECKPOINT = CheckpointContract("pixelvae", "train_pixelvae", ("arch", "state_dict"))


def prior_config(cfg, grid: Grid) -> PriorConfig:
    return PriorConfig(parts=cfg.ds.bank_size, steps=grid.cells, cells=grid.cells, channels=grid.channels,
                       side=grid.side, **{k: cfg.prior[k] for k in PRIOR_ARCH_KEYS})


def model_config(cfg) -> ModelConfig:
    grid = Grid.for_dataset(cfg.ds)
    return ModelConfig(channels=cfg.ds.channels, image_size=cfg.ds.image_size, canvas_size=cfg.ds.canvas_size,
                       parts=cfg.ds.bank_size, cells=grid.cells, arch=cfg.ds.arch, output=cfg.ds.output,
                       **{k: cfg.model[k] for k in MODEL_ARCH_KEYS})


def pixelvae_config(cfg) -> PixelVAEConfig:
    return PixelVAEConfig(**{k: cfg.pixelvae[k] for k in PIXELVAE_ARCH_KEYS})


def build_prior(arch: dict, bank: torch.Tensor, grid: Grid) -> Prior:
    return Prior(PriorConfig(**arch), bank, grid)


def build_model(cfg, prior: Prior) -> NPDraw:
    return NPDraw(model_config(cfg), prior, Grid.for_dataset(cfg.ds))


def save_checkpoint(path: Path, model, extra: dict) -> None:
    """A prior's or NP-DRAW's state dict, its architecture and grid, and `extra` (kind, epoch, ...)."""
    save_torch(path, {"arch": model.cfg.to_dict(), "grid": dataclasses.asdict(model.grid),
                      "state_dict": model.state_dict(), **extra})


def save_pixelvae(path: Path, model: PixelVAE, extra: dict) -> None:
    save_torch(path, {"kind": PIXELVAE_CHECKPOINT.kind, "arch": model.cfg.to_dict(), "state_dict": model.state_dict(),
                      **extra})


def run_name(cfg) -> str:
    """The run a checkpoint is checked against, as messages name it."""
    return f"{cfg.dataset}, variant {cfg.variant!r}, profile {cfg.profile!r}"


def load_prior(path: str | Path, device="cpu", cfg=None) -> Prior:
    """A trained prior in eval mode; with a run's `cfg`, refused unless its architecture is the one the
    run's configuration gives (M parts, T steps, canvas, widths)."""
    ckpt = read_checkpoint(path, device)
    expect = prior_config(cfg, Grid.for_dataset(cfg.ds)).to_dict() if cfg is not None else None
    PRIOR_CHECKPOINT.check(path, ckpt, expect, what=f"this run ({run_name(cfg)})" if cfg is not None else "")
    with PRIOR_CHECKPOINT.rebuilding(path):
        grid = Grid(**ckpt["grid"])
        model = build_prior(ckpt["arch"], ckpt["state_dict"]["bank"], grid)
        model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval()


def checkpoint_selection(path: str | Path) -> dict:
    """How a trained model's checkpoint was chosen: the rule and the epoch (a PixelVAE's, and an NP-DRAW
    model's written before model.select, by the validation ELBO)."""
    ckpt = read_checkpoint(path)
    return {"selected_by": ckpt.get("selected_by", "elbo"), "selected_epoch": ckpt.get("epoch")}


def load_model(path: str | Path, device="cpu", cfg=None):
    """A trained NP-DRAW model, or a PixelVAE (checkpoint kind 'pixelvae'), in eval mode.  With a run's
    `cfg`: refused unless it is the kind of model the run trains (cfg.system) with the architecture the
    run's configuration gives."""
    ckpt = read_checkpoint(path, device)
    if cfg is None:
        contract = PIXELVAE_CHECKPOINT if ckpt.get("kind") == PIXELVAE_CHECKPOINT.kind else MODEL_CHECKPOINT
    else:
        contract = PIXELVAE_CHECKPOINT if cfg.system == "pixelvae" else MODEL_CHECKPOINT
    what = f"this run ({run_name(cfg)})" if cfg is not None else ""
    if contract is PIXELVAE_CHECKPOINT:
        contract.check(path, ckpt, pixelvae_config(cfg).to_dict() if cfg is not None else None, what=what)
        with contract.rebuilding(path):
            model = PixelVAE(PixelVAEConfig(**ckpt["arch"]))
            model.load_state_dict(ckpt["state_dict"])
        return model.to(device).eval()
    contract.check(path, ckpt, model_config(cfg).to_dict() if cfg is not None else None, what=what)
    if cfg is not None:   # the prior inside must be the run's prior too
        contract.check(path, ckpt, prior_config(cfg, Grid.for_dataset(cfg.ds)).to_dict(),
                       found_config=ckpt["prior_arch"], what=f"{what}, for its prior")
    with contract.rebuilding(path):
        grid = Grid(**ckpt["grid"])
        sd = ckpt["state_dict"]
        prior = build_prior(ckpt["prior_arch"], sd["prior.bank"], grid)
        model = NPDraw(ModelConfig(**ckpt["arch"]), prior, grid)
        model.load_state_dict(sd)
    return model.to(device).eval()
