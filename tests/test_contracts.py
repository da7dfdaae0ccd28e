"""npdraw.artifacts.contracts: array and checkpoint contracts, the metrics guard, and the samples contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from npdraw.artifacts.contracts import ArrayContract, CheckpointContract, Field, check_metrics, non_finite
from npdraw.artifacts.errors import ArtifactError, CheckpointError
from npdraw.workflow.resolve import resolve

PARTS = ArrayContract("thing", "make_thing", (
    Field("ids", "int", ("N", "T"), low=0, below="M"),
    Field("flags", "bool", ("N", "T")),
    Field("values", "float", ("N",), low=0.0, high=1.0),
    Field("extra", "uint8", (None, 3), optional=True),
))


def good(n=4, t=5):
    return {"ids": np.zeros((n, t), np.int64), "flags": np.ones((n, t), bool), "values": np.full(n, 0.5)}


def test_a_good_artifact_passes_and_binds_its_dimensions():
    assert PARTS.check("x.npz", good(), M=3) == {"M": 3, "N": 4, "T": 5}


@pytest.mark.parametrize("change, words", [
    (lambda a: a.pop("flags"), "no field 'flags'"),
    (lambda a: a.update(ids=a["ids"].astype(np.float32)), "field 'ids' is float32, expected int"),
    (lambda a: a.update(flags=np.ones((4, 6), bool)), "expected (N = 4, T = 5)"),
    (lambda a: a.update(values=np.ones((4, 1))), "has shape (4, 1), expected (N = 4,)"),
    (lambda a: a.update(ids=np.full((4, 5), 3)), "expected every value < M = 3"),
    (lambda a: a.update(ids=np.full((4, 5), -1)), "expected every value >= 0"),
    (lambda a: a.update(values=np.array([0.5, np.inf, 0.1, 0.2])), "1 non-finite values"),
    (lambda a: a.update(values=np.array([0.5, 1.5, 0.1, 0.2])), "expected every value <= 1"),
    (lambda a: a.update(extra=np.zeros((2, 3), np.int16)), "field 'extra' is int16, expected uint8"),
], ids=["missing", "dtype", "shape-bound", "ndim", "below", "low", "non-finite", "high", "uint8"])
def test_each_violation_names_the_file_the_field_and_the_writer(change, words):
    arrays = good()
    change(arrays)
    with pytest.raises(ArtifactError) as err:
        PARTS.check("runs/x.npz", arrays, M=3)
    assert str(err.value).startswith("runs/x.npz: ") and words in str(err.value)
    assert "the make_thing stage writes a good thing" in str(err.value)


CKPT = CheckpointContract("widget", "train_widget", ("arch", "state_dict"))


def test_checkpoint_kind_keys_weights_and_configuration():
    ckpt = {"kind": "widget", "arch": {"width": 8, "parts": 4}, "state_dict": {"w": torch.ones(3)}}
    CKPT.check("w.pt", ckpt, {"parts": 4})
    with pytest.raises(CheckpointError, match="a gadget checkpoint, expected a widget checkpoint"):
        CKPT.check("w.pt", {**ckpt, "kind": "gadget"})
    with pytest.raises(CheckpointError, match="without a 'kind'"):
        CKPT.check("w.pt", {k: v for k, v in ckpt.items() if k != "kind"})
    with pytest.raises(CheckpointError, match="widget checkpoint without 'state_dict'"):
        CKPT.check("w.pt", {k: v for k, v in ckpt.items() if k != "state_dict"})
    with pytest.raises(CheckpointError, match="tensor 'state_dict.w' holds 1 non-finite"):
        CKPT.check("w.pt", {**ckpt, "state_dict": {"w": torch.tensor([1.0, float("nan"), 2.0])}})
    with pytest.raises(CheckpointError, match=r"another configuration than run A: parts = 4 \(expected 5\)"):
        CKPT.check("w.pt", ckpt, {"parts": 5}, what="run A")
    with pytest.raises(CheckpointError, match="does not rebuild its model"):
        with CKPT.rebuilding("w.pt"):
            torch.nn.Linear(2, 2).load_state_dict({"weight": torch.ones(3, 3)})


def test_metrics_guard():
    assert non_finite({"a": 1.0, "b": [0.5, float("nan")], "c": {"d": float("-inf")}, "e": None}) == [
        ("b.1", pytest.approx(float("nan"), nan_ok=True)), ("c.d", float("-inf"))]
    check_metrics("m.json", {"nll_nats": 90.0}, ("nll_nats",))
    with pytest.raises(ArtifactError, match="without 'fid'"):
        check_metrics("m.json", {"nll_nats": 90.0}, ("nll_nats", "fid"))


def test_a_stage_never_writes_a_non_finite_metric(tmp_path, params):
    from npdraw.workflow.provenance import write_metrics
    cfg = resolve(params, profile="smoke")
    cfg["stage"] = "parse"
    out = tmp_path / "metrics/parse.json"
    with pytest.raises(ArtifactError) as err:
        write_metrics(out, {"psnr_db": float("nan"), "test": {"mse": 0.1}}, cfg, {"--bank": "runs/bank.npy"})
    assert "metric 'psnr_db' = nan" in str(err.value) and "--bank runs/bank.npy" in str(err.value)
    assert not out.exists() and not list(tmp_path.rglob("*.tmp"))
    write_metrics(out, {"psnr_db": 20.0}, cfg)
    assert json.loads(out.read_text())["psnr_db"] == 20.0


def test_samples_contract(tmp_path, params):
    from npdraw.evaluation.importance import load_samples, write_samples
    cfg = resolve(params, profile="smoke")
    gen = {"images": torch.rand(6, 1, 28, 28), "canvases": torch.rand(6, 1, 28, 28)}
    write_samples(tmp_path / "s.npz", gen, cfg.ds)
    drawn = load_samples(tmp_path / "s.npz", cfg.ds)
    assert drawn["images"].dtype == np.uint8 and drawn["canvases"].shape == (6, 1, 28, 28)
    np.savez(tmp_path / "bad.npz", images=drawn["images"][:, :, :14])
    with pytest.raises(ArtifactError, match="samples file field 'images' has shape"):
        load_samples(tmp_path / "bad.npz", cfg.ds)
    with pytest.raises(ArtifactError, match="expected H = 28"):   # the writer checks what it writes, too
        write_samples(tmp_path / "t.npz", {"images": torch.rand(2, 1, 32, 32), "canvases": None}, cfg.ds)
    assert not (tmp_path / "t.npz").exists()
