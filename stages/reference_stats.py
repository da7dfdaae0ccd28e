"""Stage reference_stats: FID / KID statistics of the test images, cached once per dataset and profile.

The test images are those every run of the dataset at this profile is scored on
(the full test set, capped by the profile with a draw independent of the run).

Domain features (the trained classifier) always; standard Inception features
when torch-fidelity and its weights are available (evaluate.inception decides
whether their absence is skipped with one line or is an error).  Beside them, the
FID / KID of as many real training images as a run generates, against the same
statistics: the score of a model whose samples were real images, printed next to
every model's.
"""

import logging

import numpy as np
import torch

from npdraw.data.binarize import fixed_targets
from npdraw.data.prepare import load_prepared
from npdraw.data.splits import make_splits
from npdraw.evaluation.features import (
    FeatureExtractor,
    inception_extractor,
    load_classifier,
    reference_state,
    save_reference,
    score,
)
from npdraw.workflow.cli import main, run_config, stage_parser

log = logging.getLogger("reference_stats")


def run() -> None:
    p = stage_parser("reference_stats", __doc__)
    args = p.parse_args()
    cfg = run_config(args)
    ev = cfg.evaluate
    arrays = load_prepared(args.data, cfg)
    splits = make_splits(arrays, cfg)[0]
    test = splits["test"][:ev.fid_images]
    images = torch.from_numpy(np.asarray(arrays["test_images"][test]))
    x = fixed_targets(images, cfg.ds.output == "bernoulli", ev.seed)   # what samples are compared with
    classifier = load_classifier(args.classifier, cfg)   # None: the dataset has no labels to train one on
    stats = {"images": len(x), "domain": None if classifier is None else
             reference_state(FeatureExtractor(classifier), x, ev.kid_subset_size)}
    weights = inception_extractor(ev.inception_weights, ev.inception == "require")
    stats["inception"] = None if weights is None else reference_state(2048, x, ev.kid_subset_size, weights)
    # The floor a model's FID is read against: as many real training images as a run generates,
    # prepared as its samples are compared (binarised once), scored against the same statistics.
    real = fixed_targets(torch.from_numpy(np.asarray(arrays["train_images"][splits["train"][:ev.samples]])),
                         cfg.ds.output == "bernoulli", ev.seed + 1)
    stats["real"] = {"images": len(real), **{
        name: None if stats[name] is None else
        score(feature, stats[name], real, ev.kid_subset_size, weights, seed=ev.seed)
        for name, feature in (("domain", None if classifier is None else FeatureExtractor(classifier)),
                              ("inception", 2048))}}
    log.info("real held-out images against the test statistics: %s", stats["real"])
    save_reference(args.out, stats, cfg)


if __name__ == "__main__":
    main(run)
