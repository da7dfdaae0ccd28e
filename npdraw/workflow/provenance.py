"""What produced a metrics file: the code version, the parameters the stage read, the libraries.

Every stage that writes metrics writes them with `write_metrics`, which adds a `provenance` block:
the git commit of the checkout the stage ran in (and, where its tracked files had uncommitted changes,
what they were: the params `dvc exp run -S` overrode, the diff of the rest), the run's choices, the
resolved values of the params the stage declares in the stage table (npdraw.workflow.stages: the same
values make Snakemake rerun it, and their params.yaml keys DVC), and the versions of Python and of the
libraries that shape the numbers.  Nothing time-dependent goes in, so a rerun of a
deterministic stage writes the same bytes.  `dvc exp show --drop provenance` hides the block.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from npdraw.artifacts.contracts import non_finite
from npdraw.artifacts.errors import ArtifactError
from npdraw.artifacts.io import write_json
from npdraw.workflow.resolve import CHOICE_KEYS, numerics
from npdraw.workflow.stages import params_block, stage

DIFF_LIMIT = 100_000   # characters of a dirty tree's diff a metrics file holds whole
LIBRARIES = ("torch", "numpy", "pandas", "scipy", "scikit-learn", "scikit-learn-extra", "kmedoids", "torchmetrics",
             "torch-fidelity", "dvc", "snakemake")


@cache
def code_version(where: str = ".") -> dict[str, Any]:
    """{git_commit, git_dirty} of the git checkout containing `where`, and when its tracked files differ
    from that commit, what differs: `params_overrides` ({dotted key: value} where params.yaml differs from
    the commit's: what `dvc exp run -S` set) and `diff` (the other tracked files' `git diff HEAD`, or its
    SHA-256 and file list when longer than DIFF_LIMIT characters).  None values with the reason when
    `where` is not a git checkout (an unpacked archive, a copy)."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True)
    try:
        head = git("rev-parse", "--verify", "-q", "HEAD")
    except FileNotFoundError:
        return {"git_commit": None, "git_dirty": None, "note": "git is not installed"}
    if head.returncode:
        return {"git_commit": None, "git_dirty": None, "note": f"{Path(where).resolve()} is not a git checkout"}
    changed = git("diff", "HEAD", "--name-only").stdout.split()
    out = {"git_commit": head.stdout.strip(), "git_dirty": bool(changed)}
    if not changed:
        return out
    top = Path(git("rev-parse", "--show-toplevel").stdout.strip())
    if "params.yaml" in changed:
        committed = yaml.safe_load(git("show", "HEAD:params.yaml").stdout) or {}
        now = yaml.safe_load((top / "params.yaml").read_text()) or {}
        out["params_overrides"] = overrides(committed, now)
    others = [f for f in changed if f != "params.yaml"]
    if others:
        diff = git("diff", "HEAD", "--", *others).stdout
        out["diff"] = diff if len(diff) <= DIFF_LIMIT else {
            "files": others, "sha256": hashlib.sha256(diff.encode()).hexdigest(), "characters": len(diff)}
    return out


def overrides(before: dict, after: dict, prefix: str = "") -> dict[str, Any]:
    """{dotted key: value in `after`} of every leaf where two nested dicts differ (a key gone: None)."""
    out = {}
    for key in sorted(set(before) | set(after), key=str):
        a, b = before.get(key), after.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out.update(overrides(a, b, f"{name}."))
        elif a != b:
            out[name] = b
    return out


@cache
def library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def provenance(cfg) -> dict[str, Any]:
    """The block: code, run choices, numerics, the params the stage (cfg.stage) declares, libraries."""
    return {"code": code_version("."), "run": {k: cfg[k] for k in CHOICE_KEYS},
            "numerics": numerics(cfg["compute"]),
            "params": params_block(cfg, stage(cfg["stage"])), "libraries": library_versions()}


def write_metrics(path: str | Path, metrics: dict, cfg, inputs: dict[str, str] | None = None) -> None:
    """Write a stage's metrics JSON (atomically) with its provenance block (cfg: the stage's
    configuration, npdraw.workflow.cli.run_config).  A NaN or infinite metric is refused (ArtifactError
    naming it and the stage's `inputs`): nothing is written."""
    bad = non_finite(metrics)
    if bad:
        named = ", ".join(f"{flag} {value}" for flag, value in (inputs or {}).items()) or "its inputs"
        raise ArtifactError(f"{path}: not written: metric '{bad[0][0]}' = {bad[0][1]} ({len(bad)} non-finite "
                            f"value(s)), expected finite numbers; it was computed from {named}: one of them "
                            f"holds non-finite or out-of-range values, or the computation diverged")
    write_json(path, {**metrics, "provenance": provenance(cfg)})
