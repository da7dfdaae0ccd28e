"""Random streams: each stage draws from (run seed, its own salt), so that no two stages share a
stream for the same seed and changing one stage's draws never moves another's."""

from __future__ import annotations

import numpy as np

# One salt per consumer of randomness; distinct, and distinct from the systems' (tests/test_config.py checks
# it).  Each system's training (initialisation, noise, dynamic binarization) draws from the salt of its
# registry entry (npdraw.workflow.systems), passed as that number.
SALTS = {
    "splits": 1,            # the low-data subset and the profile's caps (npdraw.data.splits)
    "test_cap": 2,          # the test cap's draw, the same for every run (with seed 0)
    "prior": 3,             # the prior's initialisation, dropout and samples (npdraw.training.prior)
    "bank": 6,              # the patches the k-medoids bank clusters (npdraw.parts.bank)
    "classifier_split": 7,  # the domain classifier's own validation images (npdraw.training.classifier)
    "valid_draw": 8,        # a spread validation set's draw, the same for every run (with seed 0)
    "metric_card": 11,      # the floor's held-out draws and the metric card's cases (npdraw.evaluation.card)
}


def salt(stream: str | int) -> int:
    """The salt of a stream: a key of SALTS, or a system's salt given as its number."""
    return stream if isinstance(stream, int) else SALTS[stream]


def sequence(seed: int, stream: str | int, *more: int) -> np.random.SeedSequence:
    """The seed sequence of `stream` (salt()) for a run seed, further split by `more`."""
    return np.random.SeedSequence([seed, salt(stream), *more])


def rng(seed: int, stream: str | int) -> np.random.Generator:
    """A NumPy generator on `stream` for the run seed."""
    return np.random.default_rng(sequence(seed, stream))


def torch_seed(seed: int, stream: str | int, *more: int) -> int:
    """An integer for torch.manual_seed / torch.Generator from `stream` for the run seed."""
    return int(sequence(seed, stream, *more).generate_state(1)[0])
