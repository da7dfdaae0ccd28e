"""Stage train_classifier: the domain feature extractor for fid_domain / kid_domain (method §10).

A small CNN trained on the dataset's own labels (MNIST / CIFAR-10 classes,
Omniglot alphabets) over the full split (seed 0) of the dataset at the profile's
size, whatever split a run uses, with a random validation set drawn from it
(features.classifier_split); its penultimate layer is the feature
that torchmetrics' FID and KID use.  Works offline, always.
"""

import logging
from pathlib import Path

import numpy as np
import torch

from npdraw.data.prepare import load_prepared
from npdraw.data.splits import make_splits
from npdraw.evaluation.features import save_classifier
from npdraw.training.classifier import classifier_split, train_classifier
from npdraw.workflow.cli import main, run_config, stage_parser
from npdraw.workflow.provenance import write_metrics


def run() -> None:
    p = stage_parser("train_classifier", __doc__)
    args = p.parse_args()
    cfg = run_config(args)
    if cfg.ds.labels == "none":   # no domain classifier: say why in both outputs; FID then uses Inception only
        reason = (f"datasets.{cfg.dataset}.labels = 'none': this dataset's files carry no class labels to train "
                  f"the domain FID classifier on")
        save_classifier(args.out, None, {"unavailable": reason}, cfg.dataset)
        write_metrics(args.metrics, {"labels": "none", "available": False, "reason": reason}, cfg)
        logging.getLogger("train_classifier").info("no domain classifier: %s", reason)
        return
    arrays = load_prepared(args.data, cfg)
    splits, _ = make_splits(arrays, cfg)
    train, valid = classifier_split(splits["train"], splits["valid"], cfg.seed)
    key = "train_labels" if cfg.ds.labels == "labels" else "train_alphabets"
    take = lambda name, idx: torch.from_numpy(np.asarray(arrays[name][idx]))  # noqa: E731
    c = cfg.classifier
    resume = Path(args.out).with_name("resume.pt")   # a killed run continues from its last epoch
    model, stats = train_classifier(take("train_images", train), take(key, train).long(),
                                    take("train_images", valid), take(key, valid).long(),
                                    cfg.ds.channels, c.epochs, c.lr, c.batch_size, cfg.seed, c.width, resume,
                                    cfg.compute.precision, cfg.compute.channels_last, c.patience)
    save_classifier(args.out, model, stats, cfg.dataset)
    write_metrics(args.metrics, {"labels": cfg.ds.labels, **stats}, cfg)
    resume.unlink(missing_ok=True)   # finished: nothing left to resume
    logging.getLogger("train_classifier").info("domain classifier: %d classes, validation accuracy %.3f (epoch %d)",
                                               stats["classes"], stats["valid_accuracy"], stats["best_epoch"])


if __name__ == "__main__":
    main(run)
