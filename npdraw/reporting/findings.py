"""The findings: what the paper claims, re-run here, from committed metrics only (results/findings/).

The campaign (scripts/campaign.py) runs the paper's ablation (its Table 2, Omniglot, through `dvc exp`)
and its low-data curves (its Fig. 3, through Snakemake) at the `findings` profile, and commits each
finished run's metrics, provenance and sample grid under results/findings/runs/, laid out as the
pipeline's own results/ (npdraw.workflow.paths.VARIANT_DIR without its `results/`), with a
`campaign.json` beside each run's metrics (engine, wall seconds, code), and each dataset's metric card
(npdraw.evaluation.card) under `<dataset>/findings/reference/`.  The first campaign's runs, scored with
the retired features (a 50-alphabet classifier retrained with the pipeline) and baselines whose
initialisation was not checked against their references, stay under results/findings/retired/runs/:
their verdicts are rebuilt with today's rule and labelled retired.

`build()` turns what is committed into every table, figure, the verdict page (npdraw.reporting.
findings_page) and `verdicts.json`, in seconds, and says what is missing:

    python -m npdraw.reporting.findings          # results/findings/{README.md, verdicts.json, table2.*, ...}

The claims are npdraw.reporting.claims; the rule that judges them is npdraw.reporting.verdicts.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from npdraw.artifacts.errors import ArtifactError
from npdraw.artifacts.io import atomic_path, write_json
from npdraw.reporting import findings_page
from npdraw.reporting.claims import FIG3_CLAIMS, PAPER_COLUMNS, PAPER_TABLE2, TABLE2_CLAIMS, Ordered
from npdraw.reporting.findings_page import OVERVIEW, TUNING, VERDICTS
from npdraw.reporting.lowdata import GROUPS, curves, held, plot, points, seed_bands, summary
from npdraw.reporting.tables import EVAL_KEYS, budget, domain_columns, model_label, read_metrics, write_table
from npdraw.reporting.verdicts import Verdict, panel_verdict, table2_verdict
from npdraw.workflow.cli import main
from npdraw.workflow.params import load_params
from npdraw.workflow.paths import REFERENCE_DIR, VARIANT_DIR
from npdraw.workflow.resolve import resolve, system_of
from npdraw.workflow.snakemake import DVC_ABLATION_VARIANTS
from npdraw.workflow.systems import SYSTEMS, system

FINDINGS = Path("results/findings")
RUNS = FINDINGS / "runs"
PROFILE = "findings"
TABLE2_DATASET = "omniglot"
# Table 2's rows (the one-factor ablation variants) and their seeds: three for the lambda rows, whose
# trade-off is the contested claim; one for the K and M rows.
LAMBDA_ROWS = ("lam0", "lam1", "base", "lam100")
TABLE2_SEEDS = {variant: (0, 1, 2) if variant in LAMBDA_ROWS else (0,) for variant in DVC_ABLATION_VARIANTS}
# The measures of Table 2 here, as the metrics name them.
MEASURED = {"psnr_db": "parse PSNR (dB)", "fid_domain": "domain FID", "nll": "NLL (S = 50)",
            "bce_nats": "BCE", "kl_nats": "KL"}
# The learning-rate grid every system is tuned on, at one low-data point of each dataset (seed 0), by the
# validation FID its checkpoint rule keeps (method §14): the same tuning effort for every system.  Four
# half-decade steps: with three (up to 3e-3) the best rate of most systems sat on the grid's upper edge.
LR_GRID = (0.0003, 0.001, 0.003, 0.01)
# The half-decade steps a system's grid grows along: a best rate on the edge of what the system ran says
# the best may lie beyond it, so the system runs the next step out (one rule for every system).
LR_LADDER = (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1)
TUNE_POINTS = {"mnist": "sample-0.05", "omniglot": "character-0.1"}
# The baselines that, like NP-DRAW, draw every pixel at once from their latent: a model with an
# autoregressive decoder can leave its latent unused (the PixelVAE does here), so each panel gets a second
# verdict against these alone.
NON_AUTOREGRESSIVE = tuple(s.label for s in SYSTEMS.values() if not s.parts and not s.autoregressive)


@dataclass(frozen=True, eq=False)
class Campaign:
    """A set of committed runs judged together: where they are, where their tables go, how they are named."""
    name: str
    runs: Path          # relative to the checkout
    out: Path           # where its generated tables and curves go
    label: str          # what a verdict made on these runs says of them
    table2_seeds: dict
    profile: str = PROFILE   # the params profile its runs were made at


CURRENT = Campaign("current", RUNS, FINDINGS, "committed domain network (metric card), reference-checked "
                   "baselines", TABLE2_SEEDS)
RETIRED = Campaign("retired", FINDINGS / "retired/runs", FINDINGS / "retired",
                   "retired metric (a 50-alphabet classifier the pipeline retrained per machine) and "
                   "baselines not checked against their references",
                   {v: (0, 1) if v in ("base", "lam0") else (0,) for v in DVC_ABLATION_VARIANTS})
CAMPAIGNS = (CURRENT, RETIRED)


def run_dir(run: dict, root: Path = Path("."), runs: Path = RUNS) -> Path:
    """Where a run's files are committed: the pipeline's own run folder (VARIANT_DIR) under `runs`."""
    return root / runs / Path(VARIANT_DIR.format(**run)).relative_to("results")


def reference_dir(dataset: str, root: Path = Path("."), runs: Path = RUNS) -> Path:
    """Where a dataset's findings-profile reference records (its metric card) are committed."""
    return root / runs / Path(REFERENCE_DIR.format(dataset=dataset, profile=PROFILE)).relative_to("results")


def table2_runs(seeds: dict = TABLE2_SEEDS, profile: str = PROFILE) -> list[dict]:
    """The runs of Table 2 at `profile`, seed 0 of every row first."""
    runs = [{"dataset": TABLE2_DATASET, "profile": profile, "split": "full", "seed": seed, "variant": variant}
            for variant, row in seeds.items() for seed in row]
    return sorted(runs, key=lambda r: r["seed"])


def lowdata_runs(params: dict) -> list[dict]:
    """The runs of the low-data curves at the findings profile, seed by seed (all of seed 0 first, so that a
    campaign cut short still has every point once)."""
    runs = []
    for c in curves(params, PROFILE):
        runs += [{"dataset": c["dataset"], "profile": PROFILE, "split": split, "seed": seed, "variant": variant}
                 for seed in c["seeds"] for split in c["splits"] for variant in c["variants"]]
    return sorted(runs, key=lambda r: r["seed"])


TUNE_KEYS = ("selection_score", "selected_by")   # what a tuning run's model.json must hold
# A tuning run whose training stopped on a non-finite loss: its record (the campaign writes it, with the log
# line), counted as a run at that rate with an infinite validation FID: a rate that diverges within the
# budget is no system's rate.
DIVERGED = "diverged.json"
CARD_KEYS = ("floor", "cases", "checks", "passes", "network")   # and a metric card


def lr_variant(variant: str, lr: float) -> str:
    """The variant that trains `variant`'s system at learning rate `lr` (npdraw.workflow.resolve: lr token)."""
    return f"lr{lr:g}" if variant == "base" else f"{variant}-lr{lr:g}"


def tuning_runs(params: dict, root: Path = Path(".")) -> list[dict]:
    """The runs of the learning-rate grid as the runs committed in `root` have grown it: every system of the
    low-data grid at each of its rates (system_grid), at each dataset's TUNE_POINTS split, seed 0."""
    grids = system_grids(tuning(params, root))
    return [run for run in ladder_runs(params)
            if run["lr"] in grids.get(model_label(run["system"]), (LR_GRID, None))[0]]


def ladder_runs(params: dict) -> list[dict]:
    """Every run the grid may ask for: each system at each rate of LR_LADDER, each dataset's point."""
    systems = resolve(params, profile=PROFILE)["lowdata"]["variants"]
    return [{"dataset": dataset, "profile": PROFILE, "split": split, "seed": 0, "variant": lr_variant(v, lr),
             "system": v, "lr": lr} for dataset, split in TUNE_POINTS.items() for v in systems for lr in LR_LADDER]


def tuned(run: dict, root: Path = Path(".")) -> bool:
    """A tuning run counts once its model's metrics (its validation FID) are committed and load, or the record
    that its training diverged is."""
    return _loads(run_dir(run, root) / "metrics/model.json", TUNE_KEYS) or diverged(run, root) is not None


def diverged(run: dict, root: Path = Path(".")) -> str | None:
    """The log line of a tuning run whose training diverged (its DIVERGED record), None for any other run."""
    record = _json(run_dir(run, root) / DIVERGED)
    return None if record is None else str(record["diverged"])


def tuning(params: dict, root: Path = Path(".")) -> pd.DataFrame:
    """The grid's committed runs (at any rate of LR_LADDER): system, dataset, lr, the best validation FID and
    its epoch, the test KL."""
    rows = []
    for run in ladder_runs(params):
        if not tuned(run, root):
            continue
        row = {"system": model_label(run["system"]), "dataset": run["dataset"], "split": run["split"], "lr": run["lr"]}
        if diverged(run, root) is not None:
            rows.append({**row, "valid_fid": math.inf, "selected_epoch": None, "kl_nats": None})
            continue
        m = read_metrics(run_dir(run, root) / "metrics/model.json", TUNE_KEYS, "the campaign")
        rows.append({**row, "valid_fid": m["selection_score"] if m["selected_by"].startswith("fid") else None,
                     "selected_epoch": m.get("selected_epoch"), "kl_nats": m.get("kl_nats")})
    return pd.DataFrame(rows, columns=["system", "dataset", "split", "lr", "valid_fid", "selected_epoch", "kl_nats"])


def system_grid(runs: pd.DataFrame) -> tuple[tuple[float, ...], float | None]:
    """One system's grid from its committed runs (rows of tuning()): the rates it must run and the rate it
    chose (None until chosen).  It starts at LR_GRID; once every rate has a validation FID on every dataset,
    the best (the lowest FID summed in logs over the datasets: the geometric mean, so neither dataset's FID
    scale decides) is chosen, unless it is the highest or lowest rate run and LR_LADDER goes on: then the
    next step out joins the grid."""
    fid = runs.pivot_table(index="lr", columns="dataset", values="valid_fid") if len(runs) else pd.DataFrame()
    rates = list(LR_GRID)
    while True:
        ran = len(fid.columns) == len(TUNE_POINTS) and set(rates) <= set(fid.index)
        if not ran or fid.loc[rates].isna().any(axis=None):
            return tuple(rates), None
        best = float(np.log(fid.loc[rates]).sum(axis=1).idxmin())
        step = LR_LADDER.index(best)
        if best == rates[-1] and step + 1 < len(LR_LADDER):
            rates.append(LR_LADDER[step + 1])
        elif best == rates[0] and step > 0:
            rates.insert(0, LR_LADDER[step - 1])
        else:
            return tuple(rates), best


def system_grids(grid: pd.DataFrame) -> dict[str, tuple[tuple[float, ...], float | None]]:
    """{system label: system_grid of its committed runs} for every system with a committed run."""
    return {name: system_grid(runs) for name, runs in grid.groupby("system")}


def chosen_rates(grid: pd.DataFrame) -> dict[str, float]:
    """{system label: the rate its grid chose (system_grid)}; only systems whose grid is complete."""
    return {name: best for name, (_, best) in system_grids(grid).items() if best is not None}


def trained_rate(params: dict, profile: str, variant: str) -> float:
    """The learning rate `profile` trains `variant`'s system with (its section's lr; NP-DRAW: the encoder's)."""
    return resolve(params, profile=profile, variant=variant)[system(system_of(variant)).section]["lr"]


def untuned(params: dict, root: Path = Path(".")) -> list[str]:
    """What stands between the campaign's comparisons and the tuned rates, one sentence each (none: they may
    run): a system whose grid is not complete in `root`, or a profile that trains a system at another rate
    than the one its grid chose (findings and converged: every system; tenfold: NP-DRAW, Table 2's only)."""
    grid = tuning(params, root)
    grids = system_grids(grid)
    systems = resolve(params, profile=PROFILE)["lowdata"]["variants"]
    trained = {PROFILE: systems, LONG_LOWDATA: systems, LONG_TABLE2: ["base"]}
    out = []
    for v in systems:
        label = model_label(v)
        rates, best = grids.get(label, (LR_GRID, None))
        if best is None:
            have = int(((grid["system"] == label) & grid["lr"].isin(rates)).sum())
            grown = ("" if rates == LR_GRID
                     else f" (grown to {min(rates):g}-{max(rates):g}: its best rate was on the edge)")
            out.append(f"{label}: {have} of the learning-rate grid's {len(rates) * len(TUNE_POINTS)} runs "
                       f"committed{grown}")
            continue
        section = system(system_of(v)).section
        for profile in (p for p, vs in trained.items() if v in vs):
            lr = trained_rate(params, profile, v)
            if lr != best:
                out.append(f"{label}: profiles.{profile}.{section}.lr is {lr:g}, the grid chose {best:g}")
    return out


def tuning_table(grid: pd.DataFrame, params: dict) -> pd.DataFrame:
    """One row per system and rate: the validation FID at each dataset's point, the chosen rate and the
    findings profile's."""
    table = grid.pivot_table(index=["system", "lr"], columns="dataset", values="valid_fid").reset_index()
    chosen = chosen_rates(grid)
    systems = {model_label(v): v for v in resolve(params, profile=PROFILE)["lowdata"]["variants"]}
    in_params = {label: trained_rate(params, PROFILE, v) for label, v in systems.items()}
    # The epoch each kept checkpoint came from: the last one (the budget's rounds) says FID was still falling.
    epochs = grid.pivot_table(index=["system", "lr"], columns="dataset", values="selected_epoch").reset_index()
    table = table.merge(epochs, on=["system", "lr"], suffixes=("", "_epoch"))
    for column in (c for c in table.columns if c.endswith("_epoch")):
        table[column] = table[column].astype("Int64")
    table["chosen"] = [chosen.get(s) == lr for s, lr in zip(table["system"], table["lr"])]
    table["in_params"] = [in_params.get(s) == lr for s, lr in zip(table["system"], table["lr"])]
    table["lr"] = [f"{lr:g}" for lr in table["lr"]]   # 3e-4 would print as 0.000 in the table's 3 decimals
    return table


def committed(run: dict, root: Path = Path("."), runs: Path = RUNS) -> bool:
    """The run's evaluation metrics are in the findings and load (a run counts once they do: a truncated or
    damaged record is a run still to make)."""
    return _loads(run_dir(run, root, runs) / "metrics/eval.json", EVAL_KEYS)


def _loads(path: Path, required: tuple[str, ...]) -> bool:
    try:
        read_metrics(path, required)
    except ArtifactError:
        return False
    return True


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def card(dataset: str, root: Path = Path(".")) -> dict | None:
    """The committed metric card of `dataset`'s domain network at the findings profile (None: none yet, or
    one that does not load: a card to make again)."""
    path = reference_dir(dataset, root) / "card.json"
    return read_metrics(path, CARD_KEYS, "the metric_card stage") if _loads(path, CARD_KEYS) else None


# --- Table 2 ----------------------------------------------------------------------------------

def table2_rows(root: Path = Path("."), campaign: Campaign = CURRENT) -> pd.DataFrame:
    """One row per committed Table 2 run: K, M, lambda as the run ran, the measures, the domain network's
    floor and accuracy, the budget, the wall minutes of the experiment, its evaluation's path."""
    rows = []
    for run in table2_runs(campaign.table2_seeds, campaign.profile):
        where = run_dir(run, root, campaign.runs)
        if not committed(run, root, campaign.runs):
            continue
        e = read_metrics(where / "metrics/eval.json", ("nll_nats", "bce_nats", "kl_nats"), "the campaign")
        parse = read_metrics(where / "metrics/parse.json", ("psnr_db",), "the campaign")
        method = e["provenance"]["params"]["method"]
        camp = _json(where / "campaign.json") or {}
        d = domain_columns(e)
        rows.append({"variant": run["variant"], "seed": run["seed"], "K": method["patch_size"],
                     "M": method["bank_size"], "lambda": method["lambda_reg"], "psnr_db": parse["psnr_db"],
                     "fid_domain": d["fid_domain"], "fid_domain_floor": d["fid_domain_floor"],
                     "precision_domain": d["precision_domain"], "recall_domain": d["recall_domain"],
                     "below_floor": _below_floor(d), "classifier_accuracy": d["classifier_accuracy"],
                     "nll": e["nll_nats"], "bce_nats": e["bce_nats"], "kl_nats": e["kl_nats"],
                     "nll_samples": e["nll_samples"], "nll_images": e["nll_images"], "samples": e["generated"],
                     "budget": budget(where / "metrics/model.json"),
                     "minutes": _minutes(camp), "experiment": camp.get("experiment"),
                     "path": str(where / "metrics/eval.json")})
    return pd.DataFrame(rows)


def table2(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean (and sd where two seeds or more) of each measure per row, beside the paper's values."""
    out = []
    for variant in DVC_ABLATION_VARIANTS:
        r = rows[rows["variant"] == variant] if len(rows) else rows
        k, m, lam, *paper = PAPER_TABLE2[variant]
        row = {"variant": variant, "K": k, "M": m, "lambda": lam, "seeds": len(r)}
        for key in MEASURED:
            values = r[key].dropna() if len(r) else pd.Series(dtype=float)
            row[key] = values.mean() if len(values) else None
            row[f"{key}_sd"] = values.std() if len(values) > 1 else None
        for key in ("precision_domain", "recall_domain", "fid_domain_floor", "classifier_accuracy"):
            values = r[key].dropna() if len(r) else pd.Series(dtype=float)
            row[key] = values.mean() if len(values) else None
        row.update({f"paper_{c}": v for c, v in zip(PAPER_COLUMNS[3:], paper)})
        out.append(row)
    return pd.DataFrame(out)


def _below_floor(d: dict) -> bool:
    """A run whose domain FID is below the floor by more than the floor's spread (as the evaluation flagged
    it; runs scored before the floor had a spread: below the single floor they recorded)."""
    if d["below_floor"] is not None:
        return bool(d["below_floor"])
    return d["fid_domain"] is not None and d["fid_domain_floor"] is not None and d["fid_domain"] < d["fid_domain_floor"]


# --- Fig. 3 -----------------------------------------------------------------------------------

def panels(params: dict, root: Path, campaign: Campaign) -> dict[str, tuple[dict, pd.DataFrame | None, int]]:
    """{dataset-kind: (the curve, one row per committed run or None, runs planned)} of the low-data grid of
    the campaign's profile."""
    out, profile = {}, campaign.profile
    for c in curves(params, profile):
        runs = [{"dataset": c["dataset"], "profile": profile, "split": s, "seed": seed, "variant": v}
                for v in c["variants"] for s in c["splits"] for seed in c["seeds"]]
        paths = [run_dir(r, root, campaign.runs) / "metrics/eval.json" for r in runs
                 if committed(r, root, campaign.runs)]
        df = points(paths) if paths else None
        if df is not None:
            df["split"] = [Path(p).parts[-5] for p in df["path"]]
            df["below_floor"] = [_below_floor(domain_columns(json.loads(Path(p).read_text()))) for p in df["path"]]
        out[f"{c['dataset']}-{c['kind']}"] = (c, df, len(runs))
    return out


def overview(found: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Fig. 3 at a glance: one row per panel, proportion and measure (domain FID, NLL), one column per
    model (in the registry's order, NP-DRAW first), each cell the mean ± sd over the seeds committed."""
    order = [s.label for s in SYSTEMS.values()]
    rows = []
    for name, df in found.items():
        data = held(df, df["kind"].iloc[0])
        for proportion, at in df.groupby("proportion"):
            models = sorted(at.groupby("model"), key=lambda m: order.index(m[0]) if m[0] in order else len(order))
            for measure, shown in (("fid_domain", "domain FID"), ("nll", "NLL")):
                row = {"panel": name, "proportion": proportion, "data": ", ".join(data[proportion]), "measure": shown}
                row.update({model: _fmt(runs[measure].dropna().tolist()) for model, runs in models})
                rows.append(row)
    return pd.DataFrame(rows).fillna("–")


def _fmt(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f} (1 seed)"
    return f"{pd.Series(values).mean():.2f} ± {pd.Series(values).std():.2f} ({len(values)} seeds)"


# --- the NLL gap (the reference model) --------------------------------------------------------

GAP = FINDINGS / "nll_gap.json"


def gap_table(gap: dict) -> pd.DataFrame:
    rows = []
    for entry in gap["estimates"]:
        rows.append({"estimate": entry["form"], "meaning": entry["meaning"], "samples": entry["samples"],
                     "images": entry["images"], "nll_nats": entry["mean"], "stderr_nats": entry["stderr"],
                     "valid_bound": entry["valid_bound"]})
    return pd.DataFrame(rows)


# --- what a campaign cost ---------------------------------------------------------------------

def _minutes(camp: dict) -> float:
    """A run's wall minutes from its campaign record; NaN where none was measured (a run harvested again
    from DVC's cache after its record was lost has no wall time of its own)."""
    seconds = camp.get("wall_seconds")
    return math.nan if seconds is None else seconds / 60


def minutes_by_system(params: dict, root: Path = Path(".")) -> pd.DataFrame:
    """Wall minutes of the committed findings runs per campaign, part and system: runs, mean, median, total."""
    rows = []
    for campaign in CAMPAIGNS:
        for part, runs in (("Table 2", table2_runs(campaign.table2_seeds, campaign.profile)),
                           ("Fig. 3", lowdata_runs(params))):
            for run in runs:
                camp = _json(run_dir(run, root, campaign.runs) / "campaign.json")
                if camp is not None:
                    rows.append({"campaign": campaign.name, "part": part, "model": model_label(run["variant"]),
                                 "minutes": _minutes(camp)})
    if not rows:
        return pd.DataFrame(columns=["campaign", "part", "model", "runs", "mean", "median", "total"])
    df = pd.DataFrame(rows).groupby(["campaign", "part", "model"])["minutes"]
    return pd.DataFrame({"runs": df.count(), "mean": df.mean(), "median": df.median(),
                         "total": df.sum()}).reset_index()


def progress(params: dict, root: Path = Path("."), campaign: Campaign = CURRENT) -> dict[str, tuple[int, int]]:
    """{part: (runs committed, runs planned)} of a campaign."""
    t2, low = table2_runs(campaign.table2_seeds, campaign.profile), lowdata_runs(params)
    return {"Table 2": (sum(committed(r, root, campaign.runs) for r in t2), len(t2)),
            "Fig. 3": (sum(committed(r, root, campaign.runs) for r in low), len(low))}


# --- part 2: the contested claims at the paper's budget -----------------------------------------

# The smallest low-data points trained at the paper's protocol (profile converged), and Table 2's lambda rows
# (0, 1 and the paper's 50) at ten times the short budget (profile tenfold).  Each run also scores the
# checkpoints that runs of its profile's training.milestones would have kept (eval.json `curve`), so one run
# gives the verdicts of several budgets.
LONG_LOWDATA, LONG_TABLE2 = "converged", "tenfold"
LONG_SEEDS = (0, 1, 2)
TENFOLD_ROWS = tuple(v for v in LAMBDA_ROWS if v != "lam100")
CONVERGED = Campaign("converged", RUNS, FINDINGS / "converged", "up to 500 epochs of the split (the prior 200), "
                     "the best validation FID kept, early stop after training.patience checks without a better "
                     "one", {}, LONG_LOWDATA)
TENFOLD = Campaign("tenfold", RUNS, FINDINGS / "tenfold", "full Omniglot at 600,000 image updates (ten times the "
                   "short budget), the same checks", {v: LONG_SEEDS for v in TENFOLD_ROWS}, LONG_TABLE2)
PAPER_BUDGET, TEN_TIMES = "the paper's budget", "ten times the budget"
# The Table 2 claims part 2 re-runs (the lambda trade-off); only a FID is scored at a milestone.
TENFOLD_CLAIMS = ("nll_vs_lambda", "collapse_without_reg")


def at_milestone(df: pd.DataFrame, updates: int) -> pd.DataFrame:
    """The runs of `df` (one row per run with its evaluation's `path`) as a run of `updates` image updates
    would have scored them: the FID, precision and recall of the checkpoint it would have kept (the run's
    eval.json `curve`)."""
    rows = []
    for r in df.to_dict("records"):
        e = json.loads(Path(r["path"]).read_text())
        point = next((p for p in e.get("curve", []) if p["image_updates"] == updates), None)
        if point is None:
            continue
        # The evaluation's own flag for the checkpoint (npdraw.evaluation.floor), read as every run's is.
        below = _below_floor({**domain_columns(e), "fid_domain": point["fid_domain"],
                              "below_floor": point.get("fid_domain_below_floor")})
        rows.append({**r, "fid_domain": point["fid_domain"], "precision_domain": point.get("precision_domain"),
                     "recall_domain": point.get("recall_domain"), "budget": updates, "reached": point["reached"],
                     "below_floor": below})
    return pd.DataFrame(rows, columns=df.columns.tolist() + ["reached"])


def milestone_labels(params: dict, profile: str) -> dict[int, str]:
    """{image updates: "60,000 updates"} of a profile's training.milestones."""
    return {m: f"{m:,} updates" for m in resolve(params, profile=profile)["training"]["milestones"]}


def budget_panels(params: dict, root: Path) -> dict[str, tuple[dict, dict[str, pd.DataFrame], int]]:
    """{dataset-kind: (the curve, {budget: one row per committed run}, runs planned)} of part 2's low-data
    points: each of the profile's milestones, then the paper's budget (the selected checkpoint); no budgets
    before a run is committed."""
    labels = milestone_labels(params, LONG_LOWDATA)
    out = {}
    for name, (c, df, planned) in panels(params, root, CONVERGED).items():
        frames = {} if df is None else {**{b: at_milestone(df, m) for m, b in labels.items()}, PAPER_BUDGET: df}
        out[name] = (c, frames, planned)
    return out


def _restricted(claim, variants: tuple[str, ...]):
    """A Table 2 claim spoken of the rows in `variants` alone (None where fewer than two remain)."""
    if isinstance(claim, Ordered):
        kept = tuple(v for v in claim.variants if v in variants)
        return replace(claim, variants=kept) if len(kept) > 1 else None
    kept = tuple(v for v in claim.others if v in variants)
    return replace(claim, others=kept) if kept and claim.variant in variants else None


def budget_verdicts(params: dict, root: Path, built: Built) -> tuple[dict[str, list[Verdict]], dict[str, tuple]]:
    """Every claim part 2 re-runs, judged at each budget: ({budget: verdicts}, {part: (runs committed, runs
    planned)}); draws each low-data point's learning curve (recorded in `built`)."""
    low_labels, t2_labels = milestone_labels(params, LONG_LOWDATA), milestone_labels(params, LONG_TABLE2)
    budgets = list(dict.fromkeys([*low_labels.values(), *t2_labels.values(), PAPER_BUDGET, TEN_TIMES]))
    judged: dict[str, list[Verdict]] = {b: [] for b in budgets}
    grid = budget_panels(params, root)
    for name, (c, frames, _) in grid.items():
        if frames:
            figure = root / CONVERGED.out / f"{name}.png"
            figure.parent.mkdir(parents=True, exist_ok=True)
            budget_plot(frames, figure, f"{c['dataset']} by {c['kind']} at the paper's protocol: FID against budget")
            built.written.append(figure)
    for claim in FIG3_CLAIMS:
        entry = grid.get(f"{claim.dataset}-{claim.kind}")
        if entry is None or not claim.proportions(entry[0]["proportions"]):
            continue     # no part-2 point this claim speaks of
        frames = entry[1]
        link = (f"[curve]({(CONVERGED.out / f'{claim.dataset}-{claim.kind}.png').relative_to(FINDINGS)})"
                if frames else "not run yet")
        for b in [*low_labels.values(), PAPER_BUDGET]:
            for against in (None, NON_AUTOREGRESSIVE):
                judged[b].append(panel_verdict(claim, frames.get(b), against, link, f"{CONVERGED.name}, {b}"))
    rows = table2_rows(root, TENFOLD)
    frames = {**{b: at_milestone(rows, m) if len(rows) else rows for m, b in t2_labels.items()}, TEN_TIMES: rows}
    if len(rows):
        built.table(table2(rows).dropna(subset=["fid_domain"]), root / TENFOLD.out / "table2.md",
                    root / TENFOLD.out / "table2.csv", title=findings_page.table2_title(TENFOLD))
    link = f"[Table 2]({(TENFOLD.out / 'table2.md').relative_to(FINDINGS)})" if len(rows) else "not run yet"
    for claim in (c for c in TABLE2_CLAIMS if c.key in TENFOLD_CLAIMS):
        claim = _restricted(claim, TENFOLD_ROWS)
        for b, frame in frames.items():
            if claim.measure == "fid_domain" or b == TEN_TIMES:   # a milestone has no NLL
                judged[b].append(table2_verdict(claim, frame, link, f"{TENFOLD.name}, {b}"))
    lowdata = sum(len(grid[n][1].get(PAPER_BUDGET, ())) for n in grid), sum(e[2] for e in grid.values())
    counts = {"low-data points": lowdata, "Table 2 rows": (len(rows), len(table2_runs(TENFOLD.table2_seeds,
                                                                                        TENFOLD.profile)))}
    return {b: vs for b, vs in judged.items() if vs}, counts


def budget_plot(frames: dict[str, pd.DataFrame], path: Path, title: str) -> None:
    """Domain FID against the image updates behind each checkpoint, every model on the same axes: each run as
    a dot, the mean over seeds as a line, +- one standard deviation as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = pd.concat([f for f in frames.values() if len(f)], ignore_index=True)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    seed_bands(ax, runs, "budget", "fid_domain")
    if runs["fid_domain_floor"].notna().any():   # real held-out images scored the same way: a perfect model
        ax.axhline(runs["fid_domain_floor"].mean(), ls="--", lw=1, color="grey", label="real images (the floor)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("image updates (last point: the paper's budget, less where a run stopped early)", fontsize=8)
    ax.set_ylabel("domain FID (test)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, title="mean ± 1 sd; dots: runs", title_fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


# --- everything --------------------------------------------------------------------------------

@dataclass
class Built:
    """What build() made: the verdicts (the current campaign's, then the retired one's) and every file it wrote."""
    verdicts: list[Verdict]
    written: list[Path]

    def table(self, df: pd.DataFrame, markdown: Path, csv: Path | None = None, title: str = "") -> None:
        write_table(df, markdown, csv, title=title)
        self.written += [markdown] + ([csv] if csv is not None else [])


def verdicts_of(campaign: Campaign, params: dict, root: Path, built: Built) -> tuple[list[Verdict], pd.DataFrame,
                                                                                     dict[str, pd.DataFrame]]:
    """Every claim's verdict on one campaign's runs, its Table 2 rows and its low-data panels; writes the
    campaign's low-data tables and curves (recorded in `built`)."""
    out = root / campaign.out
    rows = table2_rows(root, campaign)
    t2_link = f"[Table 2]({(campaign.out / 'table2.md').relative_to(FINDINGS)})"
    verdicts = [table2_verdict(claim, rows, t2_link, campaign.name) for claim in TABLE2_CLAIMS]
    found, grid = {}, panels(params, root, campaign)
    for claim in FIG3_CLAIMS:
        name = f"{claim.dataset}-{claim.kind}"
        entry = grid.get(name)
        df = entry[1] if entry else None
        link = "not run yet"
        if df is not None:
            (out / "lowdata").mkdir(parents=True, exist_ok=True)
            title = (f"{claim.dataset}, low-data by {claim.kind} at the findings profile ({campaign.name} runs), "
                     f"{len(df)} of {entry[2]} runs")
            plot(df, out / "lowdata" / f"{name}.png", title)
            built.written.append(out / "lowdata" / f"{name}.png")
            built.table(summary(df), out / "lowdata" / f"{name}.md", out / "lowdata" / f"{name}.csv", title=(
                f"Low-data curve: {title}. Mean, sd and seeds of domain FID and NLL per model and proportion; "
                f"groups_mean: the {GROUPS.get(claim.kind, 'images')} the splits held."))
            rel = (campaign.out / "lowdata").relative_to(FINDINGS)
            link = f"[figure]({rel}/{name}.png), [table]({rel}/{name}.md)"
            found[name] = df
        for against in (None, NON_AUTOREGRESSIVE):
            verdicts.append(panel_verdict(claim, df, against, link, campaign.name))
    return verdicts, rows, found


def build(root: Path = Path("."), params_path: str | Path = "params.yaml") -> Built:
    """Every table, figure, `verdicts.json` and the verdict page from the committed metrics under `root` (the
    findings profile and grid of `params_path`, relative to `root` unless absolute)."""
    params = load_params(root / params_path)
    built = Built([], [])
    judged = {}
    for campaign in CAMPAIGNS:
        out = root / campaign.out
        out.mkdir(parents=True, exist_ok=True)
        verdicts, rows, found = verdicts_of(campaign, params, root, built)
        built.table(table2(rows), out / "table2.md", out / "table2.csv", title=findings_page.table2_title(campaign))
        if len(rows):
            built.table(rows.drop(columns="path"), out / "table2-runs.md", out / "table2-runs.csv",
                        title="Table 2: every committed run.")
        if found:
            built.table(overview(found), out / OVERVIEW, title=(
                "Fig. 3 at a glance: domain FID and NLL (nats, S = 50) per model, mean ± sd over the seeds "
                "committed (lower is better); the per-panel tables and curves hold the rest."))
        judged[campaign] = verdicts
        built.verdicts += verdicts
    long, long_counts = budget_verdicts(params, root, built)
    built.verdicts += [v for vs in long.values() for v in vs]
    write_json(root / FINDINGS / VERDICTS, {
        "rule": findings_page.RULE,
        "campaigns": {**{c.name: {"runs": c.label, "verdicts": [v.record() for v in vs]} for c, vs in judged.items()},
                      "part 2": {"runs": {c.name: c.label for c in (CONVERGED, TENFOLD)}, "budgets": [
                          {"budget": b, "verdicts": [v.record() for v in vs]} for b, vs in long.items()]}}})
    gap = _json(root / GAP)
    if gap is not None:
        built.table(gap_table(gap), root / FINDINGS / "nll_gap.md", title=gap["title"])
    timing = minutes_by_system(params, root)
    built.table(timing, root / FINDINGS / "minutes.md", title="Wall minutes of the committed findings runs, per "
                "campaign, part and model (campaign.json beside each run's metrics; one run at a time on a 2-core "
                "CPU).")
    grid = tuning(params, root)
    if len(grid):
        built.table(tuning_table(grid, params), root / FINDINGS / TUNING, title=(
            f"The learning-rate grid (method §14): every system at each rate at one low-data point of each dataset "
            f"({', '.join(f'{d} {s}' for d, s in TUNE_POINTS.items())}; seed 0, the findings profile's budget), the "
            "best validation FID its checkpoint rule kept. It starts at "
            f"{', '.join(f'{lr:g}' for lr in LR_GRID)}; a system whose best rate is the highest (lowest) it ran "
            "runs the next half-decade step out. chosen: the rate with the lowest validation FID summed "
            "in logs over the datasets, once it has a rate run on either side (inf: the training diverged, "
            f"{DIVERGED} beside the run); <dataset>_epoch: the epoch of the "
            "checkpoint kept (of the budget's "
            f"{resolve(params, profile=PROFILE)['training']['rounds']} rounds); in_params: the rate the findings "
            "profile trains the system with."))
    cards = {ds: c for ds in ("mnist", "omniglot") if (c := card(ds, root)) is not None}
    findings_page.write(root / FINDINGS / "README.md", judged, cards, resolve(params, dataset=TABLE2_DATASET,
                        profile=PROFILE), root, timing, gap, {c.name: progress(params, root, c) for c in CAMPAIGNS},
                        ((CONVERGED, TENFOLD), long, long_counts), tuple(untuned(params, root)))
    built.written += [root / FINDINGS / VERDICTS, root / FINDINGS / "README.md"]
    return built


def run() -> None:
    """The command: rebuild everything from the committed runs; a record that does not load ends it with one
    `error:` line naming the file (npdraw.workflow.cli.main)."""
    for v in build().verdicts:
        print(f"{v.label:>8} {v.verdict:>14}  {v.claim}")
    print(f"written: {FINDINGS}/README.md, {FINDINGS}/{VERDICTS}")


if __name__ == "__main__":
    main(run)
