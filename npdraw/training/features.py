"""Training a dataset's domain feature network: an explicit act, not a pipeline stage (method §10, 14).

    python -m npdraw.training.features --dataset omniglot       # features/omniglot.pt + features/omniglot.json

The network (npdraw.evaluation.features.DomainClassifier) learns the labels `datasets.<name>.labels`
names (digits, Omniglot's characters) from every training image of the dataset (no profile caps: the
`paper` profile's data; binary data as Bernoulli draws, as the FID compares them), with a seeded random
validation set of its own (classifier_split), for at most
`classifier.epochs` epochs, stopping after `classifier.patience` without a better validation accuracy.
Its weights and a record (accuracy, settings, the weights' SHA-256, the code and libraries that trained
it) are committed; every domain FID of the pipeline, the tables and the findings is computed with
them.  Retraining changes the SHA-256, which makes both engines rescore every run of the dataset and
changes its metric cards (`snakemake results/<dataset>/<profile>/reference/card.json`): recompute and
commit them with the weights.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch

from npdraw.artifacts.errors import ParamsError
from npdraw.data.prepare import load_prepared
from npdraw.data.splits import make_splits
from npdraw.evaluation.features import RETRAIN, features_record, save_classifier
from npdraw.training.classifier import classifier_split, train_classifier
from npdraw.workflow.cli import main
from npdraw.workflow.params import load_params
from npdraw.workflow.provenance import code_version, library_versions
from npdraw.workflow.resolve import resolve

log = logging.getLogger(__name__)
PROFILE = "paper"   # the dataset's data without caps
# Which prepared array holds the labels each `datasets.<name>.labels` value names (npdraw.data.prepare).
LABEL_ARRAYS = {"labels": "train_labels", "alphabets": "train_alphabets", "characters": "train_characters"}


def train_features(params: dict, dataset: str, data: str | Path, out: str | Path) -> dict:
    """Train the network of `dataset` on its prepared data `data` and write it to `out` (the record; the
    weights beside it); a dataset without labels gets a record that says so.  Returns the record."""
    cfg = resolve(params, dataset=dataset, profile=PROFILE)
    c, labels = cfg.classifier, cfg.ds.labels
    if labels == "none":
        reason = (f"datasets.{dataset}.labels = 'none': this dataset's files carry no class labels to train a "
                  f"domain network on; its FIDs use Inception's features where available")
        return save_classifier(out, None, {"reason": reason}, dataset)
    arrays = load_prepared(data, cfg)
    if LABEL_ARRAYS[labels] not in arrays:
        raise ParamsError(f"datasets.{dataset}.labels = {labels!r}, but {data} has no {LABEL_ARRAYS[labels]} "
                          f"(expected one of {', '.join(k for k in LABEL_ARRAYS if LABEL_ARRAYS[k] in arrays)})")
    splits, _ = make_splits(arrays, cfg)
    train, valid = classifier_split(splits["train"], splits["valid"], cfg.seed)
    take = lambda name, idx: torch.from_numpy(np.asarray(arrays[name][idx]))  # noqa: E731
    key = LABEL_ARRAYS[labels]
    model, stats = train_classifier(take("train_images", train), take(key, train).long(),
                                    take("train_images", valid), take(key, valid).long(),
                                    cfg.ds.channels, c.epochs, c.lr, c.batch_size, cfg.seed, c.width, None,
                                    "fp32", False, c.patience, binary=cfg.ds.output == "bernoulli")
    record = {"labels": labels, **stats, "images": {"train": len(train), "valid": len(valid)},
              "settings": dict(c), "seed": cfg.seed, "command": RETRAIN.format(dataset=dataset),
              "trained_with": {"code": code_version("."), "libraries": library_versions()}}
    log.info("%s: %d classes (%s), validation accuracy %.3f (epoch %d of %d)", dataset, stats["classes"], labels,
             stats["valid_accuracy"], stats["best_epoch"], stats["epochs"])
    return save_classifier(out, model, record, dataset)


def run() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, help="a key of `datasets` in params")
    p.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    p.add_argument("--data", help="its prepared folder (default: data/prepared/<dataset>)")
    p.add_argument("--out", help="the record to write (default: features/<dataset>.json; the weights beside it)")
    p.add_argument("--none", metavar="REASON", help="train nothing: record that the dataset has no network, and why "
                                                    "(e.g. its files are not on this machine)")
    args = p.parse_args()
    params = load_params(args.params)
    if args.dataset not in params["datasets"]:
        raise ParamsError(f"--dataset {args.dataset!r}: expected one of {', '.join(params['datasets'])}")
    out = args.out or features_record(args.dataset)
    record = (save_classifier(out, None, {"reason": args.none}, args.dataset) if args.none else
              train_features(params, args.dataset, args.data or f"data/prepared/{args.dataset}", out))
    print(f"{out}: " + (
        f"sha256 {record['sha256']}; now recompute and commit the metric cards" if record["available"]
        else record["reason"]))


if __name__ == "__main__":
    main(run)
