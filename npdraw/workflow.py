"""Helpers the Snakefile uses: wildcard patterns, default targets, params fingerprints.

Kept in the library so the Snakefile stays a table of contents and the path
scheme is written in one place for Python callers (tests, report_paths).
"""

from __future__ import annotations

import json

from npdraw.config import CHOICE_KEYS, NUMERIC_KEYS, VARIANT_PATTERN, ParamsError, resolve

# Run choices that `snakemake --config` may set; everything else comes from params.yaml.
CHOICES = CHOICE_KEYS

WILDCARDS = {
    "dataset": r"[a-z0-9_]+",
    "profile": r"[a-z0-9_]+",
    "split": r"full|(digit|sample|character|alphabet)-[0-9.]+",
    "seed": r"[0-9]+",
    "variant": VARIANT_PATTERN,
}

# Omniglot part-bank ablation (SPEC 11.3): patch size K x bank size M, parse PSNR only (Snakemake).
ABLATION_VARIANTS = [f"K{k}-M{m}" for k in (5, 6, 8) for m in (10, 50, 200)]
# The full ablation through dvc exp (scripts/dvc_ablation.py): one factor at a time from the
# dataset's defaults (Omniglot: K 5, M 50, lambda 50), K in {5, 6, 8}, M in {10, 50, 200},
# lambda in {0, 1, 50, 100}; each trained and evaluated.
DVC_ABLATION_VARIANTS = ["base", "K6", "K8", "M10", "M200", "lam0", "lam1", "lam100"]

DATA_DIR = "data/prepared/{dataset}"
RUN_DIR = "results/{dataset}/{profile}/{split}/seed{seed}"
VARIANT_DIR = RUN_DIR + "/{variant}"


def run_paths(cfg) -> dict[str, str]:
    """Where one run's outputs land (the same patterns as the Snakefile's rules)."""
    fields = {k: cfg[k] for k in CHOICES}
    var = VARIANT_DIR.format(**fields)
    return {
        "data": DATA_DIR.format(**fields),
        "splits": RUN_DIR.format(**fields) + "/splits.npz",
        "bank": var + "/bank.npy",
        "bank_picture": var + "/bank.png",
        "bank_metrics": var + "/metrics/bank.json",
        "parses": var + "/parses.npz",
        "parse_picture": var + "/parse.png",
        "parse_metrics": var + "/metrics/parse.json",
        "prior": var + "/prior/best.pt",
        "prior_samples": var + "/prior/samples.png",
        "prior_metrics": var + "/metrics/prior.json",
        "model": var + "/model/best.pt",
        "reconstructions": var + "/model/reconstructions.png",
        "model_metrics": var + "/metrics/model.json",
        "latent_edit": var + "/figures/latent_edit.png",
        "eval_metrics": var + "/metrics/eval.json",
        "sample_grid": var + "/eval/samples.png",
        "canvases_and_samples": var + "/figures/canvases_and_samples.png",
        "training_curves": var + "/figures/training_curves.png",
    }


def targets(config: dict) -> list[str]:
    """Default targets of `snakemake`: every stage of the configured run."""
    paths = run_paths({k: config[k] for k in CHOICES})
    if config["variant"] == "pixelvae":   # the baseline: no bank, parses, prior or canvas editing
        return [paths[k] for k in ("reconstructions", "model_metrics", "eval_metrics", "sample_grid",
                                  "canvases_and_samples", "training_curves")]
    return [paths[k] for k in ("bank_picture", "parse_picture", "parse_metrics", "prior_samples", "prior_metrics",
                              "reconstructions", "model_metrics", "latent_edit", "eval_metrics", "sample_grid",
                              "canvases_and_samples", "training_curves")]


def live_dirs(wildcards) -> dict[str, str]:
    """A Snakemake input function: the DVCLive folders of a run's training stages, by label."""
    var = VARIANT_DIR.format(**{k: getattr(wildcards, k) for k in CHOICES})
    if wildcards.variant == "pixelvae":
        return {"pixelvae": var + "/model/live"}
    return {"prior": var + "/prior/live", "model": var + "/model/live"}


def table_inputs(config: dict, table: str = "runs", metrics: str = "eval.json"):
    """A Snakemake input function: the `metrics` files (the evaluation's by default) of the runs in
    params `tables.<table>` ('dataset/variant'), at the wildcards' profile, split and seed."""
    def inputs(wildcards) -> list[str]:
        out = []
        for entry in config["tables"][table]:
            dataset, variant = entry.split("/")
            out.append(VARIANT_DIR.format(dataset=dataset, profile=wildcards.profile, split=wildcards.split,
                                          seed=wildcards.seed, variant=variant) + f"/metrics/{metrics}")
        return out
    return inputs


def code(*modules: str) -> list[str]:
    """Library files a rule depends on (changing them reruns it, as in dvc.yaml)."""
    return ["npdraw/config.py", "npdraw/errors.py", "npdraw/contracts.py", *(f"npdraw/{m}" for m in modules)]


def check_config_overrides(config: dict, params: dict) -> None:
    """--config may only set the run choices: stages read everything else from params.yaml."""
    changed = sorted(k for k in config if k not in CHOICES and config.get(k) != params.get(k))
    if changed:
        raise ParamsError(
            f"--config changes {', '.join(changed)}: only {', '.join(CHOICES)} can be set on the command "
            f"line; edit params.yaml for the rest (stages read it directly, and so does dvc)"
        )


def fingerprint(config: dict, wildcards, sections, fixed: dict | None = None) -> str:
    """JSON of the resolved sections a rule reads, for Snakemake's params rerun trigger; `fixed`
    run choices take the place of the wildcards' (and the config's)."""
    choice = {k: (fixed or {}).get(k, getattr(wildcards, k, config[k])) for k in CHOICES}
    cfg = resolve(config, **choice)
    return json.dumps({s: _dotted(cfg, s) for s in sections}, sort_keys=True)


def _dotted(cfg: dict, key: str):
    """cfg['compute']['precision'] for 'compute.precision' (a key of a section, as dvc.yaml's params name it)."""
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


# The evaluation settings the full model's checkpoint selection reads (model.select), as params keys.
MODEL_SELECTION = ("evaluate.inception_weights", "evaluate.nll_samples", "evaluate.colour_samples")

# The compute settings that change a training or evaluation stage's numbers, as params keys.
NUMERICS = tuple(f"compute.{key}" for key in NUMERIC_KEYS)


# The run whose training images teach the domain classifier and give the FID reference statistics,
# for every run of a dataset and profile (npdraw.features).
REFERENCE_RUN = {"split": "full", "seed": 0, "variant": "base"}


def reference_config(params: dict, dataset: str | None, profile: str | None):
    """The resolved config of the reference run of `dataset` at `profile`."""
    return resolve(params, dataset=dataset, profile=profile, **REFERENCE_RUN)


def reference_params(config: dict, *sections: str):
    """stage_params for the rules of the dataset's reference run (REFERENCE_RUN)."""
    return lambda wildcards: fingerprint(config, wildcards, sections, REFERENCE_RUN)


def stage_params(config: dict, *sections: str):
    """A Snakemake params function: the resolved sections a rule reads, so that
    Snakemake reruns the rule when (and only when) they change."""
    return lambda wildcards: fingerprint(config, wildcards, sections)
