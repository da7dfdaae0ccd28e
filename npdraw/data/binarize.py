"""Images as the models read them: floats in [0, 1], binarized by a Bernoulli draw where the data is
binary (afresh at every training read; once, with a fixed seed, for evaluation targets)."""

from __future__ import annotations

import torch


def as_float(images_u8: torch.Tensor) -> torch.Tensor:
    return images_u8.float().div_(255.0)


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A Bernoulli draw from the grey levels (dynamic binarization)."""
    return torch.bernoulli(x, generator=generator)


def fixed_targets(images_u8: torch.Tensor, binary: bool, seed: int) -> torch.Tensor:
    """Evaluation targets: binarized once with a fixed seed (reproducible), or the images as they are."""
    x = as_float(images_u8)
    return binarize(x, torch.Generator().manual_seed(seed)) if binary else x
