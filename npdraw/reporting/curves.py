"""Training curves as a picture, read from the DVCLive folders the training stages write.

`dvc plots show` draws the same curves from the same files (dvc.yaml `plots`); this picture is
for the Snakemake report and for people without DVC's HTML.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from npdraw.artifacts.errors import ArtifactError
from npdraw.artifacts.io import atomic_path


def read_live(live_dir: str | Path) -> dict[str, dict[str, pd.DataFrame]]:
    """metric -> split (train / valid) -> DataFrame(step, value) from <live>/plots/metrics/<split>/<metric>.tsv."""
    root = Path(live_dir) / "plots" / "metrics"
    files = sorted(root.glob("*/*.tsv"))
    if not files:
        raise ArtifactError(f"{live_dir}: no DVCLive curves (expected {root}/<split>/<metric>.tsv); "
                          f"run the training stage that writes them first")
    out: dict[str, dict[str, pd.DataFrame]] = {}
    for f in files:
        df = pd.read_csv(f, sep="\t")
        out.setdefault(f.stem, {})[f.parent.name] = df.rename(columns={f.stem: "value"})
    return out


def plot_curves(lives: dict[str, str | Path], path: str | Path, title: str) -> None:
    """One panel per (training stage, metric), train and validation curves against the epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = [(label, metric, splits) for label, live in lives.items()
              for metric, splits in read_live(live).items()]
    ncol = min(4, len(panels))
    nrow = -(-len(panels) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.4 * ncol, 2.7 * nrow), squeeze=False)
    for ax, (label, metric, splits) in zip(axes.flat, panels):
        for split, df in sorted(splits.items()):
            ax.plot(df["step"] + 1, df["value"], marker="o", markersize=3, label=split)
        ax.set_title(f"{label}: {metric}", fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
