"""What produced a metrics file: the code version, the parameters the stage read, the libraries.

Every stage that writes metrics writes them with `write_metrics`, which adds a `provenance` block:
the git commit of the checkout the stage ran in (and whether its tracked files had uncommitted
changes), the run's choices, the resolved values of the params the stage declares in the stage
table (npdraw.workflow.stages: the same values make Snakemake rerun it, and their params.yaml keys DVC),
and the versions of Python and of
the libraries that shape the numbers.  Nothing time-dependent goes in, so a rerun of a
deterministic stage writes the same bytes.  `dvc exp show --drop provenance` hides the block.
"""

from __future__ import annotations

import platform
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from npdraw.artifacts.contracts import non_finite
from npdraw.artifacts.errors import ArtifactError
from npdraw.artifacts.io import write_json
from npdraw.workflow.resolve import CHOICE_KEYS, numerics
from npdraw.workflow.stages import params_block, stage

LIBRARIES = ("torch", "numpy", "pandas", "scipy", "scikit-learn", "scikit-learn-extra", "kmedoids", "torchmetrics",
             "torch-fidelity", "dvc", "snakemake")


@cache
def code_version(where: str = ".") -> dict[str, Any]:
    """{git_commit, git_dirty} of the git checkout containing `where`; None values with the reason
    when it is not one (an unpacked archive, a copy)."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True)
    try:
        head = git("rev-parse", "--verify", "-q", "HEAD")
    except FileNotFoundError:
        return {"git_commit": None, "git_dirty": None, "note": "git is not installed"}
    if head.returncode:
        return {"git_commit": None, "git_dirty": None, "note": f"{Path(where).resolve()} is not a git checkout"}
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": head.stdout.strip(), "git_dirty": bool(dirty.stdout.strip())}


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
