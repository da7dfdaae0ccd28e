"""The baselines' reference comparison (benchmarks/baseline_references.py): its ports score finite terms, a
run cut short goes on as the uninterrupted one, and the summary judges only with a spread to judge by."""

import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO

from benchmarks import baseline_references as refs
from npdraw.workflow.resolve import resolve


@pytest.fixture(scope="module")
def cfg():
    return resolve(yaml.safe_load((REPO / "params.yaml").read_text()), dataset="mnist", profile="findings",
                   variant="vae")


@pytest.mark.parametrize("name", ["vae", "draw"])
def test_each_reference_port_scores_finite_terms_per_image(cfg, name):
    torch.manual_seed(0)
    model = refs.reference(name, cfg)
    x = torch.bernoulli(torch.full((4, 1, 28, 28), 0.3))
    t = model.terms(x)
    assert t["log_px"].shape == t["kl"].shape == (4,)
    assert torch.isfinite(t["log_px"]).all() and (t["log_px"] < 0).all() and (t["kl"] >= 0).all()


class Killed(Exception):
    pass


def test_a_run_cut_short_resumes_where_it_saved_and_scores_as_the_uninterrupted_one(cfg, tmp_path, monkeypatch):
    """Five batches an epoch, saves every 2 updates: killed after update 3 was scored, the run goes on from
    the save at update 2 (across an epoch's end) and scores updates 3 and 7 as the run that was never
    stopped; its save is gone once it ends."""
    monkeypatch.setattr(refs, "SAVE_EVERY", 2)
    g = torch.Generator().manual_seed(0)
    images = (torch.rand(500, 1, 28, 28, generator=g) * 255).to(torch.uint8)
    test = torch.bernoulli(torch.full((8, 1, 28, 28), 0.3), generator=g)
    whole = refs.train("vae", "reference", 0, (3, 7), images, test, cfg)

    def kill(row):
        raise Killed
    save = tmp_path / "vae-reference-s0.pt"
    with pytest.raises(Killed):
        refs.train("vae", "reference", 0, (3, 7), images, test, cfg, kill, save)
    assert torch.load(save, weights_only=False)["step"] == 2
    landed = []
    again = refs.train("vae", "reference", 0, (3, 7), images, test, cfg, landed.append, save)
    assert [r["updates"] for r in again] == [3, 7] and landed == again
    for a, b in zip(whole, again):
        assert (a["neg_elbo"], a["kl"]) == (b["neg_elbo"], b["kl"])
    assert not save.exists()


def test_the_summary_judges_within_the_spread_only_with_two_seeds_a_side():
    def rows(impl, seed, value):
        return {"system": "vae", "implementation": impl, "seed": seed, "updates": 600, "neg_elbo": value, "kl": 1.0}
    one = refs.summary(pd.DataFrame([rows("pipeline", 0, 120.0), rows("reference", 0, 115.0)])).iloc[0]
    assert one["difference"] == 5.0 and one["within_spread"] is None
    two = pd.DataFrame([rows("pipeline", 0, 120.0), rows("pipeline", 1, 126.0), rows("reference", 0, 115.0),
                        rows("reference", 1, 117.0)])
    row = refs.summary(two).iloc[0]
    assert row["seed_spread"] == 6.0 and row["difference"] == 7.0 and not row["within_spread"]
    two.loc[1, "neg_elbo"] = 130.0                      # pipeline 120 and 130: spread 10, difference 9
    assert refs.summary(two).iloc[0]["within_spread"]
