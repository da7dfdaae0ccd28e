"""The Transformer prior: causality, exact factorisation, cached sampling, learning."""

import math

import numpy as np
import pytest
import torch

from npdraw.models.prior import Prior, PriorConfig, load_prior
from npdraw.parts.canvas import Grid, render
from npdraw.parts.parser import Latents
from npdraw.training.prior import evaluate_nll, train_prior


def small_prior(side=12, k=4, m=6, channels=1, dtype=torch.float64, seed=0, **arch):
    torch.manual_seed(seed)
    grid = Grid(side, k, channels)
    cfg = PriorConfig(parts=m, steps=grid.cells, cells=grid.cells, channels=channels, side=side,
                      **{"width": 16, "layers": 2, "heads": 2, **arch})
    model = Prior(cfg, torch.rand(m, channels, k, k), grid).to(dtype)
    return model.eval()


def random_latents(model, b=5, seed=1):
    g = torch.Generator().manual_seed(seed)
    t = model.cfg.steps
    return (torch.randint(0, model.cfg.parts, (b, t), generator=g),
            torch.randint(0, model.cfg.cells, (b, t), generator=g),
            torch.rand(b, t, generator=g) < 0.6)


def test_token_canvases_match_rendering_step_by_step():
    model = small_prior()
    z_id, z_loc, z_is = random_latents(model)
    tokens = model.tokens(z_id, z_loc, z_is).reshape(*z_id.shape, 2, model.grid.side, model.grid.side)
    prefixes = tokens[:, :, :1]                                 # the canvas channel: c_0 .. c_{T-1}
    assert torch.count_nonzero(prefixes[:, 0]) == 0  # c_0 is blank
    for t in range(1, model.cfg.steps):
        expected = render(model.bank, z_id[:, :t], z_loc[:, :t], z_is[:, :t], model.grid)
        torch.testing.assert_close(prefixes[:, t], expected)
    mask = tokens[:, :, 1]                                      # the cell of step t-1, a K x K block where drawn
    assert torch.count_nonzero(mask[:, 0]) == 0 and set(mask.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(mask.sum((2, 3))[:, 1:], z_is[:, :-1].to(mask.dtype) * 16)


@pytest.mark.parametrize("t", [0, 3, 6])
def test_causality(t):
    """Changing the latents of step t+1 never changes the outputs for steps <= t (nor t+1)."""
    model = small_prior()
    z = random_latents(model)
    changed = [x.clone() for x in z]
    changed[0][:, t + 1] = (changed[0][:, t + 1] + 1) % model.cfg.parts
    changed[1][:, t + 1] = (changed[1][:, t + 1] + 3) % model.cfg.cells
    changed[2][:, t + 1] = ~changed[2][:, t + 1]
    before, after = model.logits(*z), model.logits(*changed)
    for x, y in zip(before, after):
        torch.testing.assert_close(x[:, :t + 2], y[:, :t + 2], rtol=0, atol=1e-12)
        assert not torch.allclose(x[:, t + 2:], y[:, t + 2:])  # later steps do see it


def test_log_prob_is_the_sum_of_step_conditionals():
    model = small_prior()
    z_id, z_loc, z_is = random_latents(model)
    total = torch.zeros(len(z_id), dtype=torch.float64)
    for t in range(model.cfg.steps):
        # Conditionals of step t from a pass over the prefix 1..t+1 only.
        id_l, loc_l, is_l = (x[:, t] for x in model.logits(z_id[:, :t + 1], z_loc[:, :t + 1], z_is[:, :t + 1]))
        lp_is = torch.where(z_is[:, t], torch.sigmoid(is_l).log(), (1 - torch.sigmoid(is_l)).log())
        lp_id = id_l.log_softmax(-1).gather(1, z_id[:, t:t + 1]).squeeze(1)
        lp_loc = loc_l.log_softmax(-1).gather(1, z_loc[:, t:t + 1]).squeeze(1)
        total += lp_is + z_is[:, t] * (lp_id + lp_loc)
    torch.testing.assert_close(model.log_prob(z_id, z_loc, z_is)["total"], total)


def test_skipped_steps_count_only_their_is_term():
    model = small_prior()
    z_id, z_loc, z_is = random_latents(model)
    z_is[:] = False
    other_id = (z_id + 1) % model.cfg.parts
    a, b = model.log_prob(z_id, z_loc, z_is), model.log_prob(other_id, z_loc, z_is)
    assert torch.equal(a["id"], torch.zeros_like(a["id"])) and torch.equal(a["loc"], a["id"])
    torch.testing.assert_close(a["total"], b["total"])


@pytest.mark.parametrize("channels, arch", [(1, {}), (3, {}), (1, {"heads": 4, "head_dim": 8, "position": "learned"})])
def test_cached_and_naive_samplers_agree(channels, arch):
    """Also for the authors' ViT shape: more heads of their own width, a learned position code."""
    model = small_prior(channels=channels, **arch)
    a = model.sample(20, torch.Generator().manual_seed(3), cached=True)
    b = model.sample(20, torch.Generator().manual_seed(3), cached=False)
    for x, y in zip(a, b):
        assert torch.equal(x, y)
    z_id, z_loc, z_is, canvas = a
    assert torch.equal(canvas, render(model.bank, z_id, z_loc, z_is, model.grid))
    assert 0 < z_is.float().mean() < 1


def synthetic_parses(n, t, m, seed=0):
    """Structured sequences: draw on even cells, part = cell index mod m, raster order."""
    g = torch.Generator().manual_seed(seed)
    z_loc = torch.arange(t).expand(n, t).clone()
    z_is = (z_loc % 2 == 0) & (torch.rand(n, t, generator=g) < 0.9)
    z_id = z_loc % m
    return Latents(z_id, z_loc, z_is)


def test_training_beats_the_uniform_baseline(make_cfg, tmp_path):
    cfg = make_cfg(dataset="mnist", ds={"canvas_size": 12, "image_size": 12, "patch_size": 4, "bank_size": 6},
                   prior={"width": 32, "layers": 2, "heads": 2, "epochs": 6, "batch_size": 32, "lr": 3e-3,
                          "dropout": 0.0})
    grid = Grid.for_dataset(cfg.ds)
    data = {"train": synthetic_parses(512, grid.cells, 6), "valid": synthetic_parses(64, grid.cells, 6, seed=1),
            "test": synthetic_parses(64, grid.cells, 6, seed=2)}
    bank = torch.rand(6, 1, 4, 4)
    state = train_prior(cfg, bank, data, tmp_path / "best.pt", tmp_path / "resume.pt", torch.device("cpu"))
    uniform = grid.cells * (math.log(6) + math.log(grid.cells) + math.log(2))
    model = load_prior(tmp_path / "best.pt")
    nll = evaluate_nll(model, data["test"])["nll_total_nats"]
    assert nll < 0.35 * uniform, (nll, uniform)
    assert state["history"][-1]["train_nll_nats"] < state["history"][0]["train_nll_nats"]
    assert state["best_epoch"] == 1 + int(np.argmin([h["valid_nll_nats"] for h in state["history"]]))


class Killed(Exception):
    pass


class FakeLive:
    """A stand-in for DVCLive that records the curves, and can kill training after `epochs` epochs."""

    def __init__(self, epochs=None):
        self.left, self.curves = epochs, {}

    def log_metric(self, name, value):
        self.curves.setdefault(name, []).append(value)

    def next_step(self):
        if self.left is not None:
            self.left -= 1
            if self.left < 0:
                raise Killed


def test_resume_continues_where_it_stopped(make_cfg, tmp_path):
    """A run interrupted during epoch 3 and restarted equals an uninterrupted run (on CPU)."""
    cfg = make_cfg(dataset="mnist", ds={"canvas_size": 12, "image_size": 12, "patch_size": 4, "bank_size": 6},
                   prior={"width": 16, "layers": 1, "heads": 2, "batch_size": 64, "lr": 1e-3, "epochs": 4})
    grid = Grid(12, 4, 1)
    data = {s: synthetic_parses(128, grid.cells, 6, seed=i) for i, s in enumerate(("train", "valid", "test"))}
    bank = torch.rand(6, 1, 4, 4)
    cpu = torch.device("cpu")
    straight = train_prior(cfg, bank, data, tmp_path / "a.pt", tmp_path / "a.resume", cpu)
    with pytest.raises(Killed):
        train_prior(cfg, bank, data, tmp_path / "b.pt", tmp_path / "b.resume", cpu, live=FakeLive(2))
    assert not (tmp_path / "b.pt").exists()  # nothing that looks finished
    live = FakeLive()
    resumed = train_prior(cfg, bank, data, tmp_path / "b.pt", tmp_path / "b.resume", cpu, live=live)
    # The curves of the restarted run hold every epoch, the two before the kill included.
    assert live.curves["train/nll_nats"] == [h["train_nll_nats"] for h in straight["history"]]
    assert [h["train_nll_nats"] for h in resumed["history"]] == [h["train_nll_nats"] for h in straight["history"]]
    a, b = torch.load(tmp_path / "a.pt", weights_only=True), torch.load(tmp_path / "b.pt", weights_only=True)
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k])


def test_the_prior_sizes_of_the_profiles_and_tokens(params):
    """The paper profile's prior is the authors' ViT (16 heads of 64, MLP 2048, learned positions:
    about 4.3 M parameters), as is variant token `vit` at any profile; the quick profile's, and token
    `slim`'s, is the paper text's reading (4 heads of 16: 0.47 M), at MNIST's settings."""
    from npdraw.models.prior import prior_config
    from npdraw.workflow.resolve import resolve
    sizes = {}
    for name, profile, variant in (("quick", "quick", "base"), ("slim", "paper", "slim"), ("paper", "paper", "base"),
                                   ("vit", "quick", "vit")):
        cfg = resolve(params, dataset="mnist", profile=profile, variant=variant)
        grid = Grid.for_dataset(cfg.ds)
        model = Prior(prior_config(cfg, grid), torch.rand(cfg.ds.bank_size, 1, 5, 5), grid)
        sizes[name] = sum(p.numel() for p in model.parameters())
    assert 0.4e6 < sizes["quick"] == sizes["slim"] < 0.5e6 and 4.0e6 < sizes["paper"] == sizes["vit"] < 4.6e6
