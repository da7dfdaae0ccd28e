"""The GPU check: images/s of every hot path in fp32 and bf16, eager and compiled, with peak memory,
then MNIST at paper settings trained for as many epochs as fit in a time budget, with the validation
NLL curve.  One command, written for one NVIDIA H200 (under 8 minutes there):

    bash benchmarks/gpu_check.sh --prepare            # here, with the project installed: .gpucheck/ =
                                                      #   the four MNIST files + the paper profile's bank
    bash benchmarks/gpu_check.sh                      # on the GPU machine, .gpucheck/ carried beside the code
    bash benchmarks/gpu_check.sh --device cpu --tiny  # the CPU fallback CI runs: smoke sizes, seconds

It needs only PyTorch, numpy, pyyaml and tqdm beside the project's code: no snakemake, dvc, dvclive,
kmedoids or jsonschema (the bank, the one step that needs kmedoids, is built by --prepare).  Every
figure comes from the library's own code paths: the prior's and the full model's training steps
(npdraw.training.prior / npdraw.training.trainer), the importance-sampled NLL and the sampler
(npdraw.evaluation.importance), and the training loops themselves for the timed run.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from npdraw.compute.memory import keep_freed_memory
from npdraw.compute.precision import autocast, compiled, layout, use_layout
from npdraw.data.binarize import as_float, binarize, fixed_targets
from npdraw.data.prepare import load_source
from npdraw.data.sources import mirror_root
from npdraw.data.splits import make_splits
from npdraw.evaluation.importance import generate, importance_sampled
from npdraw.models.npdraw import NPDraw, objective, temperature
from npdraw.models.prior import Prior, load_prior, prior_config
from npdraw.parts.bank import build_bank, load_bank
from npdraw.parts.canvas import Grid
from npdraw.parts.parser import Latents, parse_dataset
from npdraw.training.prior import train_prior
from npdraw.training.trainer import train
from npdraw.workflow.resolve import resolve

BUNDLE = Path(".gpucheck")
MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
               "t10k-labels-idx1-ubyte.gz")


def run_config(tiny: bool):
    """MNIST's configuration at the paper profile (the smoke profile's sizes with --tiny), read from the
    repository's params.yaml (the test suite validates it against the schema)."""
    params = yaml.safe_load(Path("params.yaml").read_text())
    return resolve(params, dataset="mnist", profile="smoke" if tiny else "paper", split="full", seed=0, variant="base")


def training_images(cfg) -> tuple[dict, dict[str, np.ndarray]]:
    """The MNIST arrays (read from NPDRAW_DATA) and the run's split indices."""
    arrays, _ = load_source(cfg.ds.source, cfg.ds, cfg.dataset, allow_download=False)
    splits, _ = make_splits(arrays, cfg)
    return arrays, splits


def prepare(bundle: Path, tiny: bool) -> None:
    """Copy the MNIST files from the data mirror into bundle/data and build the run's bank into bundle."""
    cfg = run_config(tiny)
    source = mirror_root() / "mnist"
    (bundle / "data" / "mnist").mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES:
        shutil.copyfile(source / name, bundle / "data" / "mnist" / name)
    os.environ["NPDRAW_DATA"] = str(bundle / "data")
    arrays, splits = training_images(cfg)
    bank, stats = build_bank(arrays["train_images"][splits["train"]], cfg.ds, cfg.bank, cfg.seed)
    np.save(bundle / "bank.npy", bank)
    size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file()) / 2**20
    print(f"prepared {bundle}: MNIST files and the {cfg.profile} profile's bank {bank.shape} "
          f"(objective {stats['objective']:.1f}); {size:.1f} MiB")


# --- timing ---------------------------------------------------------------------------------------------


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_mib(device: torch.device) -> str:
    if device.type != "cuda":
        return "-"
    return f"{torch.cuda.max_memory_allocated(device) / 2**20:,.0f}"


def timed(fn, items: int, repeats: int, device: torch.device) -> tuple[float, float]:
    """(items per second over `repeats` calls, seconds of the first call: kernel choice and any compiling)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    fn()
    sync(device)
    first = time.perf_counter() - start
    fn()   # a second warm-up call: autotuning and caches settle
    sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync(device)
    return repeats * items / (time.perf_counter() - start), first


class Hot:
    """The four hot paths, each as a function of (precision, compile) returning (step, items per call)."""

    def __init__(self, cfg, bank: torch.Tensor, parses: Latents, images: torch.Tensor, device: torch.device,
                 nll_images: int, samples: int):
        self.cfg, self.device, self.grid = cfg, device, Grid.for_dataset(cfg.ds)
        self.bank, self.parses, self.images = bank.to(device), parses.to(device), images.to(device)
        self.nll_images, self.samples = nll_images, samples
        self.cl = cfg.compute.channels_last

    def prior_training(self, precision: str, compile: bool):
        torch.manual_seed(0)
        prior = use_layout(Prior(prior_config(self.cfg, self.grid), self.bank, self.grid).to(self.device), self.cl)
        opt = torch.optim.Adam(prior.parameters(), lr=self.cfg.prior.lr)
        forward = compiled(prior.log_prob, compile)
        b = self.cfg.prior.batch_size
        z = self.parses.batch(slice(0, b))

        def step():
            with autocast(self.device, precision):
                lp = forward(*z)
            loss = -lp["total"].mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step, b

    def model(self):
        torch.manual_seed(0)
        prior = Prior(prior_config(self.cfg, self.grid), self.bank, self.grid)
        return use_layout(NPDraw.build(self.cfg, prior).to(self.device), self.cl)

    def model_training(self, precision: str, compile: bool):
        model, mc = self.model().train(), self.cfg.model
        opt = torch.optim.Adam(model.parameters(), lr=mc.lr)
        forward = compiled(model.terms, compile)
        b = mc.batch_size
        idx = torch.arange(b, device=self.device)
        parse = self.parses.batch(idx)

        def step():
            x = layout(binarize(as_float(self.images[idx])), self.cl)
            with autocast(self.device, precision):
                terms = forward(x, x, parse, temperature(0, 1, mc.tau_start, mc.tau_end), mc.relaxed_id == "hard")
            loss = objective(terms, mc.kl_weight, self.cfg.ds.lambda_reg).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return step, b

    def nll(self, precision: str, compile: bool, per_pass: int = 1):
        model = self.model().eval()
        x = layout(fixed_targets(self.images[:self.nll_images].cpu(), True, 0).to(self.device), self.cl)
        return (lambda: importance_sampled(model, x, self.cfg.evaluate.nll_samples, batch_size=100, progress=False,
                                           precision=precision, compile=compile, per_pass=per_pass)), len(x)

    def nll_fused(self, precision: str, compile: bool):
        """The NLL with all S samples of a batch scored as one batch of S x 100 (evaluate.samples_per_pass)."""
        return self.nll(precision, compile, per_pass=self.cfg.evaluate.nll_samples)

    def sampling(self, precision: str, compile: bool):
        model = self.model().eval()
        return (lambda: generate(model, self.samples, seed=0, batch_size=500, precision=precision)), self.samples


def throughput(hot: Hot, device: torch.device, repeats: int, budget_s: float) -> dict[str, float]:
    """Print the table of images/s; return the eager rates at the run's precision, by path."""
    paths = (("prior training", hot.prior_training, "sequences/s"), ("model training", hot.model_training, "images/s"),
             (f"NLL, S = {hot.cfg.evaluate.nll_samples}", hot.nll, "images/s"),
             ("sampling", hot.sampling, "images/s"),
             ("NLL, S per pass", hot.nll_fused, "images/s"))
    # Eager first (every path, both precisions), then compiled while the budget lasts: compiling is the
    # slow part, and the eager figures are the ones the timed training below needs.
    plan = [(p, prec, False) for p in paths for prec in ("fp32", "bf16")]
    plan += [(p, prec, True) for prec in ("bf16", "fp32") for p in (*paths[:3], paths[4])]
    start = time.perf_counter()
    rates = {}
    print(f"\n{'path':<16} {'precision':<9} {'compiled':<8} {'rate':>12} {'unit':<12} {'first call s':>12} "
          f"{'peak MiB':>9}")
    for (name, make, unit), precision, compile in plan:
        if compile and time.perf_counter() - start > budget_s:
            print(f"{name:<16} {precision:<9} {'yes':<8} {'skipped: the --grid-seconds budget is spent':>40}")
            continue
        fn, items = make(precision, compile)
        rate, first = timed(fn, items, repeats, device)
        rates[(name, precision, compile)] = rate
        print(f"{name:<16} {precision:<9} {'yes' if compile else 'no':<8} {rate:12.1f} {unit:<12} {first:12.1f} "
              f"{peak_mib(device):>9}")
    print(f"{'sampling':<16} compiled: not applied (the autoregressive loop grows its key/value cache each step)")
    precision = hot.cfg.compute.precision
    return {name: rates[(name, precision, False)] for name, _, _ in paths[:4]}


# --- timed training run -----------------------------------------------------------------------------------


def timed_run(cfg, bank, parses, images, device, rates, prior_s: float, model_s: float, nll_images: int,
              work: Path) -> None:
    """Prior, then the full model, with epochs sized from the measured rates to fit the budgets; print the
    validation curve (ELBO with one sample; NLL with S = evaluate.nll_samples on `nll_images` images)."""
    n_train = len(parses["train"])
    prior_epochs = max(1, int(prior_s * rates["prior training"] / n_train))
    nll_name = next(k for k in rates if k.startswith("NLL"))
    # An epoch: the training images, then the validation NLL (the one-sample validation ELBO is a few
    # percent more: 10 % margin).
    per_epoch = 1.1 * (n_train / rates["model training"] + nll_images / rates[nll_name])
    model_epochs = max(1, int(model_s / per_epoch))
    cfg["prior"]["epochs"], cfg["model"]["epochs"] = prior_epochs, model_epochs
    print(f"\ntimed run: MNIST, {cfg.profile} profile settings, {n_train} training images, "
          f"{cfg.compute.precision}{', channels_last' if cfg.compute.channels_last else ''}; "
          f"prior {prior_epochs} epochs (budget {prior_s:.0f} s), model {model_epochs} epochs (budget {model_s:.0f} s)")
    start = time.perf_counter()
    state = train_prior(cfg, bank, parses, work / "prior.pt", work / "prior_resume.pt", device)
    print(f"prior: {time.perf_counter() - start:.0f} s; validation NLL of the parses by epoch (nats): "
          + ", ".join(f"{h['valid_nll_nats']:.2f}" for h in state["history"]))
    prior = load_prior(work / "prior.pt", device)
    valid = layout(fixed_targets(images["valid"][:nll_images], True, cfg.seed).to(device), cfg.compute.channels_last)
    print(f"{'epoch':>5} {'seconds':>8} {'images/s':>9} {'valid ELBO':>11} {'valid NLL':>10}   (nats; NLL on "
          f"{len(valid)} validation images, S = {cfg.evaluate.nll_samples})")

    def validation_nll(model, record) -> dict:
        est = importance_sampled(model, valid, cfg.evaluate.nll_samples, progress=False,
                                 precision=cfg.compute.precision)
        nll = float(est["nll_nats"].mean())
        print(f"{record['epoch']:5d} {record['seconds']:8.1f} {record['images_per_s']:9.0f} "
              f"{record['valid_elbo_nats']:11.2f} {nll:10.2f}", flush=True)
        return {"valid_nll_nats": nll}

    start = time.perf_counter()
    state = train(cfg, images, work / "model.pt", work / "model_resume.pt", device, inputs={"prior": prior},
                  data={s: {"parse": parses[s]} for s in parses}, after_epoch=validation_nll)
    best = state["history"][state["best_epoch"] - 1]
    print(f"model: {time.perf_counter() - start:.0f} s; best epoch {state['best_epoch']} (validation ELBO "
          f"{best['valid_elbo_nats']:.2f}, NLL {best['valid_nll_nats']:.2f} nats); peak GPU MiB {peak_mib(device)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prepare", action="store_true", help="write the bundle (MNIST files + bank) and stop")
    p.add_argument("--bundle", type=Path, default=BUNDLE, help="the prepared folder (default .gpucheck)")
    p.add_argument("--device", default=None, help="cuda (default when one is visible) or cpu")
    p.add_argument("--tiny", action="store_true", help="smoke-profile sizes and seconds-long budgets (CI)")
    p.add_argument("--grid-seconds", type=float, help="time for the compiled rows (default 150; tiny 0)")
    p.add_argument("--prior-seconds", type=float, help="prior training budget (default 40; tiny 3)")
    p.add_argument("--train-seconds", type=float, help="full-model training budget (default 240; tiny 5)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if args.prepare:
        prepare(args.bundle, args.tiny)
        return
    if not (args.bundle / "bank.npy").is_file():
        sys.exit(f"error: {args.bundle}/bank.npy not found: run `bash benchmarks/gpu_check.sh --prepare"
                 f"{' --tiny' if args.tiny else ''} --bundle {args.bundle}` first (it needs the data mirror and "
                 f"kmedoids), then carry {args.bundle} to the GPU machine")
    keep_freed_memory()   # as every stage does (npdraw.compute.memory)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    tiny = args.tiny
    grid_s = args.grid_seconds if args.grid_seconds is not None else (0 if tiny else 150)
    prior_s = args.prior_seconds if args.prior_seconds is not None else (3 if tiny else 40)
    model_s = args.train_seconds if args.train_seconds is not None else (5 if tiny else 240)
    t0 = time.perf_counter()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"GPU check: {name}; torch {torch.__version__}, Python {platform.python_version()}")
    cfg = run_config(tiny)
    os.environ["NPDRAW_DATA"] = str(args.bundle / "data")
    arrays, splits = training_images(cfg)
    bank = torch.from_numpy(load_bank(args.bundle / "bank.npy", cfg.ds))
    images = {s: torch.from_numpy(np.asarray(arrays["test_images" if s == "test" else "train_images"][splits[s]]))
              for s in ("train", "valid", "test")}
    parses = {}
    for s in ("train", "valid"):
        z_id, z_loc, z_is = parse_dataset(images[s].numpy(), bank, cfg.ds, cfg.parse.epsilon)
        parses[s] = Latents(*(torch.from_numpy(a.astype(np.int64)) for a in (z_id, z_loc)), torch.from_numpy(z_is))
    print(f"data: {len(images['train'])} training, {len(images['valid'])} validation images; parsed in "
          f"{time.perf_counter() - t0:.0f} s")
    nll_images = 20 if tiny else 1000
    hot = Hot(cfg, bank, parses["train"], images["train"], device, nll_images=min(nll_images, 200),
              samples=100 if tiny else 2000)
    rates = throughput(hot, device, repeats=2 if tiny else 10, budget_s=grid_s)
    with tempfile.TemporaryDirectory() as work:
        timed_run(cfg, bank, parses, images, device, rates, prior_s, model_s, nll_images, Path(work))
    print(f"GPU check done in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
