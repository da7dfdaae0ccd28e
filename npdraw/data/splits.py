"""The make_splits stage: train / validation / test index sets, incl. low-data splits.

Indices point into the prepared arrays: `train` and `valid` into the
training images, `test` into the test images (always the full test set, capped
only by the profile, and then by a draw that depends on neither the run's seed
nor its split: every run of a dataset and profile is scored on the same test
images, against the same reference statistics).  method §2:
  full         validation = last n_valid training images, the rest trains
  digit-F      digits {0 .. 10F-1} (MNIST), in both training and validation
  sample-F     a random fraction F of the training images; validation unchanged
  character-F  a random fraction F of the Omniglot characters trains; the images
  alphabet-F   of the other characters (alphabets) are the validation set
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from npdraw.runtime import seeds
from npdraw.runtime.config import ParamsError
from npdraw.runtime.contracts import ArrayContract, Field
from npdraw.runtime.io import read_arrays



# splits.npz: index arrays into the prepared arrays (N_train training images, N_test test images).
SPLITS = ArrayContract("splits file", "make_splits", (
    Field("train", "index", (None,), low=0, below="N_train"),
    Field("valid", "index", (None,), low=0, below="N_train"),
    Field("test", "index", (None,), low=0, below="N_test"),
))


def load_splits(path: str | Path, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A run's splits, checked against the prepared `arrays` they index: every set non-empty, indices
    within the dataset, each set without repeats, training and validation disjoint."""
    splits = read_arrays(path, "splits file", "make_splits")
    SPLITS.check(path, splits, N_train=len(arrays["train_images"]), N_test=len(arrays["test_images"]))
    for name in ("train", "valid", "test"):
        if len(splits[name]) == 0:
            raise SPLITS.fail(path, f"the {name} set is empty, expected at least one index")
        if len(np.unique(splits[name])) != len(splits[name]):
            raise SPLITS.fail(path, f"the {name} set repeats indices, expected each image once")
    shared = np.intersect1d(splits["train"], splits["valid"])
    if len(shared):
        raise SPLITS.fail(path, f"{len(shared)} images are in both the train and the valid set (first: index "
                                f"{shared[0]}), expected disjoint sets")
    return {name: splits[name].astype(np.int64) for name in ("train", "valid", "test")}




def _subset(indices: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """A random subset of `count` indices, kept in stored order."""
    return np.sort(rng.choice(indices, size=count, replace=False))


def make_splits(arrays: dict[str, np.ndarray], cfg) -> tuple[dict[str, np.ndarray], dict]:
    """Return ({'train', 'valid', 'test'} -> int64 indices, summary) for one run."""
    rng = seeds.rng(cfg.seed, "splits")
    n_train, n_test = len(arrays["train_images"]), len(arrays["test_images"])
    kind, fraction = cfg.split_kind, cfg.split_fraction
    all_train = np.arange(n_train)
    n_valid = cfg.ds.n_valid
    if n_valid >= n_train:
        raise ParamsError(f"datasets.{cfg.dataset}.n_valid = {n_valid}: expected fewer than the {n_train} training images")
    train, valid = all_train[:-n_valid], all_train[-n_valid:]
    summary: dict = {"kind": kind, "fraction": fraction, "seed": cfg.seed}
    if kind == "digit":
        digits = np.arange(int(round(fraction * 10)))
        labels = arrays["train_labels"]
        train, valid = train[np.isin(labels[train], digits)], valid[np.isin(labels[valid], digits)]
        summary["digits"] = digits.tolist()
    elif kind == "sample":
        train = _subset(train, max(1, int(round(fraction * len(train)))), rng)
    elif kind in ("character", "alphabet"):
        groups = arrays[f"train_{kind}s"]
        names = np.unique(groups)
        chosen = np.sort(rng.choice(names, size=max(1, int(round(fraction * len(names)))), replace=False))
        inside = np.isin(groups, chosen)
        train, valid = all_train[inside], all_train[~inside]
        summary[f"{kind}s_total"] = int(len(names))
        summary[f"{kind}s_chosen"] = chosen.tolist()
    splits = {"train": train, "valid": valid, "test": np.arange(n_test)}
    for name in splits:
        cap = cfg.data[f"max_{name}_images"]
        if cap is not None and len(splits[name]) > cap:
            splits[name] = _subset(splits[name], cap, seeds.rng(0, "test_cap") if name == "test" else rng)
    for name, idx in splits.items():
        if len(idx) == 0:
            raise ParamsError(f"split {cfg.split!r} of {cfg.dataset!r} leaves the {name} set empty")
    summary["counts"] = {k: int(len(v)) for k, v in splits.items()}
    return {k: v.astype(np.int64) for k, v in splits.items()}, summary
