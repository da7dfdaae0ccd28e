"""Stage evaluate: importance-sampled NLL, samples, FID / KID against cached test statistics (method §10)."""

import logging

import numpy as np
import torch

from npdraw.artifacts.io import save_image
from npdraw.compute.distributed import relaunch, setup
from npdraw.compute.precision import layout, use_layout
from npdraw.data.binarize import as_float, fixed_targets
from npdraw.data.prepare import load_prepared
from npdraw.data.splits import load_splits
from npdraw.evaluation.curve import curve, milestone_samples
from npdraw.evaluation.features import load_classifier, load_reference, read_record
from npdraw.evaluation.floor import sample_quality
from npdraw.evaluation.importance import generate, importance_sampled, nll_summary, write_samples
from npdraw.models.checkpoints import checkpoint_selection, load_model, read_milestones
from npdraw.reporting.figures import canvases_and_samples
from npdraw.reporting.viz import image_grid, titled
from npdraw.workflow.cli import input_files, main, run_config, stage_parser
from npdraw.workflow.provenance import write_metrics
from npdraw.workflow.systems import system


def run() -> None:
    p = stage_parser("evaluate", __doc__, common=("device",))
    p.add_argument("--batch-size", type=int, default=100, help="test images per NLL batch (memory only)")
    args = p.parse_args()
    cfg = run_config(args)
    ev, log = cfg.evaluate, logging.getLogger("evaluate")
    relaunch(cfg.compute.gpus, args.device)   # several GPUs: re-executes under torchrun
    dist = setup(args.device)                 # ranks share the images scored and the samples drawn
    device = dist.device
    # Every input is checked before the long NLL pass: the model, the feature network and the
    # statistics must all be this run's (dataset, profile, configuration).
    cl = cfg.compute.channels_last
    model = use_layout(load_model(args.model, device, cfg), cl)
    classifier = load_classifier(args.classifier, cfg)   # None: the dataset has no domain network
    reference = load_reference(args.reference, cfg, classifier)
    binary = cfg.ds.output == "bernoulli"
    arrays = load_prepared(args.data, cfg)
    test = load_splits(args.splits, arrays)["test"]
    scored = test[:ev.nll_images] if ev.nll_images else test
    images = torch.from_numpy(np.asarray(arrays["test_images"][scored]))
    x = layout(fixed_targets(images, binary, ev.seed).to(device), cl)   # binarized once, with a fixed seed
    dims = cfg.ds.channels * cfg.ds.image_size ** 2

    nll_samples = ev.nll_samples   # the same for every system (the PixelVAE paper's 5,000: set it here)

    def nll(images: torch.Tensor) -> dict:
        share = images[dist.chunk(len(images))]
        est = importance_sampled(model, share, nll_samples, args.batch_size, dist.seed(ev.seed),
                                 progress=dist.main, precision=cfg.compute.precision, compile=cfg.compute.compile,
                                 per_pass=ev.samples_per_pass)
        return nll_summary(dist.concat(est), dims, binary)

    metrics = nll(x)
    metrics.update({"nll_samples": nll_samples, "nll_images": len(x), "test_images": len(test),
                    "nll_subset": bool(len(x) < len(test)), "binarization": "fixed seed" if binary else "none"})
    if len(x) < len(test):
        log.info("NLL on %d of the %d test images (evaluate.nll_images)", len(x), len(test))
    if ev.static_mnist and "static_test_images" in arrays:  # MNIST: also Larochelle's static binarization
        static = arrays["static_test_images"][:ev.nll_images or None]
        xs = layout(as_float(torch.from_numpy(np.array(static))).to(device), cl)   # already binary; a writable copy
        metrics["static_binarized_test"] = {
            **nll(xs),
            "images": len(xs), "source": "Larochelle binarized MNIST test set (static binarization)"}
    share = dist.chunk(ev.samples)

    def samples() -> dict:   # the same seed for every checkpoint scored: differences are the weights'
        return dist.concat(generate(model.to(device), share.stop - share.start, dist.seed(ev.seed),
                                    precision=cfg.compute.precision, colour=ev.colour_samples))

    gen = samples()
    # The learning curve: the checkpoint kept at each of training.milestones, its samples drawn by every rank.
    milestones = read_milestones(args.milestones, model, device)
    kept = milestone_samples(model, milestones, samples)
    dist.close()
    if not dist.main:
        return  # rank 0 scores the samples and writes the outputs

    def quality(images: torch.Tensor) -> dict:
        # Beside each FID: precision and recall, and the floor (real held-out images scored the same way, with
        # its spread over draws): a model more than one spread below it is flagged (`below_floor`), not ranked.
        return sample_quality(reference, classifier, images, ev.kid_subset_size, ev.seed, ev.inception_weights)

    metrics.update(quality(gen["images"]))
    metrics["curve"] = curve(milestones, kept, metrics, quality)
    if classifier is None:
        metrics["domain_features"] = f"skipped: {read_record(args.classifier)['reason']}"
    if reference["inception"] is None:
        metrics["inception"] = "skipped: torch-fidelity or its weights unavailable (see the reference_stats log)"
    colour = cfg.ds.output != "bernoulli"
    fid = metrics["fid_domain"]
    metrics["real_images"] = reference["real"]["images"]
    metrics.update({"generated": ev.samples, "fid_reference_images": reference["images"], "system": cfg.system,
                    "sample_rule": model.sample_rule(ev.colour_samples),
                    "colour_samples": ev.colour_samples if colour else None,
                    **checkpoint_selection(args.model)})
    write_metrics(args.metrics, metrics, cfg, input_files(args))
    write_samples(args.samples, gen, cfg.ds)
    save_image(args.grid, titled(image_grid(gen["images"][:100], ncol=10, scale=2),
                                 f"{cfg.dataset}: samples" + ("" if fid is None else f" (FID domain {fid:.2f})")))
    save_image(args.figure, canvases_and_samples(gen, cfg.ds.image_size, binary, system=system(cfg.system).label))
    log.info("NLL %.2f nats (S = %d, %d images); FID domain %s", metrics["nll_nats"], nll_samples,
             len(x), "n/a" if fid is None else f"{fid:.3f}")


if __name__ == "__main__":
    main(run)
