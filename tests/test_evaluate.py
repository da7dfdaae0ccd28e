"""Importance-sampled NLL against an exactly computable marginal likelihood."""

import numpy as np
import pytest
import torch

from npdraw.evaluation.importance import importance_sampled, iwae_bound
from npdraw.models.npdraw import ModelConfig, NPDraw
from npdraw.models.prior import Prior, PriorConfig
from npdraw.parts.canvas import Grid


def toy_model(seed=0):
    """A 4x4 canvas with one 4x4 cell (T = 1) and M = 2 parts: three distinct latents
    (skip; draw part 0; draw part 1), so log p(x) can be enumerated exactly."""
    torch.manual_seed(seed)
    grid = Grid(4, 4, 1)
    prior = Prior(PriorConfig(parts=2, steps=1, cells=1, channels=1, side=4, width=8, layers=1, heads=2),
                  torch.rand(2, 1, 4, 4), grid)
    cfg = ModelConfig(channels=1, image_size=4, canvas_size=4, parts=2, cells=1, arch="small",
                      output="bernoulli", width=8)
    model = NPDraw(cfg, prior, grid).double().eval()
    with torch.no_grad():  # a deliberately poor proposal, so that the bound has room to tighten
        model.encoder.head_is[-1].weight.zero_()
        model.encoder.head_is[-1].bias.fill_(2.5)
        model.encoder.head_id[-1].weight.zero_()
        model.encoder.head_id[-1].bias.copy_(torch.tensor([2.0, -2.0]))
    return model


@torch.no_grad()
def exact_log_px(model, x):
    cases = [(0, False), (0, True), (1, True)]
    terms = []
    for part, draw in cases:
        z = (torch.full((len(x), 1), part), torch.zeros(len(x), 1, dtype=torch.long), torch.full((len(x), 1), draw))
        terms.append(model.output.log_prob(model.decoder(model.canvas(*z)), x) + model.prior.log_prob(*z)["total"])
    return torch.logsumexp(torch.stack(terms), 0)


def test_iwae_bound_of_equal_weights():
    w = torch.full((7, 3), -2.5)
    torch.testing.assert_close(iwae_bound(w), torch.full((3,), -2.5, dtype=torch.float64))


def test_single_sample_estimate_is_the_elbo():
    model = toy_model()
    x = torch.bernoulli(torch.full((6, 1, 4, 4), 0.4), generator=torch.Generator().manual_seed(1)).double()
    est = importance_sampled(model, x, samples=1, progress=False)
    np.testing.assert_allclose(est["nll_nats"], -est["elbo_nats"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(est["elbo_nats"], -(est["bce_nats"] + est["kl_nats"]), rtol=0, atol=1e-9)


@pytest.mark.slow
def test_bound_tightens_with_samples_and_stays_below_log_px():
    model = toy_model()
    x = torch.bernoulli(torch.full((4, 1, 4, 4), 0.4), generator=torch.Generator().manual_seed(2)).double()
    log_px = exact_log_px(model, x).numpy()
    repeats = 5000
    xs = x.repeat(repeats, 1, 1, 1)  # many independent estimates of the same four images
    bounds = {}
    for s in (1, 4, 16):
        est = -importance_sampled(model, xs, samples=s, batch_size=len(xs), seed=s, progress=False)["nll_nats"]
        bounds[s] = est.reshape(repeats, 4)
        # exp(bound) is an unbiased estimate of p(x) for every S: its mean recovers the exact likelihood.
        np.testing.assert_allclose(np.log(np.exp(bounds[s]).mean(0)), log_px, atol=0.1)
    means = {s: b.mean(0) for s, b in bounds.items()}
    assert (means[1] < means[4]).all() and (means[4] < means[16]).all()   # tightens with S
    assert (means[16] < log_px).all()                                    # a lower bound, in expectation
    assert (log_px - means[1] > 0.1).all()                               # the proposal is poor: a real gap


def test_generated_images_are_fp32_in_bf16(params):
    """Samples drawn under bf16 autocast come back as fp32 images in [0, 1] (pictures and FID read them)."""
    from benchmarks.bench_model import build
    from npdraw.evaluation.importance import generate
    from npdraw.models.pixelvae import PixelVAE, PixelVAEConfig
    for model in (build().eval(), PixelVAE(PixelVAEConfig(latent=4, pixelcnn_layers=1, width=8)).eval()):
        gen = generate(model, 3, seed=0, precision="bf16")
        assert gen["images"].dtype == torch.float32 and 0 <= gen["images"].min() <= gen["images"].max() <= 1
        assert gen["canvases"] is None or gen["canvases"].dtype == torch.float32


def test_streamed_nll_is_the_one_pass_nll_for_any_chunk():
    """S samples scored a few at a time (running log-sum-exp and sums) give the estimates of scoring
    them all at once: the PixelVAE's 5,000 samples stream with flat memory."""
    model = toy_model()
    x = torch.bernoulli(torch.full((7, 1, 4, 4), 0.4, dtype=torch.float64))
    whole = importance_sampled(model, x, 12, batch_size=4, seed=3, progress=False, chunk=12)
    for chunk in (1, 5):
        part = importance_sampled(model, x, 12, batch_size=4, seed=3, progress=False, chunk=chunk)
        for k in whole:
            np.testing.assert_allclose(part[k], whole[k], rtol=1e-12, atol=1e-10)


def test_samples_scored_together_give_the_same_estimates():
    """evaluate.samples_per_pass: k samples of a batch scored as one batch of k x B draw the same
    samples (the uniforms are taken sample after sample) and give the same estimates."""
    model = toy_model()
    x = torch.bernoulli(torch.full((6, 1, 4, 4), 0.4, dtype=torch.float64))
    one = importance_sampled(model, x, 12, batch_size=4, seed=3, progress=False)
    for per_pass in (5, 12):
        together = importance_sampled(model, x, 12, batch_size=4, seed=3, progress=False, per_pass=per_pass)
        for k in one:
            np.testing.assert_allclose(together[k], one[k], rtol=1e-10, atol=1e-9)
