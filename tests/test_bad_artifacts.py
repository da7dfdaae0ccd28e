"""The bad-input matrix, artifacts: what one stage hands another, damaged or mixed up the way a user
running stages by hand, resuming an old run or copying files between runs would, must be refused by
the reading stage's contract (npdraw.artifacts.contracts) with one `error:` paragraph naming the file, the
field, what was found and what was expected, exit 2, and nothing written.

Every case starts from one tiny complete run (made once per module and copied), changes one
artifact, and runs the stage that reads it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.stage_runs import FULL_RUN, RUN, evaluate_args, full_run, make_world, refused, run_stage, world  # noqa: F401 (fixture)

# Every test here runs a stage's command line (in-process): the slow tier, not make test-fast.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A complete tiny run (prepared data, splits, bank, parses, prior, model, classifier, reference)."""
    with pytest.MonkeyPatch.context() as mp:
        world = make_world(tmp_path_factory.mktemp("template"), mp)
        full_run(world)
    return world.root


@pytest.fixture
def run(world, template):
    """The template run's artifacts copied into this test's world: {name: path}."""
    for name in ("prepared", "splits.npz", "bank.npy", "parses.npz", "prior", "model", "reference", "features"):
        src = template / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, world.root / name)
    return {k: world.root / v for k, v in FULL_RUN.items()}


def edit_npz(path: Path, drop=(), **arrays) -> None:
    with np.load(path) as z:
        content = {k: z[k] for k in z.files if k not in drop}
    content.update(arrays)
    np.savez(path, **content)


def edit_checkpoint(path: Path, change) -> None:
    ckpt = torch.load(path, weights_only=False)
    change(ckpt)
    torch.save(ckpt, path)


def parse_stage(world, run, **swap):
    r, paths = world.root, {**run, **swap}
    return run_stage("parse", *RUN, "--variant", "base", "--data", paths["data"], "--splits", paths["splits"],
                     "--bank", paths["bank"], "--out", r / "p2.npz", "--picture", r / "p2.png",
                     "--metrics", r / "p2.json")


def prior_stage(world, run, **swap):
    r, paths = world.root, {**run, **swap}
    return run_stage("train_prior", *RUN, "--variant", "base", "--device", "cpu", "--parses", paths["parses"],
                     "--bank", paths["bank"], "--out", r / "prior2/best.pt", "--samples", r / "prior2/s.png",
                     "--metrics", r / "prior2.json", "--live", r / "prior2/live")


def model_stage(world, run, **swap):
    r, paths = world.root, {**run, **swap}
    return run_stage("train_model", *RUN, "--variant", "base", "--device", "cpu", "--data", paths["data"],
                     "--splits", paths["splits"], "--parses", paths["parses"], "--prior", paths["prior"],
                     "--out", r / "model2/best.pt", "--reconstructions", r / "model2/rec.png",
                     "--metrics", r / "model2.json", "--live", r / "model2/live",
                     "--milestones", r / "model2/milestones.pt", "--classifier", paths["classifier"])


PARSE_OUT = ("p2.npz", "p2.json", "p2.png")
PRIOR_OUT = ("prior2/best.pt", "prior2.json")
MODEL_OUT = ("model2/best.pt", "model2.json")
EVAL_OUT = ("eval/eval.json", "eval/samples.npz")


def absent(world, names):
    return [world.root / n for n in names]


# --- splits ---------------------------------------------------------------------------------------

def test_splits_missing_key(world, run):
    edit_npz(run["splits"], drop=("valid",))
    refused(*parse_stage(world, run), str(run["splits"]), "no field 'valid'", "make_splits",
            absent=absent(world, PARSE_OUT))


def test_splits_index_out_of_range(world, run):
    edit_npz(run["splits"], test=np.array([0, 3, 10]))   # the fixture has 10 test images: 0..9
    refused(*parse_stage(world, run), str(run["splits"]), "field 'test'", "10 found", "< N_test = 10",
            absent=absent(world, PARSE_OUT))


def test_splits_wrong_dtype(world, run):
    with np.load(run["splits"]) as z:
        train = z["train"]
    edit_npz(run["splits"], train=train.astype(np.float64))
    refused(*parse_stage(world, run), str(run["splits"]), "field 'train' is float64, expected index",
            absent=absent(world, PARSE_OUT))


def test_splits_overlapping_train_and_valid(world, run):
    with np.load(run["splits"]) as z:
        valid = z["valid"]
    edit_npz(run["splits"], train=valid.copy())
    refused(*parse_stage(world, run), str(run["splits"]), "in both the train and the valid set",
            absent=absent(world, PARSE_OUT))


# --- part bank --------------------------------------------------------------------------------------

def test_bank_of_another_configuration(world, run):
    np.save(run["bank"], np.load(run["bank"])[:3])   # M = 3 parts, the run has M = 4
    refused(*parse_stage(world, run), str(run["bank"]), "part bank field 'bank'", "expected M = 4",
            "build_bank", absent=absent(world, PARSE_OUT))


def test_psnr_from_a_bank_with_non_finite_values(world, run):
    bank = np.load(run["bank"])
    bank[1, 0, 2, 2] = np.nan
    np.save(run["bank"], bank)
    refused(*parse_stage(world, run), str(run["bank"]), "non-finite", "expected finite numbers",
            absent=absent(world, PARSE_OUT))


def test_bank_values_out_of_range(world, run):
    np.save(run["bank"], np.load(run["bank"]) * 255)   # pixel levels instead of [0, 1]
    refused(*parse_stage(world, run), str(run["bank"]), "expected every value <= 1",
            absent=absent(world, PARSE_OUT))


def test_bank_unreadable(world, run):
    run["bank"].write_bytes(b"\x93NUMPY not really")
    refused(*prior_stage(world, run), str(run["bank"]), "not a readable part bank", "build_bank",
            absent=absent(world, PRIOR_OUT))


# --- parses ---------------------------------------------------------------------------------------

def test_parses_missing_key(world, run):
    edit_npz(run["parses"], drop=("test_z_is",))
    refused(*prior_stage(world, run), str(run["parses"]), "no field 'test_z_is'", "parse stage",
            absent=absent(world, PRIOR_OUT))


def test_parses_part_id_out_of_range(world, run):
    with np.load(run["parses"]) as z:
        z_id = z["train_z_id"].copy()
    z_id[0, 5] = 4   # M = 4: ids 0..3
    edit_npz(run["parses"], train_z_id=z_id)
    refused(*prior_stage(world, run), str(run["parses"]), "field 'train_z_id'", "< M = 4",
            absent=absent(world, PRIOR_OUT))


def test_parses_location_out_of_range(world, run):
    with np.load(run["parses"]) as z:
        z_loc = z["valid_z_loc"].copy()
    z_loc[1, 0] = -1
    edit_npz(run["parses"], valid_z_loc=z_loc)
    refused(*model_stage(world, run), str(run["parses"]), "field 'valid_z_loc'", ">= 0",
            absent=absent(world, MODEL_OUT))


def test_parses_of_another_grid(world, run):
    with np.load(run["parses"]) as z:
        cut = {k: z[k][:, :25] for k in z.files}   # T = 25 steps (K = 6), the run has T = 36
    edit_npz(run["parses"], **cut)
    refused(*prior_stage(world, run), str(run["parses"]), "expected T = 36", absent=absent(world, PRIOR_OUT))


def test_parses_of_other_splits(world, run):
    with np.load(run["parses"]) as z:
        fewer = {k: z[k][:-2] for k in z.files if k.startswith("train_")}   # rows for another training set
    edit_npz(run["parses"], **fewer)
    refused(*model_stage(world, run), str(run["parses"]), "field 'train_z_id'", "N_train",
            absent=absent(world, MODEL_OUT))


# --- prior checkpoint ---------------------------------------------------------------------------------

def test_prior_of_the_wrong_kind(world, run):
    refused(*model_stage(world, run, prior=run["model"]), str(run["model"]), "a npdraw checkpoint",
            "expected a prior checkpoint", "train_prior", absent=absent(world, MODEL_OUT))


def test_prior_with_non_finite_weights(world, run):
    def poison(ckpt):
        name = next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point() and k != "bank")
        ckpt["state_dict"][name].view(-1)[0] = float("inf")
    edit_checkpoint(run["prior"], poison)
    refused(*model_stage(world, run), str(run["prior"]), "non-finite values", absent=absent(world, MODEL_OUT))


def test_prior_missing_key(world, run):
    edit_checkpoint(run["prior"], lambda ckpt: ckpt.pop("grid"))
    refused(*model_stage(world, run), str(run["prior"]), "prior checkpoint without 'grid'",
            absent=absent(world, MODEL_OUT))


def test_prior_after_a_params_change(world, run):
    world.params["prior"]["width"] = 16   # the prior on disk was trained with width 8
    world.write_params()
    refused(*model_stage(world, run), str(run["prior"]), "another configuration", "width = 8 (expected 16)",
            absent=absent(world, MODEL_OUT))


# --- model checkpoint ---------------------------------------------------------------------------------

def test_model_of_the_wrong_kind(world, run):
    refused(*run_stage("evaluate", *evaluate_args(world, model=run["prior"])), str(run["prior"]),
            "a prior checkpoint, expected a npdraw checkpoint", absent=absent(world, EVAL_OUT))


def test_model_of_another_configuration(world, run):
    world.params["model"]["width"] = 16   # the model on disk was trained with width 8
    world.write_params()
    refused(*run_stage("evaluate", *evaluate_args(world)), str(run["model"]), "width = 8 (expected 16)",
            absent=absent(world, EVAL_OUT))


def test_model_with_non_finite_weights(world, run):
    def poison(ckpt):
        name = next(k for k, v in ckpt["state_dict"].items() if k.startswith("encoder") and v.is_floating_point())
        ckpt["state_dict"][name].view(-1)[0] = float("nan")
    edit_checkpoint(run["model"], poison)
    refused(*run_stage("evaluate", *evaluate_args(world)), str(run["model"]), "non-finite values",
            absent=absent(world, EVAL_OUT))


def test_model_from_an_older_version_without_kind(world, run):
    edit_checkpoint(run["model"], lambda ckpt: ckpt.pop("kind"))
    out = world.root / "edit.png"
    refused(*run_stage("edit_latents", *RUN, "--variant", "base", "--data", run["data"], "--splits", run["splits"],
                       "--model", run["model"], "--out", out),
            str(run["model"]), "without a 'kind'", absent=[out])


def test_npdraw_model_evaluated_as_the_pixelvae(world, run):
    args = evaluate_args(world)
    args[args.index("--variant") + 1] = "pixelvae"
    refused(*run_stage("evaluate", *args), str(run["model"]), "a npdraw checkpoint, expected a pixelvae",
            absent=absent(world, EVAL_OUT))


def test_model_state_that_does_not_fit_its_architecture(world, run):
    edit_checkpoint(run["model"], lambda ckpt: ckpt["state_dict"].pop("prior.bank"))
    refused(*run_stage("evaluate", *evaluate_args(world)), str(run["model"]), "does not rebuild its model",
            absent=absent(world, EVAL_OUT))


# --- domain classifier and reference statistics -------------------------------------------------------------

def test_classifier_of_the_wrong_kind(world, run):
    refused(*run_stage("evaluate", *evaluate_args(world, classifier=run["prior"])), str(run["prior"]),
            "not a readable feature network record", absent=absent(world, EVAL_OUT))


def test_classifier_of_another_dataset(world, run):
    record = json.loads(run["classifier"].read_text())
    run["classifier"].write_text(json.dumps({**record, "dataset": "omniglot"}))
    out = world.root / "ref2.pt"
    refused(*run_stage("reference_stats", "--dataset", "mnist", "--profile", "smoke", "--data", run["data"],
                       "--classifier", run["classifier"], "--out", out),
            str(run["classifier"]), "the feature network of 'omniglot', not of this run's dataset 'mnist'",
            absent=[out])


def test_feature_weights_that_are_not_the_committed_ones(world, run):
    """Weights retrained or damaged without their record: every stage that scores refuses them by checksum."""
    weights = run["classifier"].with_suffix(".pt")
    data = bytearray(weights.read_bytes())
    data[-100] ^= 0x01
    weights.write_bytes(bytes(data))
    refused(*run_stage("evaluate", *evaluate_args(world)), str(weights), "the weights were changed without their "
            "record", absent=absent(world, EVAL_OUT))


def test_reference_missing_key(world, run):
    edit_checkpoint(run["reference"], lambda ckpt: ckpt.pop("domain"))
    refused(*run_stage("evaluate", *evaluate_args(world)), str(run["reference"]), "without 'domain'",
            absent=absent(world, EVAL_OUT))


def test_reference_with_non_finite_statistics(world, run):
    edit_checkpoint(run["reference"], lambda ckpt: ckpt["domain"]["fid_sum"].fill_(float("nan")))
    refused(*run_stage("evaluate", *evaluate_args(world)), str(run["reference"]), "domain.fid_sum",
            "non-finite", absent=absent(world, EVAL_OUT))


def test_reference_of_another_feature_network(world, run):
    def narrower(ckpt):
        d = ckpt["domain"]
        d["fid_sum"], d["fid_cov_sum"] = d["fid_sum"][:64], d["fid_cov_sum"][:64, :64]
        d["kid_features"] = d["kid_features"][:, :64]
    edit_checkpoint(run["reference"], narrower)
    refused(*run_stage("evaluate", *evaluate_args(world)), str(run["reference"]), "fid_sum", "expected F = 128",
            absent=absent(world, EVAL_OUT))


def test_reference_of_another_profile(world, run):
    edit_checkpoint(run["reference"], lambda ckpt: ckpt.update(profile="quick"))
    refused(*run_stage("evaluate", *evaluate_args(world)), str(run["reference"]),
            "profile = 'quick' (expected 'smoke')", absent=absent(world, EVAL_OUT))


# --- metrics read by the tables ---------------------------------------------------------------------------

def eval_metrics(world) -> Path:
    """An evaluation metrics file where make_tables looks for one."""
    code, err = run_stage("evaluate", *evaluate_args(world))
    assert code == 0, err
    dest = world.root / "results/mnist/smoke/full/seed0/base/metrics/eval.json"
    dest.parent.mkdir(parents=True)
    shutil.copy(world.root / "eval/eval.json", dest)
    return dest


def test_metrics_missing_key(world, run):
    path = eval_metrics(world)
    metrics = json.loads(path.read_text())
    del metrics["nll_nats"]
    path.write_text(json.dumps(metrics))
    out = world.root / "tables"
    refused(*run_stage("make_tables", "--out", out, path), str(path), "without 'nll_nats'", "evaluate stage",
            absent=[out / "table1.md"])


def test_metrics_with_a_non_finite_value(world, run):
    path = eval_metrics(world)
    path.write_text(path.read_text().replace('"fid_domain": ', '"fid_domain": NaN, "x": ', 1))
    out = world.root / "tables"
    refused(*run_stage("make_tables", "--out", out, path), str(path), "metric 'fid_domain' = nan",
            absent=[out / "table1.md"])
