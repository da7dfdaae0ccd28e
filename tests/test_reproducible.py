"""Same params and seed -> the same splits, bank, parses and (on CPU) the same prior training,
through the stage CLIs, in two separate folders."""

import json
import os
import shutil

import numpy as np
import pytest
import torch

from tests.stage_runs import base_run, world  # noqa: F401 (fixture)


def outputs(root):
    return {
        "splits": dict(np.load(root / "splits.npz")), "bank": (root / "bank.npy").read_bytes(),
        "parses": dict(np.load(root / "parses.npz")),
        "prior": torch.load(root / "prior/best.pt", weights_only=True)["state_dict"],
        "curves": {p.relative_to(root / "prior/live"): p.read_text()
                   for p in sorted((root / "prior/live/plots").rglob("*.tsv"))},
        "prior_metrics": json.loads((root / "prior.json").read_text()),
    }


@pytest.mark.slow
def test_same_params_and_seed_give_identical_outputs(world):
    base_run(world)
    first = outputs(world.root)
    again = world.root / "again"
    again.mkdir()
    shutil.copy(world.root / "params.yaml", again / "params.yaml")
    world.root = again
    os.chdir(again)   # the fixture's monkeypatch.chdir restores the working directory afterwards
    base_run(world)
    second = outputs(again)
    for name in ("splits", "parses"):
        assert first[name].keys() == second[name].keys()
        for key in first[name]:
            np.testing.assert_array_equal(first[name][key], second[name][key], err_msg=f"{name}[{key}]")
    assert first["bank"] == second["bank"]                      # the .npy file byte for byte
    assert first["prior"].keys() == second["prior"].keys()
    for key in first["prior"]:
        assert torch.equal(first["prior"][key], second["prior"][key]), key
    assert first["curves"] and first["curves"] == second["curves"]   # DVCLive curves, value for value
    one, two = first["prior_metrics"], second["prior_metrics"]
    assert [h["train_nll_nats"] for h in one["history"]] == [h["train_nll_nats"] for h in two["history"]]
    assert one["test"] == two["test"] and one["provenance"] == two["provenance"]
