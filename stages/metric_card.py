"""Stage metric_card: does the dataset's domain FID order known cases correctly (method §14)?

Scores, with the same number of images as a run's samples and against the same statistics of the test
images, the floor (real held-out images, from reference_stats), real images degraded step by step,
fewer classes, the per-pixel mean image with Bernoulli draws, random collages of a part bank's parts and
real training images, each with precision and recall; then the card's checks (npdraw.evaluation.card).
A card that fails is written (and says which check failed): the findings read it before any verdict.
"""

import logging

import torch

from npdraw.artifacts.errors import ArtifactError
from npdraw.artifacts.io import save_image
from npdraw.compute import seeds
from npdraw.data.binarize import fixed_targets
from npdraw.data.prepare import load_prepared
from npdraw.data.splits import make_splits, strata
from npdraw.evaluation.card import cases, metric_card
from npdraw.evaluation.features import FeatureExtractor, load_classifier, load_reference, network_identity
from npdraw.evaluation.floor import held_out
from npdraw.reporting.figures import metric_card_picture
from npdraw.workflow.cli import main, run_config, stage_parser
from npdraw.workflow.provenance import write_metrics

log = logging.getLogger("metric_card")


def run() -> None:
    p = stage_parser("metric_card", __doc__)
    args = p.parse_args()
    cfg = run_config(args)
    ev, binary = cfg.evaluate, cfg.ds.output == "bernoulli"
    classifier = load_classifier(args.classifier, cfg)
    reference = load_reference(args.reference, cfg, classifier)
    if classifier is None:
        raise ArtifactError(f"{args.classifier}: {cfg.dataset} has no domain network, so no card to make "
                            f"(the record says why)")
    arrays = load_prepared(args.data, cfg)
    test = make_splits(arrays, cfg)[0]["test"][:ev.fid_images]
    base = held_out(arrays, test, ev.samples, 1, seeds.rng(ev.seed, "metric_card"))[0][0]   # the floor's first draw
    groups = strata(arrays)   # mode dropping keeps fewer of these: digits, Omniglot's alphabets
    the_cases = cases(arrays, groups, base, ev.samples, binary, dict(cfg.ds), dict(cfg.bank), ev.seed)
    card = metric_card(FeatureExtractor(classifier), reference["domain"], reference["real"]["domain"], the_cases,
                       ev.kid_subset_size, ev.seed)
    card = {"network": network_identity(classifier), "samples": ev.samples, "reference_images": reference["images"],
            **card}
    write_metrics(args.metrics, card, cfg)
    save_image(args.picture, metric_card_picture(the_cases, card, fixed_targets(torch.from_numpy(base), binary,
                                                                                ev.seed + 1)))
    for check in card["checks"]:
        log.info("%s %s: %s", "pass" if check["passes"] else "FAIL", check["check"], check["detail"])
    log.info("%s metric card %s", cfg.dataset, "passes" if card["passes"] else "FAILS")


if __name__ == "__main__":
    main(run)
