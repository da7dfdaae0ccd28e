"""Stage metric_card: does the dataset's domain FID order known cases correctly (method §14)?

Scores, with the same number of images as a run's samples and against the same statistics of the test
images, the floor (real held-out images, from reference_stats), real images degraded step by step,
fewer classes, the per-pixel mean image with Bernoulli draws, random collages of a part bank's parts and
real training images, each with precision and recall; then the card's checks (npdraw.evaluation.card).
A card that fails is written (and says which check failed): the findings read it before any verdict.
"""

import logging

from npdraw.artifacts.errors import ArtifactError
from npdraw.artifacts.io import save_image
from npdraw.data.prepare import load_prepared
from npdraw.data.splits import make_splits
from npdraw.evaluation.card import dataset_card
from npdraw.evaluation.features import load_classifier, load_reference
from npdraw.reporting.figures import metric_card_picture
from npdraw.workflow.cli import main, run_config, stage_parser
from npdraw.workflow.provenance import write_metrics

log = logging.getLogger("metric_card")


def run() -> None:
    p = stage_parser("metric_card", __doc__)
    args = p.parse_args()
    cfg = run_config(args)
    classifier = load_classifier(args.classifier, cfg)
    reference = load_reference(args.reference, cfg, classifier)
    if classifier is None:
        raise ArtifactError(f"{args.classifier}: {cfg.dataset} has no domain network, so no card to make "
                            f"(the record says why)")
    arrays = load_prepared(args.data, cfg)
    test = make_splits(arrays, cfg)[0]["test"][:cfg.evaluate.fid_images]
    card, the_cases, floor_images = dataset_card(arrays, test, cfg, classifier, reference)
    write_metrics(args.metrics, card, cfg)
    save_image(args.picture, metric_card_picture(the_cases, card, floor_images))
    for check in card["checks"]:
        log.info("%s %s: %s", "pass" if check["passes"] else "FAIL", check["check"], check["detail"])
    log.info("%s metric card %s", cfg.dataset, "passes" if card["passes"] else "FAILS")


if __name__ == "__main__":
    main(run)
