"""The low-data grid (method §2 and 11.2, paper Fig. 3): which runs it holds, and its curves.

params `lowdata` lists curves, each a dataset and a split kind with the proportions of
training data to try; every point is run with each of `lowdata.seeds`.  A point is an
ordinary run (`results/<dataset>/<profile>/<kind>-<proportion>/seed<N>/<variant>/`),
so Snakemake builds the grid from the same rules as any run, and the curves read only
the runs' evaluation metrics.  All runs of a dataset and profile are scored with the same
domain classifier on the same test images (npdraw.runtime.pipeline.SCOPE_CHOICES), so the FIDs
along a curve compare.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from npdraw.reporting.tables import read_metrics, reported_nll, run_of
from npdraw.runtime.config import ParamsError, resolve
from npdraw.runtime.io import atomic_path
from npdraw.runtime.pipeline import VARIANT_DIR

# Columns of a curve, with what the plot calls them.  Inception FID only where it was measured.
MEASURES = {"fid_domain": "domain FID (pipeline's classifier)", "fid_inception": "FID (Inception)",
            "nll": "NLL bound (nats; bits/dim for colour)"}


def split_name(kind: str, proportion: float) -> str:
    """('digit', 0.3) -> 'digit-0.3': the split wildcard of a grid point."""
    text = np.format_float_positional(float(proportion), trim="-")
    return f"{kind}-{text}"


def curves(params: dict, profile: str) -> list[dict]:
    """The curves of `lowdata` at `profile` (its override replaces the base list), each checked by
    resolving every run it needs: {dataset, kind, proportions, seeds, variant, splits}."""
    section = resolve(params, profile=profile)["lowdata"]
    out = []
    for i, curve in enumerate(section["curves"]):
        splits = [split_name(curve["kind"], p) for p in curve["proportions"]]
        for split in splits:
            try:
                resolve(params, dataset=curve["dataset"], profile=profile, split=split, seed=section["seeds"][0],
                        variant=section["variant"])
            except ParamsError as err:
                raise ParamsError(f"lowdata.curves.{i} (profile {profile!r}): {err}") from None
        out.append({**curve, "seeds": list(section["seeds"]), "variant": section["variant"], "splits": splits})
    return out


def curve_inputs(params: dict, profile: str, dataset: str, kind: str) -> list[str]:
    """The evaluation metrics files of every point and seed of one curve."""
    found = [c for c in curves(params, profile) if c["dataset"] == dataset and c["kind"] == kind]
    if not found:
        raise ParamsError(f"lowdata at profile {profile!r} has no curve for dataset {dataset!r}, kind {kind!r}")
    c = found[0]
    return [VARIANT_DIR.format(dataset=dataset, profile=profile, split=split, seed=seed, variant=c["variant"])
            + "/metrics/eval.json" for split in c["splits"] for seed in c["seeds"]]


def points(paths: list[str | Path]) -> pd.DataFrame:
    """One row per run: dataset, kind, proportion, seed, training images and the measures."""
    rows = []
    for path in paths:
        run, m = run_of(path), read_metrics(path, ("nll_nats", "generated"), "the evaluate stage")
        kind, _, proportion = run["split"].partition("-")
        splits = Path(path).parents[2] / "splits.json"   # <run>/splits.json, beside the variant folders
        counts = json.loads(splits.read_text())["counts"] if splits.is_file() else {}
        rows.append({"dataset": run["dataset"], "kind": kind, "proportion": float(proportion),
                     "seed": int(run["seed"]), "train_images": counts.get("train"),
                     "fid_domain": m.get("fid_domain"), "fid_inception": m.get("fid"),
                     "nll": reported_nll(m), "samples": m["generated"],
                     "path": str(path)})
    return pd.DataFrame(rows).sort_values(["proportion", "seed"]).reset_index(drop=True)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation and number of seeds of each measure at each proportion."""
    measures = [m for m in MEASURES if df[m].notna().any()]
    agg = df.groupby("proportion")[measures].agg(["mean", "std", "count"])
    agg.columns = [f"{m}_{stat}" for m, stat in agg.columns]
    counts = df.groupby("proportion")["train_images"].mean().rename("train_images_mean")
    return pd.concat([counts, agg], axis=1).reset_index()


def plot(df: pd.DataFrame, path: str | Path, title: str) -> None:
    """One panel per measured quantity: each seed as a dot, the mean as a line, +- one standard
    deviation across seeds as a band (paper Fig. 3)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measures = [m for m in MEASURES if df[m].notna().any()]
    stats = summary(df)
    fig, axes = plt.subplots(1, len(measures), figsize=(4.2 * len(measures), 3.4), squeeze=False)
    for ax, m in zip(axes[0], measures):
        x, mean = stats["proportion"], stats[f"{m}_mean"]
        spread = stats[f"{m}_std"].fillna(0.0)
        ax.fill_between(x, mean - spread, mean + spread, alpha=0.25, label="mean ± 1 sd across seeds")
        ax.plot(x, mean, marker="o", label="mean")
        ax.scatter(df["proportion"], df[m], s=12, color="black", alpha=0.6, label="one seed", zorder=3)
        ax.set_xlabel("proportion of training data")
        ax.set_ylabel(MEASURES[m])
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    seeds = df.groupby("proportion")["seed"].nunique()
    fig.suptitle(f"{title} ({seeds.min()}-{seeds.max()} seeds per point)" if seeds.min() != seeds.max()
                 else f"{title} ({seeds.min()} seeds per point)", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
