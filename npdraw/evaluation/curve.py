"""A run's learning curve: its samples scored at each budget of `training.milestones`, with the checkpoint a
run of that budget would have kept (npdraw.training.trainer.milestone_entries), beside the selected one.

One run then gives the verdicts of several budgets: the findings at 60,000 image updates, at 240,000 and at
the paper's, from the same seeds.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from npdraw.evaluation.floor import KEYS

# What a curve point keeps of npdraw.evaluation.floor.sample_quality: each feature network's FID, KID and its
# spread, precision, recall and whether the FID lies below the floor by more than its spread (the floor and the
# network are the run's, said once beside the curve).
SCORE_KEYS = frozenset(key for keys in KEYS.values()
                       for key in (*keys, f"{keys[1]}_std", f"{keys[0]}_below_floor"))


def milestone_samples(model, milestones: list[dict], draw: Callable[[], dict]) -> list[torch.Tensor | None]:
    """The images `draw()` gives with each milestone's weights loaded in `model` (None where the milestone's
    checkpoint is the selected one: its samples are the run's own); the model's weights are restored after."""
    if not any("state_dict" in m for m in milestones):
        return [None] * len(milestones)
    selected = {k: v.detach().clone() for k, v in model.state_dict().items()}
    images = []
    for m in milestones:
        if "state_dict" not in m:
            images.append(None)
            continue
        model.load_state_dict(m["state_dict"])
        images.append(draw()["images"])
    model.load_state_dict(selected)
    return images


def curve(milestones: list[dict], images: list[torch.Tensor | None], selected: dict,
          quality: Callable[[torch.Tensor], dict]) -> list[dict]:
    """One point per milestone: its image updates, whether the run reached it (and why not), the epoch of
    the checkpoint kept, and `quality(images)`'s scores (those of `selected`, the run's own, where the
    checkpoint is the selected one)."""
    points = []
    for m, x in zip(milestones, images):
        scores = selected if x is None else quality(x)
        points.append({**{k: v for k, v in m.items() if k != "state_dict"},
                       **{k: v for k, v in scores.items() if k in SCORE_KEYS}})
    return points
