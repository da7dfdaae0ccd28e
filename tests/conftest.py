import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from npdraw.compute.memory import keep_freed_memory
from npdraw.workflow.params import load_params
from npdraw.workflow.resolve import resolve

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path(os.environ.get("NPDRAW_DATA", REPO.parent / "shared" / "data"))

keep_freed_memory()   # the tests that train in this process run as the stages do (npdraw.compute.memory)


def pytest_configure(config):
    """Under pytest-xdist each of the N workers computes in-process on its share of the cores: N workers
    with every core each would oversubscribe them N-fold (OpenMP threads spinning against each other).
    The stages a test starts as subprocesses keep their own thread settings (Snakemake's threads)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


def pytest_collection_modifyitems(config, items):
    """The fault suite, then the other slow tests (pipeline runs), first; stable otherwise.  Run last, one of
    them kept a worker busy for minutes after the other had nothing left; first, the short tests fill in
    around them (pytest-xdist's worksteal takes from the end of a busy worker's queue)."""
    items.sort(key=lambda item: 0 if item.get_closest_marker("fault") else 1 if item.get_closest_marker("slow") else 2)


@pytest.fixture(scope="session")
def params():
    return load_params(REPO / "params.yaml")


@pytest.fixture
def make_cfg(params):
    """resolve() with overrides of the base sections and of the dataset's settings (`ds`: keys of its
    `datasets` or its `method` entry, as the resolved cfg.ds holds them together)."""

    def make(dataset="mnist", profile="quick", ds=None, variant="base", **sections):
        p = {**params, **{t: {k: dict(v) for k, v in params[t].items()} for t in ("datasets", "method")}}
        for key, value in (ds or {}).items():
            p["datasets" if key in p["datasets"][dataset] else "method"][dataset][key] = value
        for name, values in sections.items():
            p[name] = {**p[name], **values}
        return resolve(p, dataset=dataset, profile=profile, variant=variant)

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
    return copy_worktree(tmp_path / "repo")


def copy_worktree(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                           cwd=REPO, check=True, capture_output=True, text=True).stdout.split("\0")
    for f in filter(None, files):
        src = REPO / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    return dest


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The MNIST smoke run (its ten stages), made once per session through Snakemake, uninterrupted,
    one thread per job: (the project, a copy of its outputs made at once, seconds per stage).
    Tests may go on in the project (more rules); the copy is the fault suite's reference."""
    from tests import faults

    return faults.uninterrupted(tmp_path_factory.mktemp("smoke_run"))


def pytest_addoption(parser):
    group = parser.getgroup("npdraw fault suite (tests/test_faults.py, marker `fault`)")
    group.addoption("--fault-kills", type=int, default=3, help="SIGKILLs per stage and runner (default 3)")
    group.addoption("--fault-seed", type=int, default=0, help="seed of the random kill moments (default 0)")


def venv_bin(name: str) -> str:
    """A console script of the running interpreter's environment (snakemake, dvc)."""
    return str(Path(sys.executable).parent / name)


def stage_env() -> dict:
    """Environment for runners and stage CLIs in a repo copy: the data mirror, this venv first on PATH."""
    env = dict(os.environ, NPDRAW_DATA=str(MIRROR), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    env.pop("NPDRAW_CACHE", None)
    return env


def pytest_terminal_summary(terminalreporter):
    """The bad-input matrix and the kill-and-rerun points of this run, counted and listed."""
    _bad_input_summary(terminalreporter)
    _fault_summary(terminalreporter)


# The bad-input matrix's files, by the kind of input they damage.
BAD_INPUT_KINDS = {"test_bad_inputs.py": "data files and params", "test_bad_artifacts.py": "artifacts",
                   "test_bad_choices.py": "run choices and params at the front doors"}


def _bad_input_summary(terminalreporter) -> None:
    """Count and list the bad-input cases (tests/test_bad_*.py), per kind."""
    reports = [r for outcome in ("passed", "failed") for r in terminalreporter.stats.get(outcome, [])
               if r.when == "call" and any(f in r.nodeid for f in BAD_INPUT_KINDS)]
    if not reports:
        return
    refused = sum(r.passed for r in reports)
    kinds = {kind: [r for r in reports if f in r.nodeid] for f, kind in BAD_INPUT_KINDS.items()}
    per_kind = ", ".join(f"{kind} {len(rs)}" for kind, rs in kinds.items() if rs)
    terminalreporter.write_sep("-", f"bad-input matrix: {len(reports)} cases, {refused} refused cleanly "
                                    f"(one error paragraph, exit 2, no finished-looking output): {per_kind}")
    for r in sorted(reports, key=lambda r: r.nodeid):
        name = r.nodeid.split("::", 1)[1].removeprefix("test_")
        terminalreporter.write_line(f"  {'ok    ' if r.passed else 'FAILED'} {name}")


def _fault_summary(terminalreporter) -> None:
    """The kill points of tests/test_faults.py: how many, where, and what each one cost."""
    reports = terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", [])
    props = [dict(r.user_properties) for r in reports
             if r.when == "call" and "fault_kills" in dict(r.user_properties)]
    if not props:
        return
    record = props[0]["fault_kills"]
    lifetimes = ", ".join(f"{stage} {s:.1f}" for stage, s in props[0]["fault_lifetimes"].items())
    done = [k for k in record if k["at_s"] is not None]
    per_runner = {r: sum(k["runner"] == r for k in done) for r in sorted({k["runner"] for k in done})}
    failed = [r for r in terminalreporter.stats.get("failed", []) if "test_faults.py" in r.nodeid]
    terminalreporter.write_sep("-", f"kill-and-rerun: {len(done)} SIGKILLs over {len({k['stage'] for k in done})} "
                                    f"stages ({', '.join(f'{r} {n}' for r, n in per_runner.items())}), "
                                    f"{sum(k['whole'] for k in done)} of them with the runner; "
                                    f"{'FAILED' if failed else 'every rerun finished with the uninterrupted outputs'}")
    terminalreporter.write_line(
        f"  lost: {sum(k['at_s'] for k in done):.1f} s of stage run time in killed attempts; training resumed "
        f"from a saved epoch {sum(bool(k['resume_epoch']) for k in done)} times; "
        f"{sum(k['temporaries'] for k in done)} temporaries of unfinished outputs cleared by npdraw.workflow.recovery; "
        f"{len(record) - len(done)} planned moments came after the stage had finished (tried again)")
    terminalreporter.write_line(f"  uninterrupted run, seconds per stage: {lifetimes}")
    for k in done:
        what = "runner + stage" if k["whole"] else "stage only"
        extra = f"; resume file at epoch {k['resume_epoch'] or 0}: {k['resumed']}" if k["resumed"] else ""
        terminalreporter.write_line(f"  {k['runner']:9} {k['stage']:16} kill {k['attempt']} at {k['at_s']:5.1f} s "
                                    f"({what}){extra}")
