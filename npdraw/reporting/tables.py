"""Tables built from metrics JSON files only (never recomputed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from npdraw.artifacts.contracts import check_metrics
from npdraw.artifacts.errors import ArtifactError, ParamsError
from npdraw.artifacts.io import atomic_path
from npdraw.reporting.dvc_experiments import ABLATION_METRICS, experiment_rows, latest
from npdraw.workflow.paths import VARIANT_DIR, parser
from npdraw.workflow.resolve import parse_variant
from npdraw.workflow.systems import SYSTEMS

# What a table reads of an evaluation metrics file (the evaluate stage writes them all).
EVAL_KEYS = ("nll_nats", "elbo_nats", "bce_nats", "kl_nats", "nll_stderr_nats", "nll_samples", "nll_images",
             "generated", "fid_reference_images")


def read_metrics(path: str | Path, required: tuple[str, ...] = (), writer: str = "the stage that writes it") -> dict:
    """A metrics JSON file, with its `required` keys and nothing non-finite (npdraw.artifacts.contracts)."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: metrics file not found; run {writer} first")
    try:
        metrics = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ArtifactError(f"{path}: not a readable metrics file ({err}); rerun {writer}") from None
    if not isinstance(metrics, dict):
        raise ArtifactError(f"{path}: a metrics file holds a JSON object, found {type(metrics).__name__}; "
                            f"rerun {writer}")
    check_metrics(path, metrics, required, writer)
    return metrics


def run_method(metrics: dict, source: str) -> dict:
    """NP-DRAW's settings (K, M, lambda, ...) of the run that wrote `metrics`, from its provenance:
    what the stage declared of `method` (npdraw.workflow.stages), never today's params.yaml."""
    params = metrics.get("provenance", {}).get("params", {})
    found = {**params.get("method", {}),
             **{k.split(".", 1)[1]: v for k, v in params.items() if k.startswith("method.")}}
    if not found:
        raise ArtifactError(f"{source}: its provenance block records no NP-DRAW settings (method.*): written by an "
                            f"older version of the pipeline; rerun the stage that writes it")
    return found


def run_precision(metrics: dict) -> str | None:
    """compute.precision of the run that wrote `metrics` (its provenance), None if not recorded."""
    return metrics.get("provenance", {}).get("numerics", {}).get("precision")


def psnr_row(parse_metrics: dict, source: str) -> dict:
    """One ablation row: K, M as the parse ran (its provenance), PSNR from the parse metrics."""
    ds = run_method(parse_metrics, source)
    return {
        "K": ds["patch_size"],
        "M": ds["bank_size"],
        "psnr_db": parse_metrics["test"]["psnr_db"],
        "psnr_of_mean_mse_db": parse_metrics["test"]["psnr_of_mean_mse_db"],
        "draw_rate": parse_metrics["test"]["draw_rate"],
        "test_images": parse_metrics["test"]["images"],
    }


def psnr_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).sort_values(["K", "M"]).reset_index(drop=True)


def _shown(df: pd.DataFrame) -> pd.DataFrame:
    """Floats with 2 decimals (3 below 1), missing values as an en dash, everything else as is."""
    def fmt(v):
        if v is None or v is pd.NA or (isinstance(v, float) and v != v):
            return "–"
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 1 else f"{v:.2f}"
        return str(v).replace("|", "\\|")   # a Markdown cell's own bar, not a column's
    return df.apply(lambda col: col.map(fmt))


LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<=": r"$\le$", "–": "--", "—": "---"}


def latex_escape(text: str) -> str:
    return re.sub("|".join(map(re.escape, sorted(LATEX_SPECIALS, key=len, reverse=True))),
                  lambda m: LATEX_SPECIALS[m.group(0)], str(text))


def write_table(df: pd.DataFrame, markdown: str | Path, csv: str | Path | None = None, title: str = "",
                latex: str | Path | None = None) -> None:
    """Markdown (with the title above), CSV (the raw values) and LaTeX (booktabs, title as caption)."""
    shown = _shown(df)
    with atomic_path(markdown) as tmp:
        # tabulate would re-parse the formatted numbers: disabled.
        text = (f"{title}\n\n" if title else "") + shown.to_markdown(index=False, disable_numparse=True) + "\n"
        tmp.write_text(text)
    if csv is not None:
        with atomic_path(csv) as tmp:
            df.to_csv(tmp, index=False)
    if latex is not None:
        escaped = shown.map(latex_escape).rename(columns=latex_escape)
        with atomic_path(latex) as tmp:
            tmp.write_text(escaped.style.hide(axis="index").to_latex(caption=latex_escape(title), hrules=True,
                                                                     position="t"))


# --- results tables (method §11.1, 12) ----------------------------------------------------------

# Reported numbers are in the systems registry (npdraw.workflow.systems: each entry's `paper`).
# A run's evaluation metrics, where the pipeline writes them (results/...) or where the findings keep a
# copy (results/findings/runs/...): the path scheme's run folder, read back (npdraw.workflow.paths).
EVAL_PATH = parser(VARIANT_DIR, "/metrics/eval.json")


def run_of(path: str | Path) -> dict:
    """dataset, profile, split, seed, variant of a results/.../metrics/eval.json path."""
    m = EVAL_PATH.search(str(path))
    if not m:
        raise ParamsError(f"{path}: expected results/<dataset>/<profile>/<split>/seed<N>/<variant>/metrics/eval.json")
    return m.groupdict()


def model_label(variant: str) -> str:
    """How tables name the model a variant trains: its system's label (npdraw.workflow.systems), and for
    NP-DRAW with the PixelCNN decoder (token pcnn) so."""
    over = parse_variant(variant)
    label = SYSTEMS[over.get("system", "npdraw")].label
    return f"{label} + PixelCNN decoder" if over.get("decoder") == "pixelcnn" else label


def paper_numbers(dataset: str, variant: str) -> dict:
    """What the system's paper reported for `dataset` (none for a variant the paper did not run)."""
    over = parse_variant(variant)
    if over.get("decoder") == "pixelcnn":
        return {}
    return SYSTEMS[over.get("system", "npdraw")].paper.get(dataset, {})


def reported_nll(m: dict) -> float:
    """The NLL in the unit tables report it in: bits per dimension for colour data, else nats per image."""
    return m["bits_per_dim"] if "bits_per_dim" in m else m["nll_nats"]


def budget(model_metrics: str | Path) -> int | None:
    """The budget of training images a run's model was given: its record's planned updates (runs trained since
    budgets were recorded: split epochs or image updates alike), else `training.image_updates` in its
    provenance; None where the file is missing or the run trained by epochs of its own."""
    path = Path(model_metrics)
    if not path.is_file():
        return None
    record = json.loads(path.read_text())
    if (planned := record.get("budget", {}).get("planned_updates")) is not None:
        return planned
    return record.get("provenance", {}).get("params", {}).get("training", {}).get("image_updates")


def training_minutes(eval_path: str | Path) -> float | None:
    """Wall minutes of a run's training epochs (its model's, and NP-DRAW's prior's), from the metrics files
    beside its evaluation's; None where they are not there."""
    total = None
    for name in ("model.json", "prior.json"):
        path = Path(eval_path).with_name(name)
        if path.is_file():
            history = json.loads(path.read_text()).get("history", [])
            total = (total or 0.0) + sum(h.get("seconds", 0.0) for h in history) / 60
    return total


def domain_columns(m: dict) -> dict:
    """What an evaluation metrics file says of its domain FID: the FID, its floor (real held-out images;
    runs scored before the floor had a spread recorded real training images as `fid_domain_real`), KID,
    precision and recall, whether it is below the floor by more than the floor's spread, and the feature
    network (its validation accuracy and SHA-256; older runs recorded the accuracy alone)."""
    network = m.get("feature_network") or {}
    return {"fid_domain": m.get("fid_domain"), "fid_domain_floor": m.get("fid_domain_floor", m.get("fid_domain_real")),
            "fid_domain_floor_sd": m.get("fid_domain_floor_sd"), "kid_domain": m.get("kid_domain"),
            "precision_domain": m.get("precision_domain"), "recall_domain": m.get("recall_domain"),
            "below_floor": m.get("fid_domain_below_floor"),
            "classifier_accuracy": network.get("valid_accuracy", m.get("domain_classifier_accuracy")),
            "feature_network": network.get("sha256")}


def results_row(path: str | Path) -> dict:
    """One row of Table 1 / the NLL table from an evaluation metrics file (and its run's path)."""
    run, m = run_of(path), read_metrics(path, EVAL_KEYS, "the evaluate stage")
    paper = paper_numbers(run["dataset"], run["variant"])
    binary = "bits_per_dim" not in m
    static = m.get("static_binarized_test", {})
    return {
        "dataset": run["dataset"], "model": model_label(run["variant"]), "variant": run["variant"],
        "profile": run["profile"], "split": run["split"], "seed": int(run["seed"]),
        **domain_columns(m),
        "fid_inception": m.get("fid"), "kid_inception": m.get("kid"),
        "samples": m["generated"], "fid_reference_images": m["fid_reference_images"],
        "train_minutes": training_minutes(path),
        "nll": reported_nll(m), "nll_unit": "nats" if binary else "bpd",
        "nll_stderr_nats": m["nll_stderr_nats"], "nll_static_nats": static.get("nll_nats"),
        "elbo_nats": m["elbo_nats"], "bce_nats": m["bce_nats"], "kl_nats": m["kl_nats"],
        "nll_samples": m["nll_samples"], "nll_images": m["nll_images"],
        "selected_by": m.get("selected_by"), "selected_epoch": m.get("selected_epoch"),
        "precision": run_precision(m),
        "paper_fid": paper.get("fid"), "paper_nll": paper.get("nll"), "paper_fid_other": paper.get("fid_other"),
    }


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    """Rows by dataset and model; epochs stay whole numbers where some are missing."""
    df = df.astype({"selected_epoch": "Int64"})
    return df.sort_values(["dataset", "model"], kind="stable").reset_index(drop=True)


def table1(rows: list[dict]) -> pd.DataFrame:
    """FID / KID (both feature extractors) and NLL per dataset and model, next to the paper's numbers."""
    cols = ["dataset", "model", "profile", "samples", "fid_domain", "fid_domain_floor", "precision_domain",
            "recall_domain", "classifier_accuracy", "kid_domain", "fid_inception",
            "nll", "nll_unit", "train_minutes",
            "selected_by", "selected_epoch", "precision", "paper_fid", "paper_nll", "paper_fid_other"]
    return _sorted(pd.DataFrame(rows)[cols])


def nll_table(rows: list[dict]) -> pd.DataFrame:
    """Importance-sampled NLL with its bounds and terms, next to the reported NLL."""
    cols = ["dataset", "model", "profile", "nll_samples", "nll_images", "nll", "nll_stderr_nats", "nll_static_nats",
            "elbo_nats", "bce_nats", "kl_nats", "selected_by", "selected_epoch", "precision", "paper_nll"]
    return _sorted(pd.DataFrame(rows)[cols])


def prior_size_row(eval_path: str | Path) -> dict:
    """One row of the prior-size comparison: the run's prior (its size and NLL of the parses, from the
    prior.json beside the evaluation metrics) and the full model's test NLL and domain FID."""
    run, m = run_of(eval_path), read_metrics(eval_path, EVAL_KEYS, "the evaluate stage")
    prior = read_metrics(Path(eval_path).with_name("prior.json"), ("valid", "test", "history"), "the train_prior stage")
    arch = prior.get("provenance", {}).get("params", {}).get("prior", {})
    return {
        "dataset": run["dataset"], "variant": run["variant"], "profile": run["profile"],
        "prior": "authors' ViT" if arch.get("heads") == 16 and arch.get("head_dim") == 64 else "paper text",
        "heads": arch.get("heads"),
        "head_dim": arch.get("head_dim") or (arch["width"] // arch["heads"] if arch else None),
        "mlp": arch["mlp_ratio"] * arch["width"] if arch else None, "parameters": prior.get("parameters"),
        "prior_epochs": len(prior["history"]),
        "prior_seconds_per_epoch": sum(h["seconds"] for h in prior["history"]) / len(prior["history"]),
        # The least disturbed epoch: on a shared machine the mean carries whatever else ran.
        "prior_fastest_epoch_s": min(h["seconds"] for h in prior["history"]),
        "prior_valid_nll_nats": prior["valid"]["nll_total_nats"],
        "prior_test_nll_nats": prior["test"]["nll_total_nats"],
        "nll": reported_nll(m), "nll_samples": m["nll_samples"], "nll_images": m["nll_images"],
        "fid_domain": m.get("fid_domain"), "selected_by": m.get("selected_by"),
    }


def prior_size_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).sort_values(["dataset", "prior"], ascending=[True, False],
                                          kind="stable").reset_index(drop=True)


# --- Omniglot ablation through dvc exp (method §11.3) -------------------------------------------

def ablation_row(variant: str, parse_metrics: dict, eval_metrics: dict, source: str) -> dict:
    """One ablation row: K, M, lambda as the run ran (the evaluation's provenance), the parse PSNR
    and the evaluation's FID / NLL / BCE / KL."""
    ds = run_method(eval_metrics, source)
    m = eval_metrics
    return {
        "variant": variant, "K": ds["patch_size"], "M": ds["bank_size"], "lambda": ds["lambda_reg"],
        "psnr_db": parse_metrics["test"]["psnr_db"],
        "fid_domain": m.get("fid_domain"), "fid_inception": m.get("fid"),
        "nll": reported_nll(m), "bce_nats": m["bce_nats"], "kl_nats": m["kl_nats"],
        "elbo_nats": m["elbo_nats"], "samples": m["generated"], "nll_samples": m["nll_samples"],
        "nll_images": m["nll_images"],
    }


def ablation_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).sort_values(["K", "M", "lambda"], kind="stable").reset_index(drop=True)


def ablation_from_experiments(shown: list, dataset: str, profile: str, seed: int, variants: list[str] | None,
                              source: str) -> pd.DataFrame:
    """The ablation table from `dvc exp show --json` (read from `source`): the newest finished
    experiment of each variant of `dataset` at `profile`, `seed`, split full; `variants` (default:
    every one found) must all be there."""
    rows = [r for r in experiment_rows(shown, ABLATION_METRICS)
            if (r["dataset"], r["profile"], r["split"], int(r["seed"])) == (dataset, profile, "full", seed)]
    by_variant = latest(rows)
    wanted = variants or sorted(by_variant)
    missing = [v for v in wanted if v not in by_variant]
    if missing or not wanted:
        raise ParamsError(f"{source}: no finished experiment with parse and eval metrics for {dataset}, profile "
                          f"{profile}, seed {seed}, variant(s) {', '.join(missing) or '(any)'}; queue them with "
                          f"scripts/dvc_ablation.py (`dvc queue logs <name>` shows why one failed)")
    return ablation_table([{**ablation_row(v, by_variant[v]["metrics"]["parse"], by_variant[v]["metrics"]["eval"],
                                           f"{source} (experiment {by_variant[v]['name']})"),
                             "experiment": by_variant[v]["name"]} for v in wanted])

