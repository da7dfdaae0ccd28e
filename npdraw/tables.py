"""Tables built from metrics JSON files only (never recomputed)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from npdraw.config import ParamsError, parse_variant
from npdraw.io import atomic_path


def read_metrics(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: metrics file not found; run the stage that writes it first")
    return json.loads(path.read_text())


def psnr_row(variant: str, parse_metrics: dict, defaults: dict) -> dict:
    """One ablation row: K, M from the variant (or the dataset defaults), PSNR from the parse metrics."""
    ds = {**defaults, **parse_variant(variant)}
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


def write_table(df: pd.DataFrame, markdown: str | Path, csv: str | Path | None = None, title: str = "") -> None:
    with atomic_path(markdown) as tmp:
        # Floats with 3 decimals, everything else as is (tabulate would re-parse numbers: disabled).
        shown = df.apply(lambda col: col.map("{:.3f}".format) if pd.api.types.is_float_dtype(col) else col.astype(str))
        text = (f"{title}\n\n" if title else "") + shown.to_markdown(index=False, disable_numparse=True) + "\n"
        tmp.write_text(text)
    if csv is not None:
        with atomic_path(csv) as tmp:
            df.to_csv(tmp, index=False)
