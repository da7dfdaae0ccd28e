"""Stage train_model: encoder and decoder of NP-DRAW around the frozen prior (method §8-9)."""

import logging
from pathlib import Path

import torch

from npdraw.artifacts.io import save_image
from npdraw.compute.distributed import relaunch, setup
from npdraw.data.binarize import fixed_targets
from npdraw.data.prepare import load_prepared
from npdraw.data.splits import load_splits, split_images
from npdraw.models.checkpoints import load_model
from npdraw.models.npdraw import hard_sample
from npdraw.models.prior import load_prior
from npdraw.parts.canvas import Grid
from npdraw.parts.parser import load_parses
from npdraw.reporting.viz import image_grid, titled
from npdraw.training.select import selector, training_record
from npdraw.training.trainer import evaluate, train
from npdraw.workflow.cli import input_files, main, run_config, stage_parser
from npdraw.workflow.provenance import write_metrics


def run() -> None:
    p = stage_parser("train_model", __doc__, common=("device",))
    args = p.parse_args()
    cfg = run_config(args)
    log = logging.getLogger("train_model")
    relaunch(cfg.compute.gpus, args.device)   # several GPUs: re-executes under torchrun
    dist = setup(args.device)
    device = dist.device
    arrays = load_prepared(args.data, cfg)
    splits = load_splits(args.splits, arrays)
    parses = load_parses(args.parses, cfg.ds.bank_size, Grid.for_dataset(cfg.ds).cells,
                         {s: len(idx) for s, idx in splits.items()})
    prior = load_prior(args.prior, device, cfg)
    images = split_images(arrays, splits)
    select = selector(cfg, images["valid"], args.classifier, device)
    resume = Path(args.out).with_name("resume.pt")
    state = dist.train(args.live, {"model": dict(cfg.model), "dataset": cfg.dataset, "profile": cfg.profile},
                       lambda live: train(cfg, images, Path(args.out), resume, device, live, dist, select,
                                          milestones_path=Path(args.milestones), inputs={"prior": prior},
                                          data={s: {"parse": parses[s]} for s in parses}))
    if not dist.main:
        return  # rank 0 writes the outputs
    model = load_model(args.out, device, cfg)
    binary = cfg.ds.output == "bernoulli"
    scores = {s: evaluate(model, fixed_targets(images[s], binary, cfg.seed).to(device), {"parse": parses[s].to(device)},
                          seed=cfg.seed, precision=cfg.compute.precision) for s in ("valid", "test")}
    write_metrics(args.metrics, {**scores["test"], "valid": scores["valid"], "test": scores["test"],
                                 **training_record(state, select)}, cfg, input_files(args))
    # Reconstructions: image | canvas of a hard sample z ~ q(z|x) | decoded mean.
    n = cfg.training.reconstructions
    x = fixed_targets(images["valid"][:n], binary, cfg.seed).to(device)
    with torch.no_grad():
        canvas = model.canvas(*hard_sample(model.encoder(x), torch.Generator().manual_seed(cfg.seed)))
        decoded = model.output.mean(model.decoder(canvas))
    factor = cfg.ds.image_size // cfg.ds.canvas_size
    canvas_up = torch.nn.functional.interpolate(canvas, scale_factor=factor) if factor > 1 else canvas
    rows = torch.stack([x, canvas_up, decoded], 1).flatten(0, 1).cpu()
    save_image(args.reconstructions, titled(image_grid(rows, ncol=12, scale=3),
                                            "validation image | canvas of z ~ q(z|x) | decoded mean"))
    resume.unlink(missing_ok=True)
    log.info("test ELBO %.2f nats (BCE %.2f, KL %.2f); best epoch %d", scores["test"]["elbo_nats"],
             scores["test"]["bce_nats"], scores["test"]["kl_nats"], state["best_epoch"])


if __name__ == "__main__":
    main(run)
