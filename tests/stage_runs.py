"""Stage CLIs run in this process on a tiny fixture MNIST, for the bad-input and reproducibility tests.

The stages run through runpy, so that the data registry's checksums can be pointed at fixture
files; the workflow tests run the same CLIs as subprocesses.
"""

from __future__ import annotations

import runpy
import shutil
import sys
from pathlib import Path

import pytest
import yaml

import tests.formats_fixtures as fx
from npdraw.artifacts.io import file_digest
from npdraw.data.sources import SOURCES, DataFile
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


def refused(code: int, err: str, *expected: str, absent=()) -> None:
    """One error paragraph with the expected words, exit 2, and none of `absent` written."""
    assert code == 2, err[-2000:]
    message = err[err.index("error: "):]
    assert "Traceback" not in err, err[-2000:]
    for words in expected:
        assert words in message, f"{words!r} not in: {message}"
    for path in absent:
        assert not Path(path).exists(), f"{path} was written"
        leftovers = [p.name for p in Path(path).parent.glob(f".{Path(path).name}.*")]
        assert not leftovers, f"temporary files left: {leftovers}"


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A scratch project: a fixture MNIST mirror whose checksums are registered, tiny params."""
    return make_world(tmp_path, monkeypatch)


def make_world(root: Path, monkeypatch):
    """The `world` fixture's scratch project in `root`, with `monkeypatch` (any scope) for the environment."""
    mirror = root / "mirror"
    fx.write_mnist(mirror / "mnist", n_train=40, n_test=10)
    register(monkeypatch, mirror)
    monkeypatch.setenv("NPDRAW_DATA", str(mirror))
    monkeypatch.setenv("NPDRAW_CACHE", str(root / "cache"))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["datasets"]["mnist"].update(n_valid=8)
    params["method"]["mnist"].update(bank_size=4)
    params["bank"].update(n_patches=200)
    params["prior"].update(width=8, layers=1, heads=2, conv_channels=4, head_hidden=8, batch_size=8, epochs=1,
                           samples=4)
    params["model"].update(width=8, batch_size=8, epochs=1)
    params["training"].update(reconstructions=4)
    params["evaluate"].update(nll_samples=2, samples=8, fid_images=10, kid_subset_size=4)
    params["profiles"]["smoke"] = {}
    monkeypatch.chdir(root)
    world = type("World", (), {})()
    world.root, world.mirror, world.params = root, mirror, params
    world.write_params = lambda: (root / "params.yaml").write_text(yaml.safe_dump(world.params))
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


# Where full_run leaves each artifact, relative to the world's root.
FULL_RUN = {
    "data": "prepared", "splits": "splits.npz", "bank": "bank.npy", "parses": "parses.npz",
    "prior": "prior/best.pt", "model": "model/best.pt", "milestones": "model/milestones.pt",
    "classifier": "features/mnist.json",
    "reference": "reference/stats.pt",
}


def committed_features(root: Path, dataset: str = "mnist") -> Path:
    """The repository's committed feature network of `dataset` (record and weights) copied into `root`."""
    (root / "features").mkdir(exist_ok=True)
    for suffix in (".json", ".pt"):
        shutil.copy(REPO / f"features/{dataset}{suffix}", root / f"features/{dataset}{suffix}")
    return root / f"features/{dataset}.json"


def full_run(world) -> dict[str, Path]:
    """base_run, then a one-epoch model and the reference statistics, on the committed MNIST network."""
    data, sp = base_run(world)
    r = world.root
    committed_features(r)
    for stage, args in (
        ("reference_stats", ["--data", data, "--classifier", r / "features/mnist.json",
                             "--out", r / "reference/stats.pt"]),
        ("train_model", ["--variant", "base", "--device", "cpu", "--data", data, "--splits", sp, "--parses",
                         r / "parses.npz", "--prior", r / "prior/best.pt", "--out", r / "model/best.pt",
                         "--milestones", r / "model/milestones.pt",
                         "--reconstructions", r / "model/rec.png", "--metrics", r / "model.json",
                         "--live", r / "model/live", "--classifier", r / "features/mnist.json"]),
    ):
        run_args = [*RUN, *args] if stage == "train_model" else ["--dataset", "mnist", "--profile", "smoke", *args]
        code, err = run_stage(stage, *run_args)
        assert code == 0, err
    return {k: r / v for k, v in FULL_RUN.items()}


def evaluate_args(world, **replace) -> list:
    """The evaluate stage's arguments on full_run's artifacts, with `replace` (name -> path) swapped in."""
    r = world.root
    paths = {k: r / v for k, v in FULL_RUN.items()} | replace
    return [*RUN, "--variant", "base", "--device", "cpu", "--data", paths["data"], "--splits", paths["splits"],
            "--model", paths["model"], "--milestones", paths["milestones"], "--classifier", paths["classifier"],
            "--reference", paths["reference"],
            "--metrics", r / "eval/eval.json", "--samples", r / "eval/samples.npz", "--grid", r / "eval/grid.png",
            "--figure", r / "eval/figure.png"]
