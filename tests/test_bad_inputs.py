"""The bad-input matrix: every case runs a stage's CLI as a user would and must end with one
`error:` paragraph naming the problem and what was expected, a non-zero exit, and no output that
looks finished.  The run's summary counts and lists the cases (conftest.pytest_terminal_summary).
"""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

import tests.formats_fixtures as fx
from npdraw.artifacts.io import file_digest
from tests.conftest import REPO
from tests.stage_runs import RUN, base_run, prepared, refused, register, run_stage, splits, world  # noqa: F401 (fixture)

# Every test here runs a stage's command line (in-process): the slow tier, not make test-fast.
pytestmark = pytest.mark.slow

# --- data files ------------------------------------------------------------------------------------

def test_missing_data_file(world):
    (world.mirror / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    out = world.root / "prepared"
    refused(*run_stage("prepare_data", "--dataset", "mnist", "--out", out, "--offline"),
            "t10k-labels-idx1-ubyte.gz", str(world.mirror / "mnist"), absent=[out])


def test_truncated_data_file(world, monkeypatch):
    path = world.mirror / "mnist" / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-500]))   # valid gzip, short payload
    register(monkeypatch, world.mirror, skip_checksums=True)   # a mirror file with no registered checksum
    out = world.root / "prepared"
    refused(*run_stage("prepare_data", "--dataset", "mnist", "--out", out, "--offline"),
            "train-images-idx3-ubyte.gz", "header promises", absent=[out])


def test_corrupt_data_file(world, monkeypatch):
    path = world.mirror / "mnist" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20] + b"\xff" * 40)
    register(monkeypatch, world.mirror, skip_checksums=True)
    out = world.root / "prepared"
    refused(*run_stage("prepare_data", "--dataset", "mnist", "--out", out, "--offline"),
            "train-labels-idx1-ubyte.gz", "not a readable gzip file", absent=[out])


def test_wrong_checksum(world):
    path = world.mirror / "mnist" / "t10k-images-idx3-ubyte.gz"
    fx.write_idx(path, np.zeros((10, 28, 28), np.uint8))   # a well-formed file, not the registered one
    out = world.root / "prepared"
    refused(*run_stage("prepare_data", "--dataset", "mnist", "--out", out, "--offline"),
            "t10k-images-idx3-ubyte.gz", "checksum mismatch", file_digest(path, "md5"), absent=[out])


# --- images ---------------------------------------------------------------------------------------

def test_images_of_the_wrong_size(world):
    data = prepared(world)
    world.params["datasets"]["mnist"].update(image_size=56)   # 56 x 56 expected, 28 x 28 prepared
    world.params["tables"]["runs"] = ["mnist/base"]   # (the baselines of Table 1 and the low-data grid
    world.params["lowdata"]["variants"] = ["base"]    # need 28 x 28)
    world.write_params()
    out = world.root / "splits.npz"
    refused(*run_stage("make_splits", *RUN, "--data", data, "--out", out, "--summary", world.root / "s.json"),
            str(data), "(1, 28, 28)", "expected uint8 (C, H, W) = (1, 56, 56)", absent=[out])


def test_images_of_the_wrong_value_type(world):
    data = prepared(world)
    sp = splits(world, data)
    images = np.load(data / "train_images.npy")
    np.save(data / "train_images.npy", images.astype(np.float32) / 255)   # floats in [0, 1], not uint8 levels
    out = world.root / "bank.npy"
    refused(*run_stage("build_bank", *RUN, "--variant", "base", "--data", data, "--splits", sp,
                       "--out", out, "--picture", world.root / "bank.png", "--metrics", world.root / "bank.json"),
            "train images are float32", "expected uint8", absent=[out, world.root / "bank.png"])


def test_missing_input_of_an_earlier_stage(world):
    data = prepared(world)
    out = world.root / "bank.npy"
    refused(*run_stage("build_bank", *RUN, "--variant", "base", "--data", data, "--splits", world.root / "none.npz",
                       "--out", out, "--picture", world.root / "bank.png", "--metrics", world.root / "bank.json"),
            str(world.root / "none.npz"), "file not found", absent=[out])


def test_unreadable_prepared_array(world):
    data = prepared(world)
    (data / "test_images.npy").write_bytes(b"\x93NUMPY garbage")
    out = world.root / "splits.npz"
    refused(*run_stage("make_splits", *RUN, "--data", data, "--out", out, "--summary", world.root / "s.json"),
            str(data), "unreadable", "rerun the prepare_data stage", absent=[out])


# --- params ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("edit, expected", [
    (lambda p: p["prior"].update(epochs="ten"), "'prior.epochs' = 'ten'"),              # wrong type
    (lambda p: p["method"]["mnist"].update(lambda_reg=-1.0), "method.mnist.lambda_reg"),  # negative lambda
    (lambda p: p["model"].update(epochs=0), "'model.epochs' = 0"),                      # zero steps
    (lambda p: p["method"]["mnist"].update(patch_size=40), "expected at most canvas_size = 28"),  # K > image
    (lambda p: p["method"]["mnist"].update(bank_size=500), "expected at most bank.n_patches = 200"),  # M > patches
], ids=["wrong-type", "negative-lambda", "zero-epochs", "patch-larger-than-image",
        "bank-larger-than-patches"])
def test_bad_params(world, edit, expected):
    data = prepared(world)
    edit(world.params)
    world.write_params()
    out = world.root / "splits.npz"
    code, err = run_stage("make_splits", *RUN, "--data", data, "--out", out, "--summary", world.root / "s.json")
    refused(code, err, expected, absent=[out])
    assert "params.yaml" in err or "method.mnist" in err


def test_unknown_key_is_named(world):
    world.params["model"]["widht"] = 64
    world.write_params()
    code, err = run_stage("make_splits", *RUN, "--data", "prepared", "--out", "s.npz", "--summary", "s.json")
    refused(code, err, "widht", "params.yaml", absent=["s.npz"])


def test_impossible_split(world):
    data = prepared(world)
    out = world.root / "splits.npz"
    refused(*run_stage("make_splits", "--dataset", "mnist", "--profile", "smoke", "--split", "alphabet-0.5",
                       "--seed", "0", "--data", data, "--out", out, "--summary", world.root / "s.json"),
            "split 'alphabet-0.5'", "needs alphabet labels", absent=[out])


# --- checkpoints and devices ------------------------------------------------------------------------

def test_prior_checkpoint_from_another_configuration(world):
    data, sp = base_run(world)
    r = world.root
    assert run_stage("build_bank", *RUN, "--variant", "M3", "--data", data, "--splits", sp, "--out", r / "m3.npy",
                     "--picture", r / "m3.png", "--metrics", r / "m3.json")[0] == 0
    assert run_stage("parse", *RUN, "--variant", "M3", "--data", data, "--splits", sp, "--bank", r / "m3.npy",
                     "--out", r / "m3.npz", "--picture", r / "m3p.png", "--metrics", r / "m3p.json")[0] == 0
    out = r / "model/best.pt"
    refused(*run_stage("train_model", *RUN, "--variant", "M3", "--device", "cpu", "--data", data, "--splits", sp,
                       "--parses", r / "m3.npz", "--prior", r / "prior/best.pt", "--out", out,
                       "--reconstructions", r / "model/rec.png", "--metrics", r / "model.json",
                       "--live", r / "model/live", "--milestones", r / "model/milestones.pt",
                       "--classifier", REPO / "features/mnist.json"),
            str(r / "prior/best.pt"), "a prior checkpoint of another configuration", "parts = 4 (expected 3)",
            absent=[out, r / "model.json"])


def test_corrupt_checkpoint(world):
    data, sp = base_run(world)
    r = world.root
    (r / "prior/best.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    out = r / "model/best.pt"
    code, err = run_stage("train_model", *RUN, "--variant", "base", "--device", "cpu", "--data", data, "--splits", sp,
                          "--parses", r / "parses.npz", "--prior", r / "prior/best.pt", "--out", out,
                          "--reconstructions", r / "model/rec.png", "--metrics", r / "model.json",
                          "--live", r / "model/live", "--milestones", r / "model/milestones.pt",
                          "--classifier", REPO / "features/mnist.json")
    refused(code, err, str(r / "prior/best.pt"), "damaged", "does not load", absent=[out, r / "model.json"])


def test_requested_gpu_that_is_not_there(world):
    data, sp = base_run(world)
    r = world.root
    assert not torch.cuda.is_available()
    out = r / "prior2/best.pt"
    refused(*run_stage("train_prior", *RUN, "--variant", "base", "--device", "cuda", "--parses", r / "parses.npz",
                       "--bank", r / "bank.npy", "--out", out, "--samples", r / "prior2/s.png",
                       "--metrics", r / "prior2.json", "--live", r / "prior2/live"),
            "--device cuda: no CUDA device is visible", absent=[out, r / "prior2.json"])


def test_more_gpus_requested_than_visible(world):
    data, sp = base_run(world)
    r = world.root
    world.params["compute"]["gpus"] = 4
    world.write_params()
    out = r / "prior2/best.pt"
    refused(*run_stage("train_prior", *RUN, "--variant", "base", "--parses", r / "parses.npz",
                       "--bank", r / "bank.npy", "--out", out, "--samples", r / "prior2/s.png",
                       "--metrics", r / "prior2.json", "--live", r / "prior2/live"),
            "compute.gpus", "4", absent=[out, r / "prior2.json"])
