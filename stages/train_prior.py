"""Stage train_prior: the Transformer prior p(z) fitted to the heuristic parses (method §7)."""

import logging
import math
from pathlib import Path

import numpy as np
import torch

from npdraw.artifacts.io import save_image
from npdraw.compute import seeds
from npdraw.compute.distributed import relaunch, setup
from npdraw.models.prior import load_prior
from npdraw.parts.bank import load_bank
from npdraw.parts.canvas import Grid
from npdraw.parts.parser import load_parses
from npdraw.reporting.viz import image_grid, titled
from npdraw.training.prior import evaluate_nll, train_prior
from npdraw.workflow.cli import input_files, main, run_config, stage_parser
from npdraw.workflow.provenance import write_metrics


def run() -> None:
    p = stage_parser("train_prior", __doc__, common=("device",))
    args = p.parse_args()
    cfg = run_config(args)
    log = logging.getLogger("train_prior")
    relaunch(cfg.compute.gpus, args.device)   # several GPUs: re-executes under torchrun
    dist = setup(args.device)
    device = dist.device
    grid = Grid.for_dataset(cfg.ds)
    parses = load_parses(args.parses, cfg.ds.bank_size, grid.cells)
    bank = torch.from_numpy(load_bank(args.bank, cfg.ds))
    resume = Path(args.out).with_name("resume.pt")
    # A fresh DVCLive folder each time: on a resume, train_prior replays the saved history into it.
    state = dist.train(args.live, {"prior": dict(cfg.prior), "dataset": cfg.dataset, "profile": cfg.profile},
                       lambda live: train_prior(cfg, bank.to(device), parses, Path(args.out), resume, device,
                                                live, dist))
    if not dist.main:
        return  # rank 0 writes the outputs
    model = load_prior(args.out, device, cfg)
    nll = {s: evaluate_nll(model, parses[s].to(device), precision=cfg.compute.precision) for s in ("valid", "test")}
    generator = torch.Generator().manual_seed(seeds.torch_seed(cfg.seed, "prior", 1))
    z_id, z_loc, z_is, canvas = model.sample(cfg.prior.samples, generator)
    uniform = grid.cells * (math.log(cfg.ds.bank_size) + math.log(grid.cells) + math.log(2))
    history = state["history"]
    write_metrics(args.metrics, {
        "nll_nats": nll["test"]["nll_total_nats"], "valid": nll["valid"], "test": nll["test"],
        "best_epoch": state["best_epoch"], "epochs": len(history),
        "uniform_bound_nats": uniform, "parameters": sum(p.numel() for p in model.parameters()),
        "train_sequences_per_s": float(np.mean([h["sequences_per_s"] for h in history])),
        "sample_draw_rate": float(z_is.float().mean()), "parse_draw_rate": float(parses["test"].z_is.float().mean()),
        "history": history,
    }, cfg, input_files(args))
    ncol = int(math.ceil(math.sqrt(len(canvas))))
    save_image(args.samples, titled(image_grid(canvas.cpu(), ncol=ncol, scale=3),
                                    f"{cfg.dataset}: canvases sampled from the prior "
                                    f"(best epoch {state['best_epoch']})"))
    resume.unlink(missing_ok=True)  # finished: nothing left to resume
    log.info("prior NLL of test parses %.2f nats (valid %.2f); best epoch %d",
             nll["test"]["nll_total_nats"], nll["valid"]["nll_total_nats"], state["best_epoch"])


if __name__ == "__main__":
    main(run)
