"""The low-data grid (method §2 and 11.2, paper Fig. 3): which runs it holds, and its curves.

params `lowdata` lists curves, each a dataset and a split kind with the proportions of training data to
try; every point is run for each of `lowdata.variants` (NP-DRAW and the baselines of the systems
registry) with each of `lowdata.seeds`.  A point is an ordinary run
(`results/<dataset>/<profile>/<kind>-<proportion>/seed<N>/<variant>/`), so Snakemake builds the grid
from the same rules as any run, and the curves read only the runs' evaluation metrics and split
summaries.  All runs of a dataset and profile are scored with the same domain classifier on the same
test images (npdraw.workflow.stages.SCOPE_CHOICES), so the FIDs along and across curves compare.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from npdraw.artifacts.errors import ParamsError
from npdraw.artifacts.io import atomic_path
from npdraw.reporting.tables import budget, domain_columns, model_label, read_metrics, reported_nll, run_of
from npdraw.workflow.paths import VARIANT_DIR
from npdraw.workflow.resolve import resolve

# Columns of a curve, with what the plot calls them.  Inception FID only where it was measured.
MEASURES = {"fid_domain": "domain FID (pipeline's classifier)", "fid_inception": "FID (Inception)",
            "nll": "NLL bound (nats; bits/dim for colour)"}
# What a split kind chooses, as splits.json records it (npdraw.data.splits): the groups on the axis.
GROUPS = {"digit": "digits", "character": "characters", "alphabet": "alphabets"}


def split_name(kind: str, proportion: float) -> str:
    """('digit', 0.3) -> 'digit-0.3': the split wildcard of a grid point."""
    text = np.format_float_positional(float(proportion), trim="-")
    return f"{kind}-{text}"


def curves(params: dict, profile: str) -> list[dict]:
    """The curves of `lowdata` at `profile` (its override replaces the base list), each checked by
    resolving every run it needs: {dataset, kind, proportions, seeds, variants, splits}."""
    section = resolve(params, profile=profile)["lowdata"]
    out = []
    for i, curve in enumerate(section["curves"]):
        splits = [split_name(curve["kind"], p) for p in curve["proportions"]]
        for split in splits:
            for variant in section["variants"]:
                try:
                    resolve(params, dataset=curve["dataset"], profile=profile, split=split,
                            seed=section["seeds"][0], variant=variant)
                except ParamsError as err:
                    raise ParamsError(f"lowdata.curves.{i} (profile {profile!r}): {err}") from None
        out.append({**curve, "seeds": list(section["seeds"]), "variants": list(section["variants"]),
                    "splits": splits})
    return out


def curve_runs(params: dict, profile: str, dataset: str, kind: str) -> list[dict]:
    """The run choices of every point, system and seed of one curve."""
    found = [c for c in curves(params, profile) if c["dataset"] == dataset and c["kind"] == kind]
    if not found:
        raise ParamsError(f"lowdata at profile {profile!r} has no curve for dataset {dataset!r}, kind {kind!r}")
    c = found[0]
    return [{"dataset": dataset, "profile": profile, "split": split, "seed": seed, "variant": variant}
            for variant in c["variants"] for split in c["splits"] for seed in c["seeds"]]


def curve_inputs(params: dict, profile: str, dataset: str, kind: str) -> list[str]:
    """The evaluation metrics files of every point, system and seed of one curve."""
    return [VARIANT_DIR.format(**run) + "/metrics/eval.json" for run in curve_runs(params, profile, dataset, kind)]


def chosen_groups(split_summary: dict, kind: str) -> int | None:
    """How many digits, characters or alphabets a run's split trained on (its splits.json)."""
    if kind == "digit":
        return len(split_summary["digits"]) if "digits" in split_summary else None
    groups = split_summary.get(GROUPS.get(kind, ""))
    return groups["chosen"] if isinstance(groups, dict) else None


def points(paths: list[str | Path]) -> pd.DataFrame:
    """One row per run: dataset, kind, proportion, system, seed, training images and groups, the measures."""
    rows = []
    for path in paths:
        run, m = run_of(path), read_metrics(path, ("nll_nats", "generated"), "the evaluate stage")
        kind, _, proportion = run["split"].partition("-")
        splits = Path(path).parents[2] / "splits.json"   # <run>/splits.json, beside the variant folders
        summary = json.loads(splits.read_text()) if splits.is_file() else {}
        rows.append({"dataset": run["dataset"], "kind": kind, "proportion": float(proportion),
                     "variant": run["variant"], "model": model_label(run["variant"]),
                     "seed": int(run["seed"]), "train_images": summary.get("counts", {}).get("train"),
                     "groups": chosen_groups(summary, kind),
                     **domain_columns(m), "fid_inception": m.get("fid"), "nll": reported_nll(m),
                     "kl_nats": m.get("kl_nats"), "budget": budget(Path(path).with_name("model.json")),
                     "samples": m["generated"], "path": str(path)})
    return pd.DataFrame(rows).sort_values(["model", "proportion", "seed"]).reset_index(drop=True)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation and number of seeds of each measure at each proportion, per model."""
    measures = [m for m in MEASURES if df[m].notna().any()]
    agg = df.groupby(["model", "proportion"])[measures].agg(["mean", "std", "count"])
    agg.columns = [f"{m}_{stat}" for m, stat in agg.columns]
    sizes = df.groupby(["model", "proportion"])[["train_images", "groups"]].mean()
    sizes.columns = ["train_images_mean", "groups_mean"]
    return pd.concat([sizes, agg], axis=1).reset_index()


def held(df: pd.DataFrame, kind: str) -> dict[float, list[str]]:
    """The training data each proportion really was (mean over the runs): the number of digits, characters
    or alphabets, and of images, as short phrases (none where the splits did not record them)."""
    out = {}
    for proportion, runs in df.groupby("proportion"):
        phrases = []
        if runs["groups"].notna().any():
            count = runs["groups"].mean()
            phrases.append(f"{count:.0f} {GROUPS[kind] if count != 1 else GROUPS[kind][:-1]}")
        if runs["train_images"].notna().any():
            phrases.append(f"{runs['train_images'].mean():,.0f} img")
        out[proportion] = phrases
    return out


def axis_labels(df: pd.DataFrame, kind: str) -> dict[float, str]:
    """Tick label of each proportion: the proportion, and the training data it held (held()), one a line."""
    return {proportion: "\n".join([f"{proportion:g}", *phrases]) for proportion, phrases in held(df, kind).items()}


def seed_bands(ax, runs: pd.DataFrame, x: str, y: str) -> None:
    """Draw `y` against `x` on `ax` for every model of `runs` (one row a run): each run as a dot, the mean
    over the runs at each x as a line, +- one standard deviation as a band; models in name order, so a
    model keeps its colour from figure to figure."""
    import matplotlib.pyplot as plt

    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (model, at) in enumerate(runs.groupby("model", sort=True)):
        colour = colours[i % len(colours)]
        s = at.groupby(x)[y].agg(["mean", "std"]).reset_index()
        spread = s["std"].fillna(0.0)
        ax.fill_between(s[x], s["mean"] - spread, s["mean"] + spread, alpha=0.18, color=colour)
        ax.plot(s[x], s["mean"], marker="o", color=colour, label=model)
        ax.scatter(at[x], at[y], s=10, color=colour, alpha=0.6, zorder=3)


def plot(df: pd.DataFrame, path: str | Path, title: str) -> None:
    """One panel per measured quantity, every model on the same axes: each seed as a dot, the mean over
    seeds as a line, +- one standard deviation as a band (paper Fig. 3).  The x axis is the proportion
    of training data, labelled with the digits, characters or alphabets and images it held."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measures = [m for m in MEASURES if df[m].notna().any()]
    kind = df["kind"].iloc[0]
    ticks = axis_labels(df, kind)
    fig, axes = plt.subplots(1, len(measures), figsize=(4.8 * len(measures), 3.9), squeeze=False)
    for ax, m in zip(axes[0], measures):
        seed_bands(ax, df, "proportion", m)
        ax.set_xscale("log")
        ax.set_xticks(list(ticks), list(ticks.values()), fontsize=7)
        ax.minorticks_off()
        ax.set_xlabel("proportion of training data")
        ax.set_ylabel(MEASURES[m])
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, title="mean ± 1 sd; dots: seeds", title_fontsize=7)
    seeds = df.groupby(["model", "proportion"])["seed"].nunique()
    count = f"{seeds.min()}-{seeds.max()}" if seeds.min() != seeds.max() else f"{seeds.min()}"
    fig.suptitle(f"{title} ({count} seed{'' if count == '1' else 's'} per point)", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
