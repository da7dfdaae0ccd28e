"""What a trained model's checkpoint holds, and how a model is rebuilt from it or from a run's
configuration: every system's model (model/best.pt; the systems registry, npdraw.workflow.systems, and
their interface, npdraw.models.interface).  The prior's checkpoint is npdraw.models.prior's.

A checkpoint is a state dict plus the configuration that rebuilds the module (never a pickled
module), checked against its contract (npdraw.artifacts.contracts) and, given a run's
configuration, against the architecture that configuration gives.
"""

from __future__ import annotations

from pathlib import Path

from npdraw.artifacts.errors import CheckpointError
from npdraw.artifacts.io import read_checkpoint, save_torch
from npdraw.models.interface import contract, model_class
from npdraw.workflow.systems import SYSTEMS


def save_model(path: Path, model, extra: dict) -> None:
    """A system's model (npdraw.models.interface.GenerativeModel): its kind, what its checkpoint holds,
    and `extra` (epoch, selection rule and score)."""
    save_torch(path, {"kind": model.kind, **model.checkpoint(), **extra})


def save_milestones(path: Path, model, entries: list[dict]) -> None:
    """The checkpoints a trainer kept at its `training.milestones` (npdraw.training.trainer.milestone_entries:
    image_updates, reached, selected_epoch, selection_score, and a state_dict where the weights are not the
    selected checkpoint's), with the model's kind; an empty list when the run has no milestones."""
    save_torch(path, {"kind": model.kind, "milestones": entries})


def read_milestones(path: str | Path, model, device="cpu") -> list[dict]:
    """The entries save_milestones wrote for `model`'s run (refused if they are another system's)."""
    ckpt = read_checkpoint(path, device)
    if ckpt.get("kind") != model.kind or not isinstance(ckpt.get("milestones"), list):
        raise CheckpointError(f"{path}: expected the milestones of a {model.kind} model (model/milestones.pt of "
                              f"its trainer), found kind {ckpt.get('kind')!r}")
    return ckpt["milestones"]


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
