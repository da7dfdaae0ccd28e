"""Stage parse: Algorithm 1 on the run's train / valid / test images; PSNR and a picture."""

import logging

import torch
from tqdm import tqdm

from npdraw.artifacts.io import save_image, write_npz
from npdraw.data.prepare import load_prepared
from npdraw.data.splits import load_splits
from npdraw.parts.bank import load_bank
from npdraw.parts.canvas import Grid, render, to_canvas_space
from npdraw.parts.parser import parse_dataset, psnr_summary, reconstruction_mse
from npdraw.reporting.viz import pairs_grid, titled
from npdraw.workflow.cli import input_files, main, run_config, stage_parser
from npdraw.workflow.provenance import write_metrics

SHOW = 32  # test images in the picture


def run() -> None:
    p = stage_parser("parse", __doc__)
    p.add_argument("--chunk", type=int, default=8192, help="images per vectorised chunk (memory only)")
    args = p.parse_args()
    cfg = run_config(args)
    log = logging.getLogger("parse")
    arrays = load_prepared(args.data, cfg)
    splits = load_splits(args.splits, arrays)
    bank = torch.from_numpy(load_bank(args.bank, cfg.ds))
    out, metrics = {}, {"epsilon": cfg.parse.epsilon, "steps": Grid.for_dataset(cfg.ds).cells}
    sources = {"train": "train_images", "valid": "train_images", "test": "test_images"}
    total = sum(len(splits[s]) for s in sources)
    with tqdm(total=total, desc="parse", unit="img", mininterval=2) as bar:
        for split, key in sources.items():
            images = arrays[key][splits[split]]
            z_id, z_loc, z_is = parse_dataset(images, bank, cfg.ds, cfg.parse.epsilon, args.chunk, bar)
            out.update({f"{split}_z_id": z_id, f"{split}_z_loc": z_loc, f"{split}_z_is": z_is})
            summary = psnr_summary(reconstruction_mse(images, bank, z_id, z_loc, z_is, cfg.ds, args.chunk))
            metrics[split] = {**summary, "images": int(len(images)), "draw_rate": float(z_is.mean())}
    metrics["psnr_db"] = metrics["test"]["psnr_db"]  # headline: the test set
    write_npz(args.out, **out)
    write_metrics(args.metrics, metrics, cfg, input_files(args))
    test = arrays["test_images"][splits["test"][:SHOW]]
    grid = Grid.for_dataset(cfg.ds)
    canvas = render(bank, torch.as_tensor(out["test_z_id"][:SHOW], dtype=torch.long),
                    torch.as_tensor(out["test_z_loc"][:SHOW], dtype=torch.long),
                    torch.as_tensor(out["test_z_is"][:SHOW]), grid)
    picture = pairs_grid(to_canvas_space(test, cfg.ds), canvas)
    save_image(args.picture, titled(picture, f"{cfg.dataset} test images | parsed canvases "
                                             f"(PSNR {metrics['psnr_db']:.2f} dB)"))
    log.info("PSNR test %.2f dB, train %.2f dB", metrics["test"]["psnr_db"], metrics["train"]["psnr_db"])


if __name__ == "__main__":
    main(run)
