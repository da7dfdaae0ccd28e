"""What a trained model's checkpoint holds, and how a model is rebuilt from it or from a run's
configuration: the prior (prior/best.pt) and every system's model (model/best.pt; the systems registry,
npdraw.runtime.systems, and their interface, npdraw.models.interface).

A checkpoint is a state dict plus the configuration that rebuilds the module (never a pickled
module), checked against its contract (npdraw.runtime.contracts) and, given a run's
configuration, against the architecture that configuration gives.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from npdraw.models.interface import contract, model_class
from npdraw.models.prior import Prior, PriorConfig, prior_config
from npdraw.parts.canvas import Grid
from npdraw.runtime.contracts import CheckpointContract
from npdraw.runtime.errors import CheckpointError
from npdraw.runtime.io import read_checkpoint, save_torch
from npdraw.runtime.systems import SYSTEMS

# prior/best.pt: the architecture (PriorConfig), the grid, and the weights (the bank among them).
PRIOR_CHECKPOINT = CheckpointContract("prior", "train_prior", ("arch", "grid", "state_dict"))


def build_prior(arch: dict, bank: torch.Tensor, grid: Grid) -> Prior:
    return Prior(PriorConfig(**arch), bank, grid)


def save_prior(path: Path, model: Prior, extra: dict) -> None:
    """A prior's state dict, its architecture and grid, and `extra` (epoch, validation score)."""
    save_torch(path, {"arch": model.cfg.to_dict(), "grid": dataclasses.asdict(model.grid),
                      "state_dict": model.state_dict(), "kind": PRIOR_CHECKPOINT.kind, **extra})


def save_model(path: Path, model, extra: dict) -> None:
    """A system's model (npdraw.models.interface.GenerativeModel): its kind, what its checkpoint holds,
    and `extra` (epoch, selection rule and score)."""
    save_torch(path, {"kind": model.kind, **model.checkpoint(), **extra})


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
    """How a trained model's checkpoint was chosen: the rule and the epoch (a model written before
    training.select existed: by the validation ELBO)."""
    ckpt = read_checkpoint(path)
    return {"selected_by": ckpt.get("selected_by", "elbo"), "selected_epoch": ckpt.get("epoch")}


def load_model(path: str | Path, device="cpu", cfg=None):
    """A trained model of any system, in eval mode.  Without `cfg`, the system its checkpoint's kind
    names; with a run's `cfg`, refused unless it is the run's system (by name: a VAE's checkpoint given
    to a DRAW run says so) with the architecture the run's configuration gives."""
    ckpt = read_checkpoint(path, device)
    kind = ckpt.get("kind")
    name = cfg.system if cfg is not None else kind
    if name not in SYSTEMS:
        found = (f"a {kind} checkpoint" if isinstance(kind, str) else
                 "a checkpoint without a 'kind' (not written by this pipeline's stages, or by an older version)")
        raise CheckpointError(f"{path}: {found}, expected the model of one of the systems "
                              f"{', '.join(SYSTEMS)} (model/best.pt of train_model or train_baseline)")
    cls = model_class(name)
    cls.check_checkpoint(path, ckpt, cfg)
    with contract(cls).rebuilding(path):
        model = cls.from_checkpoint(ckpt)
    return model.to(device).eval()
