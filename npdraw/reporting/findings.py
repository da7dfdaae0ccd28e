"""The findings: what the paper claims, re-run here, from committed metrics only (results/findings/).

The campaign (scripts/campaign.py) runs the paper's ablation (its Table 2, Omniglot, through `dvc exp`)
and its low-data curves (its Fig. 3, through Snakemake) at the `findings` profile, and commits each
finished run's metrics and provenance under results/findings/runs/, laid out as the pipeline's own
results/ (`<dataset>/<profile>/<split>/seed<N>/<variant>/metrics/*.json`, the split's `splits.json`)
with a `campaign.json` beside each run's metrics (engine, wall seconds, code).  `build()` turns what
is committed into every table, figure and the verdict page, in seconds, and says what is missing:

    python -m npdraw.reporting.findings          # results/findings/{README.md, table2.*, lowdata/*, nll_gap.*}

A verdict says holds / does not hold / cannot tell at this size, with the numbers, the seeds and the
test behind it (two-sided Welch t-tests at the 5 % level on the seeds' values; where a row has one
seed, the spread of the rows with two stands in for its own).
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from npdraw.artifacts.io import atomic_path
from npdraw.reporting.lowdata import GROUPS, curves, held, plot, points, summary
from npdraw.reporting.tables import model_label, read_metrics, write_table
from npdraw.workflow.params import load_params
from npdraw.workflow.resolve import resolve
from npdraw.workflow.snakemake import DVC_ABLATION_VARIANTS
from npdraw.workflow.systems import SYSTEMS

FINDINGS = Path("results/findings")
RUNS = FINDINGS / "runs"
PROFILE = "findings"
DISCUSSION = "discussion.md"    # hand-written beside the generated page; linked from it when present
OVERVIEW = "lowdata/overview.md"   # Fig. 3 at a glance, beside the page (overview())
TABLE2_DATASET = "omniglot"
# Table 2's rows (the one-factor ablation variants) and their seeds: two for the central trade-off.
TABLE2_SEEDS = {variant: (0, 1) if variant in ("base", "lam0") else (0,) for variant in DVC_ABLATION_VARIANTS}
# The paper's Table 2 (its data: the IWAE 28x28 Omniglot; its FID: Inception's), by variant.
PAPER_TABLE2 = {
    "base": (5, 50, 50, 17.71, 5.53, 129.73, 89.95, 54.80),
    "K6": (6, 50, 50, 16.38, 12.86, 118.37, 108.81, 25.62),
    "K8": (8, 50, 50, 15.60, 22.00, 132.98, 130.39, 21.34),
    "M10": (5, 10, 50, 15.77, 15.02, 127.22, 115.53, 27.37),
    "M200": (5, 200, 50, 19.50, 6.08, 115.53, 89.94, 38.41),
    "lam0": (5, 50, 0, 17.71, 35.27, 110.64, 112.07, 25.67),
    "lam1": (5, 50, 1, 17.71, 5.58, 107.72, 92.27, 34.40),
    "lam100": (5, 50, 100, 17.71, 5.74, 134.54, 92.23, 57.96),
}
PAPER_COLUMNS = ("K", "M", "lambda", "psnr", "fid", "nll", "bce", "kl")
# The measures of Table 2 here, as the metrics name them.
MEASURED = {"psnr_db": "parse PSNR (dB)", "fid_domain": "domain FID", "nll": "NLL (S = 50)",
            "bce_nats": "BCE", "kl_nats": "KL"}


def run_dir(run: dict, root: Path = Path(".")) -> Path:
    """Where a run's metrics are committed: results/findings/runs/<dataset>/<profile>/<split>/seed<N>/<variant>."""
    return root / RUNS / run["dataset"] / run["profile"] / run["split"] / f"seed{run['seed']}" / run["variant"]


def table2_runs() -> list[dict]:
    """The runs of Table 2, seed 0 of every row first."""
    runs = [{"dataset": TABLE2_DATASET, "profile": PROFILE, "split": "full", "seed": seed, "variant": variant}
            for variant, seeds in TABLE2_SEEDS.items() for seed in seeds]
    return sorted(runs, key=lambda r: r["seed"])


def lowdata_runs(params: dict) -> list[dict]:
    """The runs of the low-data curves at the findings profile, seed by seed (all of seed 0 first, so that a
    campaign cut short still has every point once)."""
    runs = []
    for c in curves(params, PROFILE):
        runs += [{"dataset": c["dataset"], "profile": PROFILE, "split": split, "seed": seed, "variant": variant}
                 for seed in c["seeds"] for split in c["splits"] for variant in c["variants"]]
    return sorted(runs, key=lambda r: r["seed"])


def committed(run: dict, root: Path = Path(".")) -> bool:
    """The run's evaluation metrics are in the findings (a run counts once it has them)."""
    return (run_dir(run, root) / "metrics/eval.json").is_file()


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


# --- Table 2 ----------------------------------------------------------------------------------

def table2_rows(root: Path = Path(".")) -> pd.DataFrame:
    """One row per committed Table 2 run: K, M, lambda as the run ran, the measures and the classifier's
    accuracy, the wall minutes of the experiment."""
    rows = []
    for run in table2_runs():
        where = run_dir(run, root)
        if not committed(run, root):
            continue
        e = read_metrics(where / "metrics/eval.json", ("nll_nats", "bce_nats", "kl_nats"), "the campaign")
        parse = read_metrics(where / "metrics/parse.json", ("psnr_db",), "the campaign")
        method = e["provenance"]["params"]["method"]
        camp = _json(where / "campaign.json") or {}
        rows.append({"variant": run["variant"], "seed": run["seed"], "K": method["patch_size"],
                     "M": method["bank_size"], "lambda": method["lambda_reg"], "psnr_db": parse["psnr_db"],
                     "fid_domain": e.get("fid_domain"), "fid_domain_real": e.get("fid_domain_real"),
                     "classifier_accuracy": e.get("domain_classifier_accuracy"), "nll": e["nll_nats"],
                     "bce_nats": e["bce_nats"], "kl_nats": e["kl_nats"], "nll_samples": e["nll_samples"],
                     "nll_images": e["nll_images"], "samples": e["generated"],
                     "minutes": _minutes(camp), "experiment": camp.get("experiment")})
    return pd.DataFrame(rows)


def table2(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean (and sd where two seeds) of each measure per row, beside the paper's values."""
    out = []
    for variant in DVC_ABLATION_VARIANTS:
        r = rows[rows["variant"] == variant] if len(rows) else rows
        k, m, lam, *paper = PAPER_TABLE2[variant]
        row = {"variant": variant, "K": k, "M": m, "lambda": lam, "seeds": len(r)}
        for key in MEASURED:
            values = r[key].dropna() if len(r) else pd.Series(dtype=float)
            row[key] = values.mean() if len(values) else None
            row[f"{key}_sd"] = values.std() if len(values) > 1 else None
        row["fid_domain_real"] = r["fid_domain_real"].mean() if len(r) else None
        row["classifier_accuracy"] = r["classifier_accuracy"].mean() if len(r) else None
        row.update({f"paper_{c}": v for c, v in zip(PAPER_COLUMNS[3:], paper)})
        out.append(row)
    return pd.DataFrame(out)


# --- verdicts ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verdict:
    claim: str        # the paper's claim, in its words or as its table reports it
    verdict: str      # holds / does not hold / cannot tell at this size / not run yet
    evidence: str     # the numbers, seeds and test
    link: str         # the table or figure


def welch(a, b) -> float:
    """Two-sided p-value of Welch's t-test of mean(a) = mean(b); nan with fewer than two values a side."""
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2 or (a.std() == 0 and b.std() == 0):
        return math.nan
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def compare(a, b, noise: float | None = None) -> tuple[int, str]:
    """(-1, 0, 1: a lower, no difference shown, a higher) and the test that says so.  With two values
    a side, Welch's t-test at the 5 % level; with fewer, the difference against twice `noise` (the sd
    of one seed, measured where two seeds exist), or no verdict when there is none."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = a.mean() - b.mean()
    p = welch(a, b)
    if not math.isnan(p):
        return (int(np.sign(diff)) if p < 0.05 else 0), f"Welch p = {p:.3f}"
    if noise is None or math.isnan(noise):
        return 0, "one seed, no spread to test against"
    scale = noise * math.sqrt(1 / len(a) + 1 / len(b))
    return (int(np.sign(diff)) if abs(diff) > 2 * scale else 0), f"|difference| against 2 x {scale:.2f} (seed sd)"


def _values(rows: pd.DataFrame, variant: str, key: str) -> list[float]:
    return rows.loc[rows["variant"] == variant, key].dropna().tolist() if len(rows) else []


def _fmt(values: list[float]) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.2f} (1 seed)"
    return f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f} ({len(values)} seeds)"


def seed_noise(rows: pd.DataFrame, key: str) -> float:
    """The sd of one seed's value of `key`, pooled over the rows that have two seeds."""
    spreads = [np.var(v, ddof=1) for variant in TABLE2_SEEDS if len(v := _values(rows, variant, key)) > 1]
    return math.sqrt(np.mean(spreads)) if spreads else math.nan


def ordered(rows: pd.DataFrame, key: str, variants: list[str], rising: bool) -> tuple[str, str]:
    """Whether `key` rises (or falls) along `variants`: each neighbouring pair tested (compare)."""
    noise = seed_noise(rows, key)
    values = [_values(rows, v, key) for v in variants]
    if any(not v for v in values):
        return "not run yet", "missing: " + ", ".join(v for v, x in zip(variants, values) if not x)
    steps = [compare(values[i + 1], values[i], noise) for i in range(len(variants) - 1)]
    want = 1 if rising else -1
    shown = ", ".join(f"{v} {_fmt(x)}" for v, x in zip(variants, values))
    tests = "; ".join(f"{variants[i]} -> {variants[i + 1]}: {t}" for i, (_, t) in enumerate(steps))
    if all(s == want for s, _ in steps):
        return "holds", f"{shown}. {tests}"
    if any(s == -want for s, _ in steps):
        return "does not hold", f"{shown}. {tests}"
    return "cannot tell at this size", f"{shown}. {tests}"


def table2_verdicts(rows: pd.DataFrame) -> list[Verdict]:
    link = "[Table 2](table2.md)"
    out = []
    for claim, key, variants, rising in (
            ("Parse PSNR rises as the bank grows (M = 10, 50, 200: 15.77, 17.71, 19.50 dB)", "psnr_db",
             ["M10", "base", "M200"], True),
            ("Parse PSNR falls as the parts grow (K = 5, 6, 8: 17.71, 16.38, 15.60 dB)", "psnr_db",
             ["base", "K6", "K8"], False),
            ("Sample quality falls as the parts grow (FID 5.53, 12.86, 22.00 for K = 5, 6, 8)", "fid_domain",
             ["base", "K6", "K8"], True),
            ("A larger lambda costs likelihood (NLL 107.72, 129.73, 134.54 for lambda = 1, 50, 100)", "nll",
             ["lam1", "base", "lam100"], True)):
        verdict, evidence = ordered(rows, key, variants, rising)
        out.append(Verdict(claim, verdict, evidence, link))
    # The regulariser is what makes samples good: lambda = 0 far worse in FID than any lambda >= 1.
    zero, others = _values(rows, "lam0", "fid_domain"), {v: _values(rows, v, "fid_domain") for v in
                                                           ("lam1", "base", "lam100")}
    claim = "Without the parse regulariser sample quality collapses (FID 35.27 at lambda = 0, 5.5-5.7 at lambda >= 1)"
    if not zero or not all(others.values()):
        out.append(Verdict(claim, "not run yet", "needs lam0, lam1, base and lam100", link))
    else:
        noise = seed_noise(rows, "fid_domain")
        tests = {v: compare(zero, x, noise) for v, x in others.items()}
        signs = [s for s, _ in tests.values()]
        verdict = ("holds" if all(s == 1 for s in signs) else "does not hold" if any(s == -1 for s in signs)
                   else "cannot tell at this size")
        evidence = (f"domain FID: lam0 {_fmt(zero)}; " + ", ".join(f"{v} {_fmt(x)}" for v, x in others.items())
                    + ". " + "; ".join(f"lam0 vs {v}: {t}" for v, (_, t) in tests.items()))
        out.append(Verdict(claim, verdict, evidence, link))
    return out


# Fig. 3's claims per panel, in the paper's words, and the proportions they speak of (None: all).
# The scope: "all" (better than every other model at every proportion the grid has), "most" (better in
# more than half of those comparisons and worse in none), "above_one" (all, the smallest proportion aside).
FIG3 = {
    ("mnist", "digit"): ("By digit: similar to the others at 10-20 % of the data, better from 30 % on", "all"),
    ("mnist", "sample"): ("By sample: better at most proportions", "most"),
    ("omniglot", "character"): ("By character: better at every proportion", "all"),
    ("omniglot", "alphabet"): ("By alphabet: better, except with one alphabet (where the part bank may lack "
                               "expressiveness)", "above_one"),
}


# The baselines that, like NP-DRAW, draw every pixel at once from their latent: the paper's Fig. 3 compares
# structured latent-variable models, and a model with an autoregressive decoder can leave its latent unused
# (the PixelVAE does here). Each panel gets a second verdict against these alone.
NON_AUTOREGRESSIVE = tuple(s.label for s in SYSTEMS.values() if not s.parts and not s.autoregressive)


def panel_verdict(df: pd.DataFrame, claim: str, scope, measure: str = "fid_domain",
                  against: tuple[str, ...] | None = None) -> tuple[str, str]:
    """NP-DRAW against every other model (or the models labelled `against`) at each proportion the claim
    speaks of: holds when NP-DRAW's mean `measure` is lower than each model's (Welch, 5 %) at those
    proportions, does not hold when some model is lower, cannot tell otherwise."""
    if df is None or not len(df):
        return "not run yet", "no run committed"
    nd = df[df["variant"] == "base"]
    others = [m for m in sorted(set(df["model"]) - {"NP-DRAW"}) if against is None or m in against]
    props = sorted(df["proportion"].unique())
    if scope == "above_one":   # the alphabet panel's exception: the smallest proportion (one alphabet)
        props = props[1:]
    lines, signs = [], []
    for p in props:
        ours = nd.loc[nd["proportion"] == p, measure].dropna().tolist()
        for model in others:
            theirs = df.loc[(df["model"] == model) & (df["proportion"] == p), measure].dropna().tolist()
            if not ours or not theirs:
                signs.append(None)
                continue
            sign, test = compare(ours, theirs)
            signs.append(sign)
            lines.append(f"{p:g}: NP-DRAW {_fmt(ours)} vs {model} {_fmt(theirs)} ({test})")
    if not lines:
        return "not run yet", "no proportion with NP-DRAW and a baseline both committed"
    wins, losses = signs.count(-1), signs.count(1)
    if scope == "most":
        verdict = ("holds" if wins > len(signs) / 2 and not losses else "does not hold" if losses >= len(signs) / 2
                   else "cannot tell at this size")
    else:
        verdict = ("holds" if wins == len(signs) else "does not hold" if losses else "cannot tell at this size")
    if None in signs and verdict == "holds":
        verdict = "cannot tell at this size"   # some comparisons still missing
    return verdict, f"NP-DRAW lower in {wins}, higher in {losses} of {len(signs)} comparisons. " + "; ".join(lines)


def overview(panels: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Fig. 3 at a glance: one row per panel, proportion and measure (domain FID, NLL), one column per
    model (in the registry's order, NP-DRAW first), each cell the mean ± sd over the seeds committed."""
    order = [s.label for s in SYSTEMS.values()]
    rows = []
    for name, df in panels.items():
        data = held(df, df["kind"].iloc[0])
        for proportion, at in df.groupby("proportion"):
            models = sorted(at.groupby("model"), key=lambda m: order.index(m[0]) if m[0] in order else len(order))
            for measure, shown in (("fid_domain", "domain FID"), ("nll", "NLL")):
                row = {"panel": name, "proportion": proportion, "data": ", ".join(data[proportion]), "measure": shown}
                row.update({model: _fmt(runs[measure].dropna().tolist()) for model, runs in models})
                rows.append(row)
    return pd.DataFrame(rows).fillna("–")


# --- the NLL gap (the reference model) --------------------------------------------------------

GAP = FINDINGS / "nll_gap.json"


def gap_table(gap: dict) -> pd.DataFrame:
    rows = []
    for entry in gap["estimates"]:
        rows.append({"estimate": entry["form"], "meaning": entry["meaning"], "samples": entry["samples"],
                     "images": entry["images"], "nll_nats": entry["mean"], "stderr_nats": entry["stderr"],
                     "valid_bound": entry["valid_bound"]})
    return pd.DataFrame(rows)


# --- the page -----------------------------------------------------------------------------------

def _minutes(camp: dict) -> float:
    """A run's wall minutes from its campaign record; NaN where none was measured (a run harvested again
    from DVC's cache after its record was lost has no wall time of its own)."""
    seconds = camp.get("wall_seconds")
    return math.nan if seconds is None else seconds / 60


def minutes_by_system(params: dict, root: Path = Path(".")) -> pd.DataFrame:
    """Wall minutes of the committed findings runs per campaign and system: runs, mean, median, total."""
    rows = []
    for campaign, runs in (("Table 2", table2_runs()), ("Fig. 3", lowdata_runs(params))):
        for run in runs:
            camp = _json(run_dir(run, root) / "campaign.json")
            if camp is not None:
                rows.append({"campaign": campaign, "model": model_label(run["variant"]), "minutes": _minutes(camp)})
    if not rows:
        return pd.DataFrame(columns=["campaign", "model", "runs", "mean", "median", "total"])
    df = pd.DataFrame(rows).groupby(["campaign", "model"])["minutes"]
    return pd.DataFrame({"runs": df.count(), "mean": df.mean(), "median": df.median(),
                         "total": df.sum()}).reset_index()


def build(root: Path = Path("."), params_path: str | Path = "params.yaml") -> list[Verdict]:
    """Every table, figure and the verdict page from the committed metrics under `root` (the findings
    profile and grid of `params_path`, relative to `root` unless absolute)."""
    params = load_params(root / params_path)
    out = root / FINDINGS
    out.mkdir(parents=True, exist_ok=True)
    verdicts: list[Verdict] = []
    rows = table2_rows(root)
    t2 = table2(rows)
    write_table(t2, out / "table2.md", out / "table2.csv", title=(
        "Table 2 on Omniglot (findings profile; dvc experiments): one factor at a time from K = 5, M = 50, "
        "lambda = 50. Measured: mean over the seeds (sd where two), parse PSNR of the test images, domain FID "
        "of 2,000 samples against 2,000 test images (fid_domain_real: real training images scored the same "
        "way; classifier_accuracy: the validation accuracy of the classifier whose features the FID uses), "
        "importance-sampled NLL (S = 50, 1,000 test images), BCE and KL of the ELBO. paper_*: the paper's "
        "Table 2 (IWAE Omniglot, Inception FID): reported, not measured here."))
    if len(rows):
        write_table(rows, out / "table2-runs.md", out / "table2-runs.csv", title="Table 2: every committed run.")
    verdicts += table2_verdicts(rows)
    figures, panels = {}, {}
    for c in curves(params, PROFILE):
        runs = [{"dataset": c["dataset"], "profile": PROFILE, "split": s, "seed": seed, "variant": v}
                for v in c["variants"] for s in c["splits"] for seed in c["seeds"]]
        paths = [run_dir(r, root) / "metrics/eval.json" for r in runs if committed(r, root)]
        name = f"{c['dataset']}-{c['kind']}"
        claim, scope = FIG3[(c["dataset"], c["kind"])]
        df = points(paths) if paths else None
        if df is not None:
            lowdata = out / "lowdata"
            lowdata.mkdir(exist_ok=True)
            title = f"{c['dataset']}, low-data by {c['kind']} at the findings profile, {len(paths)} of {len(runs)} runs"
            plot(df, lowdata / f"{name}.png", title)
            write_table(summary(df), lowdata / f"{name}.md", lowdata / f"{name}.csv", title=(
                f"Low-data curve: {title}. Mean, sd and seeds of domain FID and NLL per model and proportion; "
                f"groups_mean: the {GROUPS.get(c['kind'], 'images')} the splits held."))
            figures[name] = f"[figure](lowdata/{name}.png), [table](lowdata/{name}.md)"
            panels[name] = df
        for against, who in ((None, ""), (NON_AUTOREGRESSIVE, f", against {' and '.join(NON_AUTOREGRESSIVE)} "
                                                                 "alone (no autoregressive decoder)")):
            verdict, evidence = panel_verdict(df, claim, scope, against=against)
            verdicts.append(Verdict(f"Fig. 3, {claim} (domain FID){who}", verdict, evidence,
                                    figures.get(name, "not run yet")))
    if panels:
        write_table(overview(panels), out / OVERVIEW, title=(
            "Fig. 3 at a glance: domain FID and NLL (nats, S = 50) per model, mean ± sd over the seeds "
            "committed (lower is better); the per-panel tables and curves hold the rest."))
    gap = _json(root / GAP)
    if gap is not None:
        write_table(gap_table(gap), out / "nll_gap.md", title=gap["title"])
    timing = minutes_by_system(params, root)
    minutes, counted = timing["total"].sum(), int(timing["runs"].sum())   # the runs that recorded a wall time
    write_table(timing, out / "minutes.md", title="Wall minutes of the committed findings runs, per campaign and "
                "model (campaign.json beside each run's metrics; one run at a time on a 2-core CPU).")
    write_page(out / "README.md", verdicts, params, root, minutes, counted, gap)
    return verdicts


def progress(params: dict, root: Path = Path(".")) -> dict[str, tuple[int, int]]:
    """{campaign: (runs committed, runs planned)}."""
    return {"Table 2": (sum(committed(r, root) for r in table2_runs()), len(table2_runs())),
            "Fig. 3": (sum(committed(r, root) for r in lowdata_runs(params)), len(lowdata_runs(params)))}


def classifiers(root: Path = Path(".")) -> dict[str, dict]:
    """{dataset: its findings-profile domain classifier's record} for the datasets with one committed (a
    dataset without labels has a record that says why it has no classifier: left out)."""
    found = {}
    for path in sorted((root / RUNS).glob(f"*/{PROFILE}/reference/classifier.json")):
        record = _json(path)
        if record.get("valid_accuracy") is not None:
            found[path.parts[-4]] = record
    return found


def write_page(path: Path, verdicts: list[Verdict], params: dict, root: Path, minutes: float, counted: int,
               gap: dict | None) -> None:
    cfg = resolve(params, dataset=TABLE2_DATASET, profile=PROFILE)
    lines = [
        "# Findings: the paper's claims, re-run here",
        "",
        "Every number below is read from the metrics committed under [runs/](runs/) (each run's `eval.json`, with "
        "its provenance: code commit, params, libraries) and rebuilt by `python -m npdraw.reporting.findings`. "
        "The runs are made by `python scripts/campaign.py run` through the pipeline's own front doors: the "
        "ablation as `dvc exp` experiments, the low-data grid by Snakemake, at the `findings` profile of "
        "params.yaml. Every system and split sees the same "
        f"{cfg.training.image_updates:,} training images in {cfg.training.rounds} rounds, the checkpoint "
        f"chosen by the FID of {cfg.data.max_valid_images:,} samples against the validation images (every "
        f"{cfg.training.select_every} rounds), the NLL with S = {cfg.evaluate.nll_samples} on the same "
        f"{cfg.evaluate.nll_images:,} test images and the domain FID of {cfg.evaluate.samples:,} samples "
        f"against {cfg.evaluate.fid_images:,} test images. The models are far smaller and shorter-trained "
        "than the paper's (a 2-core CPU); the verdicts are about the direction of each effect, not its size.",
        "",
        "Progress: " + "; ".join(f"{k} {done} of {planned} runs" for k, (done, planned) in
                                 progress(params, root).items())
        + f". Measured wall time of the committed runs: {minutes:.0f} minutes ({counted} runs, one at a time on "
          "a 2-core CPU; [per model](minutes.md)).",
        "",
        "| claim | verdict | evidence (domain FID unless named; Welch t-test over seeds at 5 %) | where |",
        "|---|---|---|---|",
    ]
    for v in verdicts:
        lines.append(f"| {v.claim} | **{v.verdict}** | {v.evidence} | {v.link} |")
    accuracy = "; ".join(f"{dataset}'s classifier ({c['classes']} classes) {c['valid_accuracy']:.3f}"
                         for dataset, c in classifiers(root).items())
    lines += ["", "FIDs here are domain FIDs (features of the pipeline's own classifier), not Inception FIDs: "
              "they rank models but do not compare with the paper's numbers. The classifiers' validation "
              f"accuracy: {accuracy or 'none committed yet'}."]
    if (path.parent / OVERVIEW).is_file():
        lines += ["", f"Fig. 3 at a glance, every point and model: [{OVERVIEW}]({OVERVIEW})."]
    if (path.parent / DISCUSSION).is_file():
        lines += ["", f"What the verdicts say, and why some differ from the paper: [{DISCUSSION}]({DISCUSSION})."]
    if gap is not None:
        lines += ["", "## The reference model's NLL against the paper's 98.92", "", gap["summary"], "",
                  "[The measurements](nll_gap.md)."]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def main(argv: list[str]) -> None:
    verdicts = build()
    for v in verdicts:
        print(f"{v.verdict:>26}  {v.claim}")
    print(f"written: {FINDINGS}/README.md")


if __name__ == "__main__":
    main(sys.argv[1:])

