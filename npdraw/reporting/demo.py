"""Use a trained NP-DRAW model without training anything: sample canvases and images from its
checkpoint and draw the latent-editing figure.

    make demo                                  # the committed reference model, results/reference/mnist/model.pt
    python -m npdraw.reporting.demo --model results/mnist/quick/full/seed0/base/model/best.pt --profile quick

The checkpoint is checked as every stage checks its inputs (npdraw.models.checkpoints.load_model):
its contract (kind, fields) and its architecture and its prior's against the configuration that
params.yaml gives the named run (dataset, profile, variant).  The editing figure's test images come
from the prepared dataset (data/prepared/<dataset>) when the pipeline has built it, else from the
dataset's files (the data mirror, NPDRAW_DATA) read into a temporary folder.  It writes three pictures
under --out and nothing else: no pipeline output is touched, so no cached stage is invalidated.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from npdraw.artifacts.errors import ParamsError
from npdraw.artifacts.io import save_image
from npdraw.data.binarize import fixed_targets
from npdraw.data.prepare import load_prepared, prepare
from npdraw.evaluation.importance import generate
from npdraw.models.checkpoints import load_model
from npdraw.reporting.edits import latent_edit
from npdraw.reporting.figures import canvases_and_samples
from npdraw.reporting.viz import image_grid, titled
from npdraw.workflow.cli import CHOICE_ARGS, main
from npdraw.workflow.params import load_params
from npdraw.workflow.paths import DATA_DIR
from npdraw.workflow.resolve import resolve, resolved_value
from npdraw.workflow.systems import SYSTEMS

# The committed reference run: its choices, and where scripts/collect_reference.py puts its model.
REFERENCE_RUN = {"dataset": "mnist", "profile": "reference", "split": "full", "seed": 0, "variant": "base"}
REFERENCE_MODEL = f"results/reference/{REFERENCE_RUN['dataset']}/model.pt"
log = logging.getLogger("demo")


def first_test_images(cfg, data: str | None, n: int) -> torch.Tensor:
    """The first n test images (n, C, H, W) uint8: from `data` (a prepared folder), else from
    data/prepared/<dataset> if it exists, else prepared afresh into a temporary folder."""
    folder = Path(data or DATA_DIR.format(dataset=cfg.dataset))
    if data is None and not (folder / "manifest.json").is_file():
        with tempfile.TemporaryDirectory() as tmp:
            log.info("%s: not built; reading the dataset's files into a temporary folder", folder)
            prepare(cfg.dataset, resolved_value(cfg, "datasets"), Path(tmp) / cfg.dataset)
            return first_test_images(cfg, str(Path(tmp) / cfg.dataset), n)
    images = load_prepared(folder, cfg)["test_images"]
    if len(images) < n:
        raise ParamsError(f"--pairs {n // 2}: {folder} has only {len(images)} test images")
    return torch.from_numpy(np.array(images[:n]))


def run() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=REFERENCE_MODEL, help="NP-DRAW checkpoint (a run's model/best.pt)")
    p.add_argument("--params", default="params.yaml", help="parameters file the run's configuration comes from")
    for choice, value in REFERENCE_RUN.items():   # the checkpoint's run (default: the reference run)
        p.add_argument(f"--{choice}", **{**CHOICE_ARGS[choice], "default": value,
                                         "help": f"the checkpoint's run: {choice} (default: {value})"})
    p.add_argument("--data", help="prepared dataset folder (default: data/prepared/<dataset>, else the mirror)")
    p.add_argument("--out", default="results/demo", help="folder of the three pictures")
    p.add_argument("--samples", type=int, default=100, help="images sampled from the prior and decoder")
    p.add_argument("--pairs", type=int, default=8, help="(A, B) pairs of the editing figure: test images 2i, 2i+1")
    p.add_argument("--sample-seed", type=int, default=1234, help="seed of the samples and the test binarization")
    args = p.parse_args()
    if args.samples < 1 or args.pairs < 1:
        raise ParamsError(f"--samples {args.samples}, --pairs {args.pairs}: expected whole numbers >= 1")
    start = time.perf_counter()
    cfg = resolve(load_params(args.params), args.dataset, args.profile, args.split, args.seed, args.variant)
    if not SYSTEMS[cfg.system].parts:
        raise ParamsError(f"--variant {args.variant}: the demo draws NP-DRAW's canvases; the {cfg.system} "
                          f"baseline has none")
    if not Path(args.model).is_file():
        hint = " (it is committed: is this a clone of the repository, run from its root?)" \
            if args.model == REFERENCE_MODEL else ""
        raise ParamsError(f"--model {args.model}: no such file{hint}")
    model = load_model(args.model, cfg=cfg)   # contract + architecture of this run, or a clear refusal
    torch.set_grad_enabled(False)
    out = Path(args.out)
    binary = cfg.ds.output == "bernoulli"

    gen = generate(model, args.samples, args.sample_seed, colour=cfg.evaluate.colour_samples, progress=False)
    save_image(out / "samples.png", titled(image_grid(gen["images"], ncol=10, scale=2),
                                           f"{cfg.dataset}: {args.samples} samples of {args.model}"))
    save_image(out / "canvases_and_samples.png", canvases_and_samples(gen, cfg.ds.image_size, binary))

    x = fixed_targets(first_test_images(cfg, args.data, 2 * args.pairs), binary, args.sample_seed)   # (2P, C, H, W)
    save_image(out / "latent_edit.png", latent_edit(model, x))
    log.info("wrote %s/{samples,canvases_and_samples,latent_edit}.png in %.1f s (no training)", out,
             time.perf_counter() - start)


if __name__ == "__main__":
    main(run)
