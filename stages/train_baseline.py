"""Stage train_baseline: any baseline of the systems registry (npdraw/workflow/systems.py: pixelvae, vae,
draw, ...) on the run's splits, with the checkpoint rule NP-DRAW's model has (method §12-13)."""

import logging
from pathlib import Path

import torch

from npdraw.artifacts.io import save_image
from npdraw.compute.distributed import relaunch, setup
from npdraw.data.binarize import fixed_targets
from npdraw.data.prepare import load_prepared
from npdraw.data.splits import load_splits, split_images
from npdraw.models.checkpoints import load_model
from npdraw.reporting.viz import image_grid, titled
from npdraw.training.select import selector, training_record
from npdraw.training.trainer import evaluate, train
from npdraw.workflow.cli import input_files, main, run_config, stage_parser
from npdraw.workflow.provenance import write_metrics
from npdraw.workflow.systems import system


def run() -> None:
    p = stage_parser("train_baseline", __doc__, common=("device",))
    args = p.parse_args()
    cfg = run_config(args)
    log = logging.getLogger("train_baseline")
    relaunch(cfg.compute.gpus, args.device)   # several GPUs: re-executes under torchrun
    dist = setup(args.device)
    device = dist.device
    arrays = load_prepared(args.data, cfg)
    splits = load_splits(args.splits, arrays)
    images = split_images(arrays, splits)
    select = selector(cfg, images["valid"], args.classifier, device)
    resume = Path(args.out).with_name("resume.pt")
    section = system(cfg.system).section
    state = dist.train(args.live, {section: dict(cfg[section]), "dataset": cfg.dataset, "profile": cfg.profile},
                       lambda live: train(cfg, images, Path(args.out), resume, device, live, dist, select,
                                          milestones_path=Path(args.milestones)))
    if not dist.main:
        return  # rank 0 writes the outputs
    model = load_model(args.out, device, cfg)
    scores = {s: evaluate(model, fixed_targets(images[s], True, cfg.seed).to(device), seed=cfg.seed,
                          precision=cfg.compute.precision) for s in ("valid", "test")}
    write_metrics(args.metrics, {**scores["test"], "valid": scores["valid"], "test": scores["test"],
                                 "system": cfg.system, **training_record(state, select)}, cfg, input_files(args))
    x = fixed_targets(images["valid"][:cfg.training.reconstructions], True, cfg.seed).to(device)
    decoded = model.reconstruct(x, torch.Generator().manual_seed(cfg.seed))
    save_image(args.reconstructions, titled(image_grid(torch.stack([x, decoded], 1).flatten(0, 1).cpu(), ncol=8,
                                                       scale=3), "validation image | its reconstruction"))
    resume.unlink(missing_ok=True)
    log.info("test ELBO %.2f nats (BCE %.2f, KL %.2f); best epoch %d (%s)", scores["test"]["elbo_nats"],
             scores["test"]["bce_nats"], scores["test"]["kl_nats"], state["best_epoch"], select.rule)


if __name__ == "__main__":
    main(run)
