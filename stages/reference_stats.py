"""Stage reference_stats: FID / KID statistics of the test images, cached once per dataset and profile,
and the floor every run's FID is read against.

The test images are those every run of the dataset at this profile is scored on (the full test set,
capped by the profile with a draw independent of the run).  Domain features (the dataset's committed
network, features/<dataset>.json) always; standard Inception features when torch-fidelity and its
weights are available (evaluate.inception decides whether their absence is skipped with one line or is
an error).  The floor: as many real held-out images as a run generates, drawn several times, scored
against the same statistics (npdraw.evaluation.floor): what a model whose samples were real images
scores, with its spread.
"""

import logging

from npdraw.data.prepare import load_prepared
from npdraw.data.splits import make_splits
from npdraw.evaluation.features import inception_extractor, load_classifier, save_reference
from npdraw.evaluation.floor import reference_statistics
from npdraw.workflow.cli import main, run_config, stage_parser

log = logging.getLogger("reference_stats")


def run() -> None:
    p = stage_parser("reference_stats", __doc__)
    args = p.parse_args()
    cfg = run_config(args)
    ev = cfg.evaluate
    arrays = load_prepared(args.data, cfg)
    test = make_splits(arrays, cfg)[0]["test"][:ev.fid_images]
    classifier = load_classifier(args.classifier, cfg)   # None: the dataset has no domain network
    weights = inception_extractor(ev.inception_weights, ev.inception == "require")
    stats = reference_statistics(arrays, test, cfg, classifier, weights)
    for name, r in stats["real"].items():
        if isinstance(r, dict):
            log.info("%s floor (%s): FID %.3f +- %.3f over %d draws", name, r["source"], r["fid"], r["fid_sd"],
                     r["draws"])
    save_reference(args.out, stats, cfg)


if __name__ == "__main__":
    main(run)
