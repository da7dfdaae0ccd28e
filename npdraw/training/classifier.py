"""Training the domain network whose features give fid_domain / kid_domain (method §10, 14).

A small CNN (npdraw.evaluation.features.DomainClassifier) fitted to the dataset's own labels, with a
validation set of its own drawn from the training images, on the images as the FID compares them
(binary data: Bernoulli draws); the epoch with the best validation accuracy gives the weights; a killed
run resumes (npdraw.training.loop).  Called by npdraw.training.features, which commits the result.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from npdraw.compute import seeds
from npdraw.compute.precision import autocast, fp32, layout, use_layout
from npdraw.data.binarize import as_float, binarize, fixed_targets
from npdraw.evaluation.features import DomainClassifier
from npdraw.training.loop import Run, fit

log = logging.getLogger(__name__)


def classifier_split(train, valid, seed: int) -> tuple:
    """The classifier's own train / validation indices: the reference run's training and validation
    images pooled, and a seeded random validation set of the same size drawn from the pool.  The
    dataset's validation set is the last images in stored order, which for Omniglot are whole
    alphabets the training images never show (an accuracy of 0 that says nothing)."""
    pool = np.concatenate([np.asarray(train), np.asarray(valid)])
    held = seeds.rng(seed, "classifier_split").permutation(len(pool))[:len(valid)]
    mask = np.zeros(len(pool), bool)
    mask[held] = True
    return np.sort(pool[~mask]), np.sort(pool[mask])


def train_classifier(images: torch.Tensor, labels: torch.Tensor, valid_images, valid_labels, channels: int,
                     epochs: int, lr: float, batch_size: int, seed: int, width: int = 32,
                     resume_path: Path | None = None, precision: str = "fp32",
                     channels_last: bool = False, patience: int | None = None,
                     binary: bool = False) -> tuple[DomainClassifier, dict]:
    """Fit the domain classifier; images uint8 (N, C, H, W).  `binary`: it learns and is validated on
    binary images, as the FID compares them (training images drawn afresh at every read, validation
    images once with `seed`).  The epoch with the best validation accuracy gives the weights; with
    `patience`, training stops once that many epochs have not improved it (`epochs` is then the most it
    runs).  With `resume_path`, a killed run continues from its last finished epoch.  `precision` and
    `channels_last` (npdraw.compute.precision) of the training steps; the loss is taken from fp32 logits.
    Returns the model and its validation accuracy."""
    torch.manual_seed(seed)
    valid_x = fixed_targets(valid_images, binary, seed)   # float [0, 1]
    classes = int(labels.max()) + 1
    model = use_layout(DomainClassifier(channels, classes, width), channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    fingerprint = json.dumps({"classifier": [epochs, lr, batch_size, seed, width, channels, classes, patience, binary],
                              "n": [len(images), len(valid_images)], "numerics": [precision, channels_last]})
    run = Run(resume_path, fingerprint)

    def step(epoch: int, i: int, batch: torch.Tensor):
        x = as_float(images[batch])
        with autocast("cpu", precision):
            logits = model(layout(binarize(x) if binary else x, channels_last))
        return F.cross_entropy(fp32(logits), labels[batch]), {}

    def validate(epoch: int, sums: dict, seen: int, seconds: float):
        accuracy = _accuracy(model, valid_x, valid_labels)
        log.info("classifier epoch %d: validation accuracy %.3f", epoch + 1, accuracy)
        return {"epoch": epoch + 1, "valid_accuracy": accuracy}, -accuracy

    fit(run, model, opt, order, "cpu", name="classifier", epochs=epochs, n=len(images), batch_size=batch_size,
        step=step, validate=validate, seed=seed, stream="classifier_split", patience=patience)
    state = run.finish(model, lambda *_: None)
    model.eval()
    model.cfg["feature_scale"] = feature_rms(model, valid_x)
    return model, {"classes": classes, "valid_accuracy": -state["best"], "epochs": len(state["history"]),
                   "max_epochs": epochs, "patience": patience, "best_epoch": state["best_epoch"],
                   "history": [h["valid_accuracy"] for h in state["history"]],
                   "feature_scale": model.cfg["feature_scale"]}


@torch.no_grad()
def feature_rms(model: DomainClassifier, images: torch.Tensor) -> float:
    """Root mean square of one unscaled feature over `images` (float [0, 1]): the classifier's feature scale."""
    squares = sum(model.body(images[s:s + 1000]).double().pow(2).sum().item()
                  for s in range(0, len(images), 1000))
    return float((squares / (len(images) * model.num_features)) ** 0.5)


@torch.no_grad()
def _accuracy(model: DomainClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    correct = sum((model(images[s:s + 1000]).argmax(1) == labels[s:s + 1000]).sum().item()
                  for s in range(0, len(images), 1000))
    return correct / len(images)
