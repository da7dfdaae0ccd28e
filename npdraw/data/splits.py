"""The make_splits stage: train / validation / test index sets, incl. low-data splits.

Indices point into the prepared arrays: `train` and `valid` into the training images, `test` into
the test images (always the full test set, capped only by the profile, and then by a draw that
depends on neither the run's seed nor its split: every run of a dataset and profile is scored on
the same test images, against the same reference statistics).  method §2:

  validation   `datasets.<name>.validation`: tail (the last n_valid training images, stored order:
               MNIST, the official validation set of binarized MNIST) or spread (n_valid images drawn
               once, the same for every seed, across the label groups in proportion: Omniglot's stored
               order is by alphabet, so its tail would be whole characters of the last alphabets)
  pool         what a split takes its proportion of: the training images less the validation set
               (full, digit, sample), or all of them (character, alphabet: their validation is the
               groups left out).  A profile's cap on training images shrinks the pool first, so that a
               split's proportion is of the (capped) data: no cap makes two proportions train on the
               same images
  full         the pool trains
  digit-F      digits {0 .. 10F-1} (MNIST), in both training and validation
  sample-F     a random floor(F x pool) images of the pool; validation unchanged
  character-F  floor(F x characters) (at least one) random Omniglot characters train on their pool
  alphabet-F   images; n_valid random images of the other characters (alphabets) validate

Counts are floor(F x total) with at least one: the paper's 3 % of 50 alphabets is one alphabet.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from npdraw.compute import seeds
from npdraw.artifacts.errors import ParamsError
from npdraw.artifacts.contracts import ArrayContract, Field
from npdraw.artifacts.io import read_arrays



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




def split_images(arrays: dict[str, np.ndarray], splits: dict[str, np.ndarray]):
    """{'train', 'valid', 'test'} -> uint8 (N, C, H, W) torch tensors of a run's splits."""
    import torch

    return {s: torch.from_numpy(np.asarray(arrays["test_images" if s == "test" else "train_images"][splits[s]]))
            for s in ("train", "valid", "test")}


def _subset(indices: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """A random subset of `count` indices, kept in stored order."""
    return np.sort(rng.choice(indices, size=count, replace=False))


def proportion_count(fraction: float, total: int) -> int:
    """How many of `total` items a proportion keeps: floor(F x total), at least one (float noise aside)."""
    return max(1, math.floor(fraction * total + 1e-9))


GROUP_KINDS = ("character", "alphabet")


def strata(arrays: dict[str, np.ndarray]) -> np.ndarray | None:
    """The coarsest label group of every training image (Omniglot's alphabet, else the class: MNIST's
    digit), None when the dataset has none: what a spread validation set is drawn across, and what the
    metric card's mode dropping keeps fewer of."""
    key = next((k for k in ("train_alphabets", "train_labels") if k in arrays), None)
    return None if key is None else np.asarray(arrays[key])


def validation_set(arrays: dict[str, np.ndarray], ds, dataset: str) -> np.ndarray:
    """The n_valid training images the full, digit and sample splits validate on (module docstring):
    the tail in stored order, or spread across the label groups by a fixed draw (largest remainders)."""
    n_train, n_valid = len(arrays["train_images"]), ds["n_valid"]
    if n_valid >= n_train:
        raise ParamsError(f"datasets.{dataset}.n_valid = {n_valid}: expected fewer than the {n_train} training images")
    if ds["validation"] == "tail":
        return np.arange(n_train - n_valid, n_train)
    groups = strata(arrays)
    if groups is None:
        raise ParamsError(f"datasets.{dataset}.validation = 'spread': needs label groups to spread over "
                          f"(datasets.{dataset}.labels is 'none'); use 'tail'")
    names, sizes = np.unique(groups, return_counts=True)
    share = sizes * n_valid / n_train
    take = np.floor(share).astype(int)
    take[np.argsort(take - share, kind="stable")[:n_valid - take.sum()]] += 1   # largest remainders
    rng = seeds.rng(0, "valid_draw")
    return np.sort(np.concatenate([rng.choice(np.flatnonzero(groups == name), size=k, replace=False)
                                   for name, k in zip(names, take)]))


def _groups(summary: dict, kind: str, ids: np.ndarray, total: int) -> None:
    summary[f"{kind}s"] = {"chosen": int(len(ids)), "total": int(total), "ids": [int(i) for i in ids]}


def make_splits(arrays: dict[str, np.ndarray], cfg) -> tuple[dict[str, np.ndarray], dict]:
    """Return ({'train', 'valid', 'test'} -> int64 indices, summary) for one run; the summary records the
    pool, the digits, characters and alphabets a split uses, and the counts."""
    rng = seeds.rng(cfg.seed, "splits")
    n_train, n_test = len(arrays["train_images"]), len(arrays["test_images"])
    kind, fraction = cfg.split_kind, cfg.split_fraction
    all_train = np.arange(n_train)
    valid = validation_set(arrays, cfg.ds, cfg.dataset)
    pool = all_train if kind in GROUP_KINDS else np.setdiff1d(all_train, valid)
    cap = cfg.data.max_train_images
    if cap is not None and len(pool) > cap:
        pool = _subset(pool, cap, rng)
    summary: dict = {"kind": kind, "fraction": fraction, "seed": cfg.seed, "pool": int(len(pool)),
                     "validation": cfg.ds.validation}
    train = pool
    if kind == "digit":
        digits = np.arange(int(round(fraction * 10)))
        labels = arrays["train_labels"]
        train, valid = pool[np.isin(labels[pool], digits)], valid[np.isin(labels[valid], digits)]
        summary["digits"] = digits.tolist()
    elif kind == "sample":
        train = _subset(pool, proportion_count(fraction, len(pool)), rng)
    elif kind in GROUP_KINDS:
        groups = np.asarray(arrays[f"train_{kind}s"])
        names = np.unique(groups)
        chosen = np.sort(rng.choice(names, size=proportion_count(fraction, len(names)), replace=False))
        inside = np.isin(groups, chosen)
        train, left_out = pool[inside[pool]], all_train[~inside]
        valid = _subset(left_out, min(cfg.ds.n_valid, len(left_out)), rng) if len(left_out) else left_out
        summary["validation"] = f"{len(valid)} random images of the {len(np.unique(groups[left_out]))} {kind}s left out"
        _groups(summary, kind, chosen, len(names))
        if kind == "character":   # the alphabets those characters come from
            alphabets = np.asarray(arrays["train_alphabets"])
            _groups(summary, "alphabet", np.unique(alphabets[inside]), len(np.unique(alphabets)))
        else:                     # the characters of those alphabets
            characters = np.asarray(arrays["train_characters"])
            _groups(summary, "character", np.unique(characters[inside]), len(np.unique(characters)))
            summary["characters"].pop("ids")   # hundreds; the alphabets name them
    splits = {"train": train, "valid": valid, "test": np.arange(n_test)}
    for name in ("valid", "test"):
        cap = cfg.data[f"max_{name}_images"]
        if cap is not None and len(splits[name]) > cap:
            splits[name] = _subset(splits[name], cap, seeds.rng(0, "test_cap") if name == "test" else rng)
    for name, idx in splits.items():
        if len(idx) == 0:
            raise ParamsError(f"split {cfg.split!r} of {cfg.dataset!r} leaves the {name} set empty")
    summary["counts"] = {k: int(len(v)) for k, v in splits.items()}
    summary["train_share_of_pool"] = len(train) / len(pool)
    return {k: v.astype(np.int64) for k, v in splits.items()}, summary
