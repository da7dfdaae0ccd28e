"""Helpers the Snakefile uses: wildcard patterns, default targets, params fingerprints.

Kept in the library so the Snakefile stays a table of contents; the stages and their paths are
the stage table's (npdraw.workflow.stages).
"""

from __future__ import annotations

import json
from pathlib import Path

from npdraw.artifacts.errors import ParamsError
from npdraw.workflow.closure import code_closure
from npdraw.workflow.paths import CURVES, FEATURES_RECORD, VARIANT_DIR
from npdraw.workflow.resolve import CHOICE_KEYS, VARIANT_PATTERN, system_of
from npdraw.workflow.stages import STAGES, Stage, params_block

# Run choices that `snakemake --config` may set; everything else comes from params.yaml.
CHOICES = CHOICE_KEYS

WILDCARDS = {
    "dataset": r"[a-z0-9_]+",
    "profile": r"[a-z0-9_]+",
    "split": r"full|(digit|sample|character|alphabet)-[0-9.]+",
    "seed": r"[0-9]+",
    "variant": VARIANT_PATTERN,
}

# Omniglot part-bank ablation (method §11.3): patch size K x bank size M, parse PSNR only (Snakemake).
ABLATION_VARIANTS = [f"K{k}-M{m}" for k in (5, 6, 8) for m in (10, 50, 200)]
# The full ablation through dvc exp (scripts/dvc_ablation.py): one factor at a time from the
# dataset's defaults (Omniglot: K 5, M 50, lambda 50), K in {5, 6, 8}, M in {10, 50, 200},
# lambda in {0, 1, 50, 100}; each trained and evaluated.
DVC_ABLATION_VARIANTS = ["base", "K6", "K8", "M10", "M200", "lam0", "lam1", "lam100"]


def system_stages(variant: str) -> list[Stage]:
    """The per-run stages Snakemake runs for a variant (of its system, npdraw or the pixelvae baseline)."""
    system = system_of(variant)
    return [s for s in STAGES.values() if system in s.systems and "snakemake" in s.engines]


def targets(config: dict) -> list[str]:
    """Default targets of `snakemake`: every output of every stage of the configured run's system
    (npdraw or a baseline), its training-curves picture, and the metric card of its dataset and profile
    when the dataset has a domain network (its committed record says so)."""
    choice = {k: config[k] for k in CHOICES}
    out = [p for s in system_stages(config["variant"]) if s.scope == "variant" for p in s.paths(choice)[1].values()]
    record = Path(FEATURES_RECORD.format(**choice))
    card = record.is_file() and json.loads(record.read_text()).get("available") is True
    return out + [CURVES.format(**choice)] + (list(STAGES["metric_card"].paths(choice)[1].values()) if card else [])


def live_dirs(wildcards) -> dict[str, str]:
    """A Snakemake input function: the DVCLive folders of a run's training stages, by label (the
    stage's name without 'train_')."""
    choice = {k: getattr(wildcards, k) for k in CHOICES}
    return {s.name.removeprefix("train_"): s.paths(choice)[1][flag] for s in system_stages(wildcards.variant)
            for flag, out in s.outputs.items() if out.kind == "live"}


def variant_code(script: str):
    """A Snakemake input function: the code a run's stage depends on, for the system of the run's
    variant (npdraw.workflow.stages.code_closure)."""
    def inputs(wildcards) -> list[str]:
        return list(code_closure(script, (system_of(wildcards.variant),)))
    return inputs


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


def check_config_overrides(config: dict, params: dict) -> None:
    """--config may only set the run choices: stages read everything else from params.yaml."""
    changed = sorted(k for k in config if k not in CHOICES and config.get(k) != params.get(k))
    if changed:
        raise ParamsError(
            f"--config changes {', '.join(changed)}: only {', '.join(CHOICES)} can be set on the command "
            f"line; edit params.yaml for the rest (stages read it directly, and so does dvc)"
        )


def stage_params(config: dict, s: Stage):
    """A Snakemake params function: JSON of the resolved params stage `s` declares (its provenance
    block's), so that Snakemake reruns the rule when (and only when) they change."""
    def fingerprint(wildcards) -> str:
        choice = {k: getattr(wildcards, k, config[k]) for k in CHOICES}
        return json.dumps(params_block(s.config(config, **choice), s), sort_keys=True)
    return fingerprint
