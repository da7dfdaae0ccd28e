"""Stage build_bank: k-medoids part bank from the run's training images, and its picture."""

import logging

from npdraw.artifacts.io import save_image, write_npy
from npdraw.data.prepare import load_prepared
from npdraw.data.splits import load_splits
from npdraw.parts.bank import build_bank
from npdraw.reporting.viz import image_grid, titled
from npdraw.workflow.cli import input_files, main, run_config, stage_parser
from npdraw.workflow.provenance import write_metrics


def run() -> None:
    p = stage_parser("build_bank", __doc__)
    args = p.parse_args()
    cfg = run_config(args)
    arrays = load_prepared(args.data, cfg)
    images = arrays["train_images"][load_splits(args.splits, arrays)["train"]]
    bank, stats = build_bank(images, cfg.ds, cfg.bank, cfg.seed)
    write_npy(args.out, bank)
    k, m = cfg.ds.patch_size, cfg.ds.bank_size
    save_image(args.picture, titled(image_grid(bank, ncol=min(m, 20), scale=max(2, 40 // k)),
                                    f"{cfg.dataset} part bank: M={m}, K={k}, {stats['method']}"))
    write_metrics(args.metrics, {"bank_size": m, "patch_size": k, **stats}, cfg, input_files(args))
    logging.getLogger("build_bank").info("bank %s: objective %.1f in %.1f s",
                                         bank.shape, stats["objective"], stats["seconds_total"])


if __name__ == "__main__":
    main(run)
