"""The demo (`make demo`, npdraw.reporting.demo): pictures from a trained checkpoint without training,
the checkpoint checked as any stage checks its inputs."""

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import needs_mirror, stage_env

PICTURES = ("samples.png", "canvases_and_samples.png", "latent_edit.png")


def demo(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "npdraw.reporting.demo", *args], cwd=cwd, env=stage_env(),
                          capture_output=True, text=True)


def pictures(out: Path) -> dict[str, tuple[int, int]]:
    return {name: Image.open(out / name).size for name in PICTURES}


@pytest.mark.slow
@needs_mirror("mnist")
def test_demo_draws_from_a_runs_checkpoint_and_refuses_another_runs(smoke_run, tmp_path):
    project = smoke_run[0]
    model = "results/mnist/smoke/full/seed0/base/model/best.pt"
    before = sorted((p, p.stat().st_mtime_ns) for p in (project / "results").rglob("*"))
    done = demo(project, "--model", model, "--profile", "smoke", "--out", str(tmp_path / "ok"), "--pairs", "3",
                "--samples", "20")
    assert done.returncode == 0, done.stderr
    sizes = pictures(tmp_path / "ok")
    # 20 samples, 10 a row, of 28-pixel images at scale 2; 3 pairs x 7 columns at scale 3; a 16-pixel title.
    assert sizes["samples.png"][1] == 16 + 2 * (2 + 2 * 30) and sizes["latent_edit.png"][1] == 16 + 3 * (2 + 3 * 30)
    assert sorted((p, p.stat().st_mtime_ns) for p in (project / "results").rglob("*")) == before

    refused = demo(project, "--model", model, "--profile", "quick", "--out", str(tmp_path / "no"))
    assert refused.returncode == 2 and "another configuration" in refused.stderr and "width = 32" in refused.stderr
    assert not (tmp_path / "no").exists()
    missing = demo(project, "--model", "nowhere.pt", "--out", str(tmp_path / "no"))
    assert missing.returncode == 2 and "--model nowhere.pt: no such file" in missing.stderr


@pytest.mark.slow
@needs_mirror("mnist")
def test_the_committed_reference_model_draws_on_a_fresh_clone(repo_copy, tmp_path):
    """The committed reference checkpoint passes today's contract and architecture for profile
    `reference`, and the demo's defaults work where no stage has run (the test images are read from
    the mirror into a temporary folder, and nothing is left in the project)."""
    assert not (repo_copy / "data").exists()
    done = demo(repo_copy, "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert set(pictures(tmp_path / "out")) == set(PICTURES)
    assert not (repo_copy / "data").exists() and not (repo_copy / "results/demo").exists()
