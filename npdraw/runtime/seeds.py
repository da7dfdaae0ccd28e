"""Random streams: each stage draws from (run seed, its own salt), so that no two stages share a
stream for the same seed and changing one stage's draws never moves another's."""

from __future__ import annotations

import numpy as np

from npdraw.runtime.systems import SYSTEMS

# One salt per consumer of randomness; distinct (tests/test_config.py checks it).  Each system's training
# (initialisation, noise, dynamic binarization) draws from the salt of its registry entry, under its name
# (npdraw.runtime.systems).
SALTS = {
    "splits": 1,            # the low-data subset and the profile's caps (npdraw.data.splits)
    "test_cap": 2,          # the test cap's draw, the same for every run (with seed 0)
    "prior": 3,             # the prior's initialisation, dropout and samples (npdraw.training.prior)
    "bank": 6,              # the patches the k-medoids bank clusters (npdraw.parts.bank)
    "classifier_split": 7,  # the domain classifier's own validation images (npdraw.training.classifier)
    "valid_draw": 8,        # a spread validation set's draw, the same for every run (with seed 0)
    **{name: system.salt for name, system in SYSTEMS.items()},
}


def sequence(seed: int, stream: str, *more: int) -> np.random.SeedSequence:
    """The seed sequence of `stream` (a key of SALTS) for a run seed, further split by `more`."""
    return np.random.SeedSequence([seed, SALTS[stream], *more])


def rng(seed: int, stream: str) -> np.random.Generator:
    """A NumPy generator on `stream` for the run seed."""
    return np.random.default_rng(sequence(seed, stream))


def torch_seed(seed: int, stream: str, *more: int) -> int:
    """An integer for torch.manual_seed / torch.Generator from `stream` for the run seed."""
    return int(sequence(seed, stream, *more).generate_state(1)[0])
