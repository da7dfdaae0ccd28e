"""Two Snakemake runs at once in one checkout (npdraw.workflow.runlock): the same configuration twice is refused
with one message naming the lock; a different configuration waits for the running one, then both
complete.  The test process plays the run that is already going by holding its locks."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest
import yaml

from npdraw.workflow import runlock
from tests.conftest import needs_mirror, stage_env, venv_bin


def config_of(repo, **choice) -> dict:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    return {**{k: params[k] for k in ("dataset", "profile", "split", "seed", "variant")}, **choice}


def snakemake(repo, *config: str) -> subprocess.Popen:
    return subprocess.Popen([venv_bin("snakemake"), "--cores", "1", "--until", "make_splits", "--config", *config],
                            cwd=repo, env=stage_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_command_lines_that_execute_no_job_take_no_lock():
    assert runlock.executes(["snakemake", "--cores", "all", "--rerun-incomplete"])
    for argv in (["snakemake", "-n"], ["snakemake", "-np", "--cores", "1"], ["snakemake", "--lint"],
                 ["snakemake", "--report", "r.html"], ["snakemake", "--unlock"], ["snakemake", "--dry-run=True"]):
        assert not runlock.executes(argv), argv


@pytest.mark.slow
@needs_mirror("mnist")
def test_same_configuration_twice_is_refused_and_another_waits(repo_copy):
    first = config_of(repo_copy, profile="smoke", seed=0)
    held = runlock.acquire(first, root=repo_copy)   # "snakemake --config profile=smoke seed=0" is running
    try:
        same = snakemake(repo_copy, "profile=smoke", "seed=0")
        out, err = same.communicate(timeout=120)
        assert same.returncode == 2, err[-3000:]
        message = err[err.index("error: "):]
        lock = repo_copy / ".npdraw/locks/run-mnist-smoke-full-seed0-base.lock"
        assert str(lock) in message and "already running" in message and f"PID {os.getpid()}" in message
        assert "nothing needs clearing after a crash" in message and "Traceback" not in err
        assert not (repo_copy / "data/prepared").exists()

        other = snakemake(repo_copy, "profile=smoke", "seed=1")
        time.sleep(10)   # Snakefile parsed (about 2 s), then it waits for the running configuration
        assert other.poll() is None, "the second configuration did not wait"
        assert not (repo_copy / "results/mnist/smoke/full/seed1/splits.npz").exists()
    finally:
        for f in held:
            f.close()   # the first run ends
    out, err = other.communicate(timeout=300)
    assert other.returncode == 0, err[-3000:]
    assert "npdraw: waiting for the Snakemake run in this checkout to finish" in err
    # and the first configuration, run now for real, completes too
    again = snakemake(repo_copy, "profile=smoke", "seed=0")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-3000:]
    for seed in (0, 1):
        assert (repo_copy / f"results/mnist/smoke/full/seed{seed}/splits.npz").is_file()
    dry = subprocess.run([venv_bin("snakemake"), "-n", "--until", "make_splits", "--config", "profile=smoke",
                          "seed=1"], cwd=repo_copy, env=stage_env(), capture_output=True, text=True)
    assert re.search(r"^total\s+0$", dry.stdout, re.M), dry.stdout   # nothing left to run
