"""Checkpoint selection, the same rule for every system (`training.select`): which epoch's weights a
trainer keeps.

The paper keeps "the checkpoint with the best validation FID score": samples against the validation
images, in Inception's features where they are available, else the domain classifier's.  The
alternatives are the validation ELBO (every epoch) and the importance-sampled validation NLL (the
authors' code).  A score is taken every `training.select_every` epochs and at the last; the lowest
wins.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from npdraw.data.binarize import fixed_targets
from npdraw.evaluation.features import FeatureExtractor, FIDScore, inception_extractor, load_classifier
from npdraw.evaluation.importance import generate, importance_sampled

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Selector:
    """How a trainer picks its checkpoint: the lowest `score(model)` over the scored epochs."""
    rule: str                                  # what metrics/model.json records as `selected_by`
    key: str                                   # the epoch record's entry for the score
    score: Callable[[torch.nn.Module], float] | None   # None: the validation ELBO, negated, of every epoch


ELBO_SELECTOR = Selector("elbo", "valid_neg_elbo_nats", None)


def fid_selector(fid, n: int, seed: int, precision: str, colour: str, features: str) -> Selector:
    """FID of `n` samples (drawn with the same seed at every scored epoch) against the validation images
    held by `fid` (npdraw.evaluation.features.FIDScore), in the `features` named."""
    def score(model) -> float:
        return fid(generate(model, n, seed, precision=precision, colour=colour, progress=False)["images"])
    return Selector(f"fid ({features})", "valid_fid", score)


def nll_selector(valid_x: torch.Tensor, samples: int, seed: int, precision: str) -> Selector:
    """The importance-sampled NLL (S = `samples`) of the validation images (the authors' code's rule)."""
    def score(model) -> float:
        est = importance_sampled(model, valid_x, samples, seed=seed, progress=False, precision=precision)
        return float(est["nll_nats"].mean())
    return Selector(f"nll (S = {samples})", "valid_nll_nats", score)


def selector(cfg, valid_u8: torch.Tensor, classifier_path: str, device) -> Selector:
    """The run's rule (`training.select`) on its validation images (uint8).  fid: samples against them in
    torch-fidelity's Inception features where they are available, else the domain classifier's; a
    dataset with neither (no labels, no Inception) falls back to the validation ELBO, and the rule
    recorded says so."""
    rule, binary = cfg.training.select, cfg.ds.output == "bernoulli"
    valid = fixed_targets(valid_u8, binary, cfg.seed)   # Bernoulli-drawn for binary data, as the test images
    if rule == "elbo":
        return ELBO_SELECTOR
    if rule == "nll":
        return nll_selector(valid.to(device), cfg.evaluate.nll_samples, cfg.seed, cfg.compute.precision)
    classifier = load_classifier(classifier_path, cfg)
    weights = inception_extractor(cfg.evaluate.inception_weights, required=False)
    if weights is not None:
        feature, name = 2048, "Inception"
    elif classifier is not None:
        feature, name = FeatureExtractor(classifier), "domain features"
    else:
        log.warning("training.select = 'fid': %s has no domain classifier (labels: none) and Inception is "
                    "unavailable; the validation ELBO picks the checkpoint", cfg.dataset)
        return Selector("elbo (no FID features)", ELBO_SELECTOR.key, None)
    return fid_selector(FIDScore(feature, valid, weights), len(valid), cfg.seed, cfg.compute.precision,
                        cfg.evaluate.colour_samples, name)


def training_record(state: dict, select: Selector) -> dict:
    """What a trainer's metrics say of its run (beside its scores): epochs, the checkpoint kept and by
    which rule, the budget and where and why it stopped, the checkpoints kept at the milestones, speed,
    and the history of every epoch."""
    history = state["history"]
    return {"best_epoch": state["best_epoch"], "epochs": len(history), "selected_by": select.rule,
            "budget": state["budget"], "milestones": state["milestones"],
            "selected_epoch": state["best_epoch"], "selection_key": select.key, "selection_score": state["best"],
            "train_images_per_s": float(np.mean([h["images_per_s"] for h in history])),
            "epoch_seconds": float(np.mean([h["seconds"] for h in history])), "history": history}


def epoch_score(select: Selector, model, epoch: int, epochs: int, every: int, valid_elbo: float) -> tuple[float, dict]:
    """The score epoch `epoch` (from 0) of `epochs` competes with (lower is better) and what its record
    gains: the negated validation ELBO (rule elbo, every epoch), the rule's score every `every` epochs
    and at the last, and +inf (never kept) for an epoch not scored."""
    if select.score is None:
        return -valid_elbo, {}
    if (epoch + 1) % every and epoch + 1 != epochs:
        return math.inf, {}
    start = time.perf_counter()
    score = select.score(model)
    return score, {select.key: score, "select_seconds": time.perf_counter() - start}
