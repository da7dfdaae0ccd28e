"""Stage make_splits: train / validation / test indices for one run (incl. low-data splits)."""

import logging

from npdraw.artifacts.io import write_npz
from npdraw.data.prepare import load_prepared
from npdraw.data.splits import make_splits
from npdraw.workflow.cli import main, run_config, stage_parser
from npdraw.workflow.provenance import write_metrics


def run() -> None:
    p = stage_parser("make_splits", __doc__)
    args = p.parse_args()
    cfg = run_config(args)
    splits, summary = make_splits(load_prepared(args.data, cfg), cfg)
    write_npz(args.out, **splits)
    write_metrics(args.summary, {"dataset": cfg.dataset, "profile": cfg.profile, "split": cfg.split, **summary},
                  cfg)
    logging.getLogger("make_splits").info("%s %s: %s", cfg.dataset, cfg.split, summary["counts"])


if __name__ == "__main__":
    main(run)
