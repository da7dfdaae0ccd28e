"""The full model: shapes and losses per dataset, exact rendering, KL, output likelihoods, training."""

import itertools
import math

import numpy as np
import pytest
import torch

from npdraw.data.binarize import fixed_targets
from npdraw.models.checkpoints import load_model
from npdraw.models.npdraw import (
    Bernoulli,
    LogisticMixture,
    NPDraw,
    hard_sample,
    kl_bernoulli,
    kl_categorical,
    one_hots,
    relaxed_sample,
    step_kl,
    temperature,
)
from npdraw.models.prior import Prior, prior_config
from npdraw.parts.canvas import Grid, render
from npdraw.parts.parser import Latents, parse_cells
from npdraw.training.trainer import evaluate, train


def tiny(make_cfg, dataset, **model):
    cfg = make_cfg(dataset=dataset, profile="paper", model={"width": 16, **model},
                   prior={"width": 16, "layers": 1, "heads": 2})
    grid = Grid.for_dataset(cfg.ds)
    torch.manual_seed(0)
    bank = torch.rand(cfg.ds.bank_size, cfg.ds.channels, cfg.ds.patch_size, cfg.ds.patch_size)
    prior = Prior(prior_config(cfg, grid), bank, grid)
    return cfg, NPDraw.build(cfg, prior)


def train_np(cfg, prior, images, parses, best, resume, device, **kw):
    """The trainer on NP-DRAW: its prior built in, its parses as the splits' data."""
    return train(cfg, images, best, resume, device, inputs={"prior": prior},
                 data={s: {"parse": parses[s]} for s in parses}, **kw)


def fake_batch(cfg, b=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    ds, t = cfg.ds, Grid.for_dataset(cfg.ds).cells
    x = torch.randint(0, 256, (b, ds.channels, ds.image_size, ds.image_size), generator=g).float() / 255
    if ds.output == "bernoulli":
        x = torch.bernoulli(x, generator=g)
    parse = (torch.randint(0, ds.bank_size, (b, t), generator=g), torch.arange(t).expand(b, t),
             torch.rand(b, t, generator=g) < 0.5)
    return x, parse


@pytest.mark.parametrize("dataset", ["mnist", "binarized_mnist", "omniglot", "cifar10", "celeba"])
def test_shapes_and_finite_losses(make_cfg, dataset):
    cfg, model = tiny(make_cfg, dataset)
    x, parse = fake_batch(cfg)
    q = model.encoder(x)
    t, m = Grid.for_dataset(cfg.ds).cells, cfg.ds.bank_size
    assert [tuple(v.shape) for v in q] == [(4, t, m), (4, t, t), (4, t)]
    terms = model.terms(x, x, parse, tau=0.7, hard_id=False)
    canvas = terms.pop("canvas")
    assert canvas.shape == (4, cfg.ds.channels, cfg.ds.canvas_size, cfg.ds.canvas_size)
    assert model.decoder(canvas).shape[-2:] == (cfg.ds.image_size, cfg.ds.image_size)
    for name, value in terms.items():
        assert value.shape == (4,) and torch.isfinite(value).all(), name
    assert (terms["kl"] >= -1e-5).all() and (terms["ce"] > 0).all() and (terms["log_px"] < 0).all()
    loss = (-(terms["log_px"] - terms["kl"]) + cfg.ds.lambda_reg * terms["ce"]).mean()
    loss.backward()
    assert model.encoder.head_id[-1].weight.grad.abs().sum() > 0 and model.decoder.out.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.prior.parameters())  # the prior is frozen


def test_hard_samples_render_the_parsers_canvas(make_cfg):
    cfg, model = tiny(make_cfg, "mnist")
    grid = Grid.for_dataset(cfg.ds)
    x = torch.bernoulli(torch.full((3, 1, 28, 28), 0.2), generator=torch.Generator().manual_seed(1))
    z_id, z_is = parse_cells(x, model.bank, grid, 0.01)
    z_loc = torch.arange(grid.cells).expand_as(z_id)
    expected = render(model.bank, z_id, z_loc, z_is, grid)
    assert torch.equal(model.canvas(z_id, z_loc, z_is), expected)                       # indices
    assert torch.equal(model.canvas(*one_hots(z_id, z_loc, z_is, 50, 36)), expected)  # one-hots
    # Straight-through samples are exact one-hots in the forward pass: the canvas is a hard render.
    q = tuple(torch.randn(3, 36, n) for n in (50, 36)) + (torch.randn(3, 36),)
    zi, zl, zs = relaxed_sample(q, tau=0.5, hard_id=True)
    hard = (zi.argmax(-1), zl.argmax(-1), zs > 0.5)
    assert torch.equal(model.canvas(zi, zl, zs), render(model.bank, *hard, grid))


def test_kl_nonnegative_and_zero_at_the_prior(make_cfg):
    cfg, model = tiny(make_cfg, "mnist")
    x, _ = fake_batch(cfg)
    q = model.encoder(x)
    z = hard_sample(q, torch.Generator().manual_seed(0))
    p = model.prior.logits(*z)
    assert (step_kl(q, p) >= -1e-6).all()
    torch.testing.assert_close(step_kl(p, p), torch.zeros_like(p[2]), atol=1e-6, rtol=0)
    a, b = torch.randn(6, 9), torch.randn(6, 9)
    assert (kl_categorical(a, b) >= 0).all() and (kl_bernoulli(a, b) >= -1e-7).all()
    # Against the definition on a two-point case.
    qp, pp = torch.sigmoid(torch.tensor(0.3)), torch.sigmoid(torch.tensor(-1.2))
    expected = qp * torch.log(qp / pp) + (1 - qp) * torch.log((1 - qp) / (1 - pp))
    torch.testing.assert_close(kl_bernoulli(torch.tensor(0.3), torch.tensor(-1.2)), expected)


def test_bernoulli_likelihood_sums_to_one():
    params = torch.randn(1, 1, 1, 2)
    values = torch.tensor(list(itertools.product([0.0, 1.0], repeat=2))).reshape(4, 1, 1, 2)
    total = Bernoulli(1).log_prob(params.expand(4, -1, -1, -1), values).exp().sum()
    torch.testing.assert_close(total, torch.tensor(1.0))


@pytest.mark.parametrize("channels, n_mix", [(1, 3), (3, 1), (3, 2)])
def test_logistic_mixture_sums_to_one_over_the_256_levels(channels, n_mix):
    torch.manual_seed(channels + n_mix)
    dist = LogisticMixture(channels, n_mix)
    params = torch.randn(1, dist.params, 1, 1)
    levels = torch.arange(256, dtype=torch.float32) / 255
    if channels == 1:
        x = levels.reshape(256, 1, 1, 1)
        total = dist.log_prob(params.expand(256, -1, -1, -1), x).exp().sum()
    else:
        # Sum over all 256^3 colours in chunks: a proper distribution over the joint space.
        grid = torch.cartesian_prod(levels, levels, levels)
        total = torch.zeros(())
        for chunk in grid.split(65536):
            x = chunk.reshape(-1, 3, 1, 1)
            total = total + dist.log_prob(params.expand(len(x), -1, -1, -1), x).double().exp().sum()
    torch.testing.assert_close(total.double(), torch.tensor(1.0, dtype=torch.float64), atol=2e-3, rtol=0)
    sample = dist.sample(params.expand(5, -1, 4, 4).contiguous())
    assert sample.shape == (5, channels, 4, 4) and torch.equal(sample, torch.round(sample * 255) / 255)


def test_temperature_schedule():
    assert temperature(0, 100, 1.0, 0.5) == 1.0
    assert temperature(99, 100, 1.0, 0.5) == pytest.approx(0.5)
    assert 0.5 < temperature(50, 100, 1.0, 0.5) < 1.0


def mnist_like(n, seed=0):
    """Strokes on a blank background, uint8, with their parses against the model's bank."""
    rng = np.random.default_rng(seed)
    img = np.zeros((n, 1, 28, 28), np.uint8)
    for i in range(n):
        r, c = rng.integers(3, 18, 2)
        img[i, 0, r:r + 8, c:c + 3] = 255
        img[i, 0, r + 5:r + 8, c:c + 8] = 200
    return torch.from_numpy(img)


def parses_for(model, images, grid):
    x = images.float() / 255
    z_id, z_is = parse_cells(x, model.bank, grid, 0.01)
    return Latents(z_id, torch.arange(grid.cells).expand_as(z_id).clone(), z_is)


@pytest.mark.slow
def test_training_lowers_the_validation_loss(make_cfg, tmp_path):
    cfg, model = tiny(make_cfg, "mnist", epochs=6, batch_size=32, lr=3e-3, decoder_lr_scale=1.0)
    grid = Grid.for_dataset(cfg.ds)
    images = {"train": mnist_like(320), "valid": mnist_like(64, seed=1)}
    parses = {k: parses_for(model, v, grid) for k, v in images.items()}
    valid_x = fixed_targets(images["valid"], True, 0)
    before = evaluate(model, valid_x, {"parse": parses["valid"]})
    state = train_np(cfg, model.prior, images, parses, tmp_path / "m.pt", tmp_path / "m.resume",
                        torch.device("cpu"))
    trained = load_model(tmp_path / "m.pt")
    after = evaluate(trained, valid_x, {"parse": parses["valid"]})
    assert after["elbo_nats"] > before["elbo_nats"] + 50, (before, after)
    assert after["reg_nats"] < before["reg_nats"]
    assert len(state["history"]) == 6 and trained.training is False


class Stop(Exception):
    pass


class StopAfter:
    def __init__(self, epochs):
        self.left = epochs

    def log_metric(self, *args):
        pass

    def next_step(self):
        self.left -= 1
        if self.left < 0:
            raise Stop


def test_resume_gives_the_same_training_as_uninterrupted(make_cfg, tmp_path):
    cfg, model = tiny(make_cfg, "mnist", epochs=3, batch_size=40)
    grid = Grid.for_dataset(cfg.ds)
    images = {"train": mnist_like(120), "valid": mnist_like(40, seed=1)}
    parses = {k: parses_for(model, v, grid) for k, v in images.items()}
    cpu = torch.device("cpu")
    straight = train_np(cfg, model.prior, images, parses, tmp_path / "a.pt", tmp_path / "a.r", cpu)
    with pytest.raises(Stop):
        train_np(cfg, model.prior, images, parses, tmp_path / "b.pt", tmp_path / "b.r", cpu, live=StopAfter(1))
    resumed = train_np(cfg, model.prior, images, parses, tmp_path / "b.pt", tmp_path / "b.r", cpu)
    assert [h["train_loss_nats"] for h in resumed["history"]] == [h["train_loss_nats"] for h in straight["history"]]
    a, b = torch.load(tmp_path / "a.pt", weights_only=True), torch.load(tmp_path / "b.pt", weights_only=True)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_nan_stops_training_naming_the_term(make_cfg, tmp_path):
    cfg, model = tiny(make_cfg, "mnist", epochs=1, batch_size=40)
    grid = Grid.for_dataset(cfg.ds)
    images = {"train": mnist_like(80), "valid": mnist_like(40, seed=1)}
    parses = {k: parses_for(model, v, grid) for k, v in images.items()}
    with torch.no_grad():
        model.prior.head_is[2].bias.fill_(float("nan"))  # the prior's conditionals become NaN -> KL
    with pytest.raises(FloatingPointError, match=r"model epoch 1, step 1: KL = nan"):
        train_np(cfg, model.prior, images, parses, tmp_path / "m.pt", tmp_path / "m.r", torch.device("cpu"))
    assert not (tmp_path / "m.pt").exists()


def test_latent_editing_pastes_the_region(make_cfg):
    from npdraw.evaluation.editing import paste_region

    cfg, model = tiny(make_cfg, "mnist")
    model.eval()
    xa, _ = fake_batch(cfg, b=2, seed=1)
    xb, _ = fake_batch(cfg, b=2, seed=2)
    whole = paste_region(model, xa, xb, (0, 28, 0, 28))
    torch.testing.assert_close(whole["edited"], whole["canvas_b"])
    torch.testing.assert_close(whole["decoded_edited"], whole["decoded_b"])
    half = paste_region(model, xa, xb, (0, 28, 14, 28))
    torch.testing.assert_close(half["edited"][..., :14], half["canvas_a"][..., :14])
    torch.testing.assert_close(half["edited"][..., 14:], half["canvas_b"][..., 14:])
    assert half["decoded_edited"].shape == (2, 1, 28, 28)
    with pytest.raises(ValueError, match="region"):
        paste_region(model, xa, xb, (0, 40, 0, 5))


def test_hard_samples_follow_q():
    """Empirical frequencies of hard_sample match q's probabilities."""
    q_id = torch.log(torch.tensor([0.7, 0.2, 0.1])).expand(4000, 1, 3)
    q_loc = torch.log(torch.tensor([0.25, 0.75])).expand(4000, 1, 2)
    q_is = torch.full((4000, 1), math.log(0.3 / 0.7))
    z_id, z_loc, z_is = hard_sample((q_id, q_loc, q_is), torch.Generator().manual_seed(0))
    np.testing.assert_allclose(np.bincount(z_id.ravel().numpy(), minlength=3) / 4000, [0.7, 0.2, 0.1], atol=0.03)
    assert abs(z_loc.float().mean().item() - 0.75) < 0.03 and abs(z_is.float().mean().item() - 0.3) < 0.03


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_bf16_channels_last_terms_are_fp32_and_close_to_fp32(make_cfg, dataset):
    """compute.precision bf16 + channels_last: the likelihood terms come back fp32 and near the fp32
    pass's (an untrained model: per-image values of hundreds of nats, agreeing to about 1%)."""
    from npdraw.compute.precision import autocast, layout, use_layout
    cfg, model = tiny(make_cfg, dataset)
    x, parse = fake_batch(cfg)
    model.eval()
    torch.manual_seed(1)
    with torch.no_grad():
        ref = model.log_weights(x, x, 3, torch.Generator().manual_seed(0))
        use_layout(model, True)
        with autocast("cpu", "bf16"):
            low = model.log_weights(layout(x, True), x, 3, torch.Generator().manual_seed(0))
    for k in ref:
        assert low[k].dtype == torch.float32, k
        torch.testing.assert_close(low[k], ref[k], rtol=0.02, atol=1.0)
    with autocast("cpu", "bf16"):
        terms = model.train().terms(layout(x, True), x, parse, tau=0.7, hard_id=False)
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in terms.values())
    (-(terms["log_px"] - terms["kl"]) + terms["ce"]).mean().backward()   # backward outside autocast


def test_bf16_attention_on_the_cpu_matches_the_fused_kernel():
    from npdraw.models.prior import attention
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 2, 9, 8) for _ in range(3))
    for causal in (True, False):
        ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
        low = attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), causal, 0.0)
        torch.testing.assert_close(low.float(), ref, rtol=0.05, atol=0.05)


def test_compile_gives_the_eager_nll_weights_and_keeps_the_checkpoint_clean(make_cfg, monkeypatch):
    """compute.compile: log_weights through the compiled path gives the eager values, pass after pass, and
    the model's state dict holds nothing of it (torch.compile replaced by a pass-through here: compiling this
    graph takes a minute on a CPU; test_compiled_function_gives_the_eager_values compiles for real)."""
    import npdraw.compute.precision as precision
    made = []

    def record(fn, dynamic):
        made.append((fn.__name__, dynamic))
        return fn
    monkeypatch.setattr(precision.torch, "compile", record)
    cfg, model = tiny(make_cfg, "mnist")
    x, _ = fake_batch(cfg)
    model.eval()
    state = set(model.state_dict())
    eager = model.log_weights(x, x, 3, torch.Generator().manual_seed(0))
    for _ in range(2):
        routed = model.log_weights(x, x, 3, torch.Generator().manual_seed(0), compile=True)
        for k in eager:
            torch.testing.assert_close(routed[k], eager[k], rtol=0, atol=0)
    assert made   # the compiled path was taken
    assert set(model.state_dict()) == state   # a checkpoint holds no compiled wrapper


@pytest.mark.slow
def test_compiled_function_gives_the_eager_values():
    """npdraw.compute.precision.compiled really compiles (inductor, static shapes) on this torch."""
    from npdraw.compute.precision import compiled
    logits, x = torch.randn(4, 1, 6, 6), torch.bernoulli(torch.full((4, 1, 6, 6), 0.3))
    fast = compiled(Bernoulli(1).log_prob, True)
    torch.testing.assert_close(fast(logits, x), Bernoulli(1).log_prob(logits, x))


@pytest.mark.parametrize("dataset", ["mnist", "omniglot", "cifar10", "celeba"])
def test_neighbouring_steps_get_image_dependent_posteriors_of_their_own(make_cfg, dataset):
    """Every step's logits depend on the image in their own way: between two images, the difference of
    two neighbouring steps' logits changes (copying one map cell to a block of steps made it the same
    up to rounding: the colour encoder's 4 x 4 map on an 8 x 8 grid)."""
    cfg, model = tiny(make_cfg, dataset)
    model.eval()
    x, _ = fake_batch(cfg, b=2, seed=3)
    n = Grid.for_dataset(cfg.ds).n
    with torch.no_grad():
        logits = model.encoder(x)
    for a, b in ((0, 1), (0, n), (n + 1, n + 2)):   # right, below, and a pair inside the grid
        for head in logits:
            gap = head[:, b] - head[:, a]             # (2, ...) per image
            # relative to the gaps' size (rounding leaves ~1e-7 of it when a block shares one map cell)
            assert (gap[0] - gap[1]).abs().max() > 1e-3 * gap.abs().max(), (dataset, a, b)


def test_the_encoder_heads_are_mlps(make_cfg):
    cfg, model = tiny(make_cfg, "mnist", head_hidden=24)
    width = cfg.model.width
    a, b = torch.randn(2, width), torch.randn(2, width)
    for head, out in ((model.encoder.head_id, cfg.ds.bank_size), (model.encoder.head_loc, 36),
                      (model.encoder.head_is, 1)):
        with torch.no_grad():   # not affine: f(a) + f(b) - f(0) differs from f(a + b)
            assert not torch.allclose(head(a) + head(b) - head(torch.zeros(2, width)), head(a + b), atol=1e-4)
            assert head(a).shape[-1] == out   # a logit per part, per cell, or for drawing


def test_inverse_cdf_draw_never_returns_a_category_of_probability_zero():
    """u = 0 (torch.rand can return it) and u just below 1 pick the first / last category of positive
    probability, not category 0 / the last one."""
    from npdraw.models.prior import draw_from_uniforms
    ninf = float("-inf")
    logits = torch.tensor([[ninf, 0.0, 0.0, ninf], [-1e4, 0.0, -1e4, -1e4]])
    is_logits = torch.zeros(2)
    for u, expect in ((0.0, [1, 1]), (1 - 2 ** -24, [2, 1]), (0.3, [1, 1]), (0.7, [2, 1])):
        uniforms = torch.full((2, 3), u)
        z_id, z_loc, _ = draw_from_uniforms(logits, logits, is_logits, uniforms)
        assert z_id.tolist() == expect and z_loc.tolist() == expect, u


def test_parse_warm_up_replaces_only_id_and_location_of_the_chosen_images(make_cfg):
    """model.warmup: the images whose coin came up take the parse's z_id and z_loc; their z_is, and
    everything of the other images, is q's sample."""
    from npdraw.models.npdraw import relaxed_sample
    cfg, model = tiny(make_cfg, "mnist")
    x, parse = fake_batch(cfg, b=4)
    replace = torch.tensor([True, False, True, False])
    torch.manual_seed(5)
    q = model.encoder(x)
    z = relaxed_sample(q, 0.7, False)
    torch.manual_seed(5)
    canvas = model.terms(x, x, parse, 0.7, False, replace)["canvas"]
    ids, locs, _ = one_hots(*parse, cfg.ds.bank_size, Grid.for_dataset(cfg.ds).cells)
    swapped = model.canvas(ids, locs, z[2])
    sampled = model.canvas(*z)
    torch.testing.assert_close(canvas[replace], swapped[replace])
    torch.testing.assert_close(canvas[~replace], sampled[~replace])
    assert not torch.allclose(swapped[replace], sampled[replace])


def test_warm_up_schedule_and_variant_token(make_cfg, params):
    from npdraw.models.npdraw import warmup_probability
    from npdraw.workflow.resolve import resolve
    assert warmup_probability(0, 0.005) == 1.0
    assert warmup_probability(10, 0.005) == pytest.approx(math.exp(-0.005 * 10 * 11 / 2))
    assert warmup_probability(40, 0.005) < warmup_probability(20, 0.005) < warmup_probability(5, 0.005)
    assert resolve(params, variant="K6-warm").model.warmup is True
    assert resolve(params).model.warmup is False


def test_colour_samples_mean_is_the_top_components_mean_on_the_256_levels(make_cfg):
    cfg, model = tiny(make_cfg, "cifar10")
    model.eval()
    mean = model.sample(3, torch.Generator().manual_seed(0), colour="mean")
    torch.testing.assert_close(mean["images"], torch.round(mean["means"] * 255) / 255)
    drawn = model.sample(3, torch.Generator().manual_seed(0), colour="sample")
    torch.testing.assert_close(drawn["means"], mean["means"])    # same latents, same decoder output
    assert not torch.equal(drawn["images"], mean["images"])     # the logistic noise
    cfg, model = tiny(make_cfg, "mnist")
    binary = model.eval().sample(3, torch.Generator().manual_seed(0), colour="mean")
    assert set(binary["images"].unique().tolist()) <= {0.0, 1.0}   # binary data: always a Bernoulli draw
    assert ((binary["means"] > 0) & (binary["means"] < 1)).all()


def test_the_selector_picks_the_checkpoint_among_the_scored_epochs(make_cfg, tmp_path):
    """training.select_every = 2 over 5 epochs: epochs 2, 4 and the last are scored; the kept weights are
    those of the lowest score among them, whatever the validation ELBO says."""
    from npdraw.training.select import Selector
    cfg, model = tiny(make_cfg, "mnist", epochs=5, batch_size=40)
    cfg.training["select_every"] = 2
    grid = Grid.for_dataset(cfg.ds)
    images = {"train": mnist_like(80), "valid": mnist_like(40, seed=1)}
    parses = {k: parses_for(model, v, grid) for k, v in images.items()}
    scores, weights = iter([3.0, 1.0, 2.0]), {}

    def score(m):
        weights[len(weights) + 1] = m.decoder.out.weight.detach().clone()
        return next(scores)
    state = train_np(cfg, model.prior, images, parses, tmp_path / "m.pt", tmp_path / "m.r", torch.device("cpu"),
                        select=Selector("test rule", "valid_test", score))
    assert [h.get("valid_test") for h in state["history"]] == [None, 3.0, None, 1.0, 2.0]
    assert state["best_epoch"] == 4 and state["best"] == 1.0
    ckpt = torch.load(tmp_path / "m.pt", weights_only=True)
    assert ckpt["selected_by"] == "test rule" and ckpt["epoch"] == 4
    torch.testing.assert_close(ckpt["state_dict"]["decoder.out.weight"], weights[2], rtol=0, atol=0)


def test_fid_selector_scores_samples_against_the_validation_images(make_cfg):
    """The FID rule: samples of the model against fixed real images, lower for images like the real ones."""
    from npdraw.evaluation.features import FIDScore
    from npdraw.training.select import fid_selector
    torch.manual_seed(0)
    real = torch.bernoulli(torch.full((64, 1, 28, 28), 0.2))
    feature = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 8))
    feature.num_features = 8
    fid = FIDScore(feature, real)
    near, far = (torch.bernoulli(torch.full((64, 1, 28, 28), p)) for p in (0.2, 0.8))
    assert fid(near) < fid(far)
    cfg, model = tiny(make_cfg, "mnist")
    selector = fid_selector(fid, 16, seed=0, precision="fp32", colour="mean", features="test features")
    first, again = selector.score(model), selector.score(model)
    assert first == again and first > 0 and selector.key == "valid_fid" and "test features" in selector.rule
