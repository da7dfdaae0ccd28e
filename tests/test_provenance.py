"""Every metrics file says what produced it: git commit, parameters read, library versions."""

import json
import subprocess

import torch

from npdraw.workflow import stages as stage_table
from npdraw.workflow.provenance import code_version, library_versions, write_metrics


def git(cwd, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_code_version_is_the_checkouts_commit_and_dirty_state(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "a.py").write_text("x = 1\n")
    git(repo, "add", "a.py")
    git(repo, "commit", "-qm", "a")
    head = git(repo, "rev-parse", "HEAD")
    code_version.cache_clear()
    assert code_version(str(repo)) == {"git_commit": head, "git_dirty": False}
    (repo / "results.json").write_text("{}")   # untracked outputs do not make the code dirty
    code_version.cache_clear()
    assert code_version(str(repo)) == {"git_commit": head, "git_dirty": False}
    (repo / "a.py").write_text("x = 2\n")
    code_version.cache_clear()
    dirty = code_version(str(repo))
    assert dirty["git_dirty"] is True and "-x = 1\n+x = 2" in dirty["diff"]   # what differs, not only that it does
    outside = tmp_path / "copy"
    outside.mkdir()
    code_version.cache_clear()
    version = code_version(str(outside))
    assert version["git_commit"] is None and "is not a git checkout" in version["note"]


def test_a_dvc_experiment_records_the_params_it_overrode(tmp_path):
    """`dvc exp run -S` edits params.yaml in the experiment's copy: the record names each key set and its value
    (and the rest of the diff stays empty)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "params.yaml").write_text("variant: base\nseed: 0\nmodel:\n  lr: 0.001\n  width: 128\n")
    git(repo, "add", "params.yaml")
    git(repo, "commit", "-qm", "a")
    (repo / "params.yaml").write_text("variant: lam0\nseed: 2\nmodel:\n  lr: 0.001\n  width: 128\n")
    code_version.cache_clear()
    record = code_version(str(repo))
    assert record["git_dirty"] is True and record["params_overrides"] == {"seed": 2, "variant": "lam0"}
    assert "diff" not in record
    code_version.cache_clear()


def test_metrics_carry_run_params_and_libraries_and_rewrite_identically(tmp_path, make_cfg, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code_version.cache_clear()
    cfg = make_cfg(dataset="mnist", profile="smoke")
    cfg["stage"] = "parse"   # as npdraw.workflow.cli.run_config sets it: provenance holds the stage's declared params
    write_metrics(tmp_path / "m.json", {"psnr_db": 20.5}, cfg)
    first = (tmp_path / "m.json").read_bytes()
    m = json.loads(first)
    assert m["psnr_db"] == 20.5
    p = m["provenance"]
    assert p["run"] == {"dataset": "mnist", "profile": "smoke", "split": "full", "seed": 0, "variant": "base"}
    assert p["numerics"] == {"precision": cfg.compute.precision, "channels_last": cfg.compute.channels_last,
                             "compile": cfg.compute.compile}
    assert p["params"]["parse"] == {"epsilon": cfg.parse.epsilon} and p["params"]["method.patch_size"] == 5
    assert p["params"]["datasets"]["source"] == "mnist_idx" and "lambda_reg" not in p["params"]["datasets"]
    assert set(p["params"]) == set(stage_table.stage("parse").params)   # what the stage table declares, no more
    assert p["libraries"]["torch"] == torch.__version__ and p["libraries"]["python"].startswith("3.")
    assert p["code"]["git_commit"] is None   # tmp_path is not a checkout
    write_metrics(tmp_path / "m.json", {"psnr_db": 20.5}, cfg)
    assert (tmp_path / "m.json").read_bytes() == first   # nothing time-dependent
    assert library_versions()["kmedoids"] != "not installed"
