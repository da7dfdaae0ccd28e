"""Stage CLIs run in this process on a tiny fixture MNIST, for the bad-input and reproducibility tests.

The stages run through runpy, so that the data registry's checksums can be pointed at fixture
files; the workflow tests run the same CLIs as subprocesses.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
import yaml

import tests.formats_fixtures as fx
from npdraw.data.sources import SOURCES, DataFile, file_digest
from tests.conftest import REPO

MNIST_FILES = [f.name for f in SOURCES["mnist_idx"]["idx"]]


def run_stage(name: str, *args) -> tuple[int, str]:
    """(exit code, stderr) of `python stages/<name>.py args...`, run in this process."""
    from contextlib import redirect_stderr
    from io import StringIO

    err, argv = StringIO(), sys.argv
    sys.argv = [f"stages/{name}.py", *map(str, args)]
    try:
        with redirect_stderr(err):
            runpy.run_path(str(REPO / "stages" / f"{name}.py"), run_name="__main__")
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    finally:
        sys.argv = argv
    return code, err.getvalue()


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A scratch project: a fixture MNIST mirror whose checksums are registered, tiny params."""
    mirror = tmp_path / "mirror"
    fx.write_mnist(mirror / "mnist", n_train=40, n_test=10)
    register(monkeypatch, mirror)
    monkeypatch.setenv("NPDRAW_DATA", str(mirror))
    monkeypatch.setenv("NPDRAW_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["datasets"]["mnist"].update(n_valid=8, bank_size=4)
    params["bank"].update(n_patches=200)
    params["prior"].update(width=8, layers=1, heads=2, conv_channels=4, head_hidden=8, batch_size=8, epochs=1,
                           samples=4)
    params["profiles"]["smoke"] = {}
    monkeypatch.chdir(tmp_path)
    world = type("World", (), {})()
    world.root, world.mirror, world.params = tmp_path, mirror, params
    world.write_params = lambda: (tmp_path / "params.yaml").write_text(yaml.safe_dump(world.params))
    world.write_params()
    return world


def register(monkeypatch, mirror: Path, skip_checksums: bool = False) -> None:
    monkeypatch.setitem(SOURCES, "mnist_idx", {"idx": [
        DataFile("mnist", n, md5=None if skip_checksums else file_digest(mirror / "mnist" / n, "md5"))
        for n in MNIST_FILES]})


RUN = ["--dataset", "mnist", "--profile", "smoke", "--split", "full", "--seed", "0"]


def prepared(world) -> Path:
    out = world.root / "prepared"
    assert run_stage("prepare_data", "--dataset", "mnist", "--out", out)[0] == 0
    return out


def splits(world, data: Path) -> Path:
    out = world.root / "splits.npz"
    code, err = run_stage("make_splits", *RUN, "--data", data, "--out", out, "--summary", world.root / "s.json")
    assert code == 0, err
    return out


def base_run(world):
    """bank, parses and a one-epoch prior of the base variant (M = 4)."""
    data = prepared(world)
    sp = splits(world, data)
    r = world.root
    assert run_stage("build_bank", *RUN, "--variant", "base", "--data", data, "--splits", sp, "--out",
                     r / "bank.npy", "--picture", r / "bank.png", "--metrics", r / "bank.json")[0] == 0
    assert run_stage("parse", *RUN, "--variant", "base", "--data", data, "--splits", sp, "--bank", r / "bank.npy",
                     "--out", r / "parses.npz", "--picture", r / "parse.png", "--metrics", r / "parse.json")[0] == 0
    code, err = run_stage("train_prior", *RUN, "--variant", "base", "--device", "cpu", "--parses", r / "parses.npz",
                          "--bank", r / "bank.npy", "--out", r / "prior/best.pt", "--samples", r / "prior/s.png",
                          "--metrics", r / "prior.json", "--live", r / "prior/live")
    assert code == 0, err
    return data, sp
