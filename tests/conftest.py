import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from npdraw.config import load_params, resolve

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("NPDRAW_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def params():
    return load_params(REPO / "params.yaml")


@pytest.fixture
def make_cfg(params):
    """resolve() with overrides of the base sections and dataset settings."""

    def make(dataset="mnist", profile="quick", ds=None, **sections):
        p = {**params, "datasets": {k: dict(v) for k, v in params["datasets"].items()}}
        p["datasets"][dataset].update(ds or {})
        for name, values in sections.items():
            p[name] = {**p[name], **values}
        return resolve(p, dataset=dataset, profile=profile)

    return make


@pytest.fixture
def empty_mirror(tmp_path, monkeypatch):
    """An empty data mirror and download cache, so lookups see only what a test writes."""
    mirror, cache = tmp_path / "mirror", tmp_path / "cache"
    mirror.mkdir()
    monkeypatch.setenv("NPDRAW_DATA", str(mirror))
    monkeypatch.setenv("NPDRAW_CACHE", str(cache))
    return mirror


def needs_mirror(*parts):
    return pytest.mark.skipif(not MIRROR.joinpath(*parts).exists(), reason=f"data mirror lacks {'/'.join(parts)}")


@pytest.fixture
def repo_copy(tmp_path):
    """A copy of the working tree (tracked + untracked, not ignored files) to run workflows in."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                           cwd=REPO, check=True, capture_output=True, text=True).stdout.split("\0")
    dest = tmp_path / "repo"
    for f in filter(None, files):
        src = REPO / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    return dest


def venv_bin(name: str) -> str:
    """A console script of the running interpreter's environment (snakemake, dvc)."""
    return str(Path(sys.executable).parent / name)


def pytest_terminal_summary(terminalreporter):
    """Count and list the bad-input cases (tests/test_bad_inputs.py) at the end of the run."""
    reports = [r for outcome in ("passed", "failed") for r in terminalreporter.stats.get(outcome, [])
               if r.when == "call" and "test_bad_inputs.py" in r.nodeid]
    if not reports:
        return
    refused = sum(r.passed for r in reports)
    terminalreporter.write_sep("-", f"bad-input matrix: {len(reports)} cases, {refused} refused cleanly "
                                    f"(one error paragraph, exit 2, no finished-looking output)")
    for r in sorted(reports, key=lambda r: r.nodeid):
        name = r.nodeid.split("::", 1)[1].removeprefix("test_")
        terminalreporter.write_line(f"  {'ok    ' if r.passed else 'FAILED'} {name}")
