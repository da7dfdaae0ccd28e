"""Reading `dvc exp show --json`: one row per experiment with its run choices and metrics."""

from __future__ import annotations

import json
import subprocess
from typing import Iterator

from npdraw.workflow import CHOICES


def iter_experiments(shown: list) -> Iterator[tuple[str, str, dict]]:
    """(name, rev, data) for every committed baseline and each experiment derived from it."""
    for entry in shown:
        if entry.get("rev") == "workspace" or entry.get("error"):
            continue
        yield entry.get("name") or entry["rev"][:7], entry["rev"], entry["data"]
        for group in entry.get("experiments") or []:
            for rev in group.get("revs", []):
                if rev.get("data") and not rev.get("error"):
                    yield rev.get("name") or rev["rev"][:7], rev["rev"], rev["data"]


def experiment_rows(shown: list, metrics_template: str) -> list[dict]:
    """Rows {name, rev, <run choices>, params, metrics} with the metrics file that
    `metrics_template` (formatted with the run choices) names for that experiment."""
    rows = []
    for name, rev, data in iter_experiments(shown):
        params = data.get("params", {}).get("params.yaml", {}).get("data", {})
        choice = {k: params.get(k) for k in CHOICES}
        if None in choice.values():
            continue
        metrics = data.get("metrics", {}).get(metrics_template.format(**choice), {}).get("data")
        if metrics:
            rows.append({"name": name, "rev": rev, **choice, "params": params, "metrics": metrics})
    return rows


def show(cwd: str = ".") -> list:
    out = subprocess.run(["dvc", "exp", "show", "--json"], cwd=cwd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)
