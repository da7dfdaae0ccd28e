"""Running `dvc` and reading `dvc exp show --json`: one row per experiment with its run choices and metrics."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

from npdraw.artifacts.errors import ParamsError
from npdraw.workflow.paths import VARIANT_DIR
from npdraw.workflow.resolve import CHOICE_KEYS as CHOICES

# The metrics files an ablation experiment must have finished (scripts/dvc_ablation.py, make_tables).
ABLATION_METRICS = {"parse": VARIANT_DIR + "/metrics/parse.json", "eval": VARIANT_DIR + "/metrics/eval.json"}


def dvc(*args: str, stream: bool = False, cwd=None, env=None) -> str:
    """Run a dvc command (streaming its output when `stream`); a failure stops with the command and
    DVC's message."""
    result = subprocess.run(["dvc", *args], capture_output=not stream, text=True, cwd=cwd, env=env)
    if result.returncode:
        said = "" if stream else ":\n" + (result.stderr or result.stdout).strip()
        raise ParamsError(f"`dvc {' '.join(args)}` failed (exit {result.returncode}){said}")
    return result.stdout or ""


def show_experiments(cwd=None, env=None) -> list:
    """`dvc exp show --json`, parsed."""
    return json.loads(dvc("exp", "show", "--json", cwd=cwd, env=env))


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


def experiment_rows(shown: list, templates: dict[str, str]) -> list[dict]:
    """Rows {name, rev, timestamp, <run choices>, params, metrics: {key: data}} of the experiments
    that have every metrics file named by `templates` (key -> path pattern formatted with the run
    choices, e.g. 'results/{dataset}/.../metrics/eval.json')."""
    rows = []
    for name, rev, data in iter_experiments(shown):
        params = data.get("params", {}).get("params.yaml", {}).get("data", {})
        choice = {k: params.get(k) for k in CHOICES}
        if None in choice.values():
            continue
        metrics = {key: data.get("metrics", {}).get(t.format(**choice), {}).get("data")
                   for key, t in templates.items()}
        if all(metrics.values()):
            rows.append({"name": name, "rev": rev, "timestamp": data.get("timestamp") or "", **choice,
                         "params": params, "metrics": metrics})
    return rows


def latest(rows: list[dict], key: str = "variant") -> dict[str, dict]:
    """The newest row for each value of `key` (a variant run again replaces its older experiment)."""
    out: dict[str, dict] = {}
    for row in sorted(rows, key=lambda r: r["timestamp"]):
        out[row[key]] = row
    return out
