"""PixelCNN decoders: causality, normalisation, exact sampling; PixelVAE; NP-DRAW with a PixelCNN decoder."""

import itertools
import math

import pytest
import torch

from npdraw.artifacts.errors import ParamsError
from npdraw.evaluation.importance import generate, importance_sampled
from npdraw.models.npdraw import ModelConfig, NPDraw
from npdraw.models.pixelcnn import MaskedConv2d, PixelCNN, PixelCNNBernoulli
from npdraw.models.pixelvae import PixelVAE, PixelVAEConfig
from npdraw.models.prior import Prior, PriorConfig
from npdraw.parts.canvas import Grid
from npdraw.workflow.resolve import resolve


@pytest.mark.parametrize("layers", [0, 2])
def test_pixelcnn_output_never_depends_on_the_pixel_itself_or_later_ones(layers):
    """Raster order: d logit_i / d x_j = 0 for every j >= i, checked by gradients at every pixel i."""
    torch.manual_seed(0)
    side = 8
    net = PixelCNN(cond=3, width=8, layers=layers).double()
    h = torch.randn(1, 3, side, side, dtype=torch.float64)
    for i in range(side * side):
        x = torch.rand(1, 1, side, side, dtype=torch.float64, requires_grad=True)
        net(x, h)[0, 0].flatten()[i].backward()
        grad = x.grad.flatten().abs()
        assert grad[i:].max() == 0, f"pixel {i} sees pixels {torch.nonzero(grad[i:]).flatten() + i}"
        if i % side:      # not vacuous: it does see its left neighbour ...
            assert grad[i - 1] > 0
        if i >= side:     # ... and the pixel above
            assert grad[i - side] > 0


def test_masked_convolution_masks():
    a, b = MaskedConv2d(1, 1, 3, include_centre=False).mask[0, 0], MaskedConv2d(1, 1, 3, include_centre=True).mask[0, 0]
    assert a.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert b.tolist() == [[1, 1, 1], [1, 1, 0], [0, 0, 0]]


def test_pixelcnn_likelihood_sums_to_one_over_every_2x2_image():
    torch.manual_seed(1)
    out = PixelCNNBernoulli(cond=4, width=8, layers=2).double()
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)), dtype=torch.float64).view(16, 1, 2, 2)
    h = torch.randn(1, 4, 2, 2, dtype=torch.float64).expand(16, -1, -1, -1)
    with torch.no_grad():
        total = torch.logsumexp(out.log_prob(h, images), 0)
    assert total.item() == pytest.approx(0.0, abs=1e-12)


def test_windowed_ancestral_sampler_equals_full_passes():
    """The sampler runs the network on a window around each pixel; full-image passes give the same draw."""
    torch.manual_seed(2)
    out = PixelCNNBernoulli(cond=3, width=8, layers=2)
    h = torch.randn(4, 3, 16, 16)
    fast = out.sample(h, torch.Generator().manual_seed(7))
    g, x = torch.Generator().manual_seed(7), torch.zeros(4, 1, 16, 16)
    with torch.no_grad():
        for r in range(16):
            for c in range(16):
                p = torch.sigmoid(out.net(x, h)[:, 0, r, c])
                x[:, 0, r, c] = (torch.rand(4, generator=g) < p).float()
    assert torch.equal(fast, x)
    assert set(fast.unique().tolist()) <= {0.0, 1.0}


def test_ancestral_samples_follow_the_model():
    """On a 1x2 space the sampled frequencies match the model's exact probabilities."""
    torch.manual_seed(3)
    out = PixelCNNBernoulli(cond=2, width=4, layers=1).double()
    h = torch.randn(1, 2, 1, 2, dtype=torch.float64)
    images = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=torch.float64).view(4, 1, 1, 2)
    with torch.no_grad():
        exact = out.log_prob(h.expand(4, -1, -1, -1), images).exp()
        draws = out.sample(h.expand(20000, -1, -1, -1), torch.Generator().manual_seed(0)).view(-1, 2)
    freq = torch.stack([((draws == images[k].view(2)).all(1)).double().mean() for k in range(4)])
    assert torch.allclose(freq, exact, atol=0.015)


@pytest.mark.slow
def test_pixelvae_shapes_bounds_and_learning():
    torch.manual_seed(4)
    model = PixelVAE(PixelVAEConfig(latent=8, pixelcnn_layers=1, width=8))
    x = torch.bernoulli(torch.rand(6, 1, 28, 28) * 0.3)
    mu, log_var = model.encode(x)
    assert mu.shape == log_var.shape == (6, 8)
    assert model.decode(mu).shape == (6, 32, 28, 28)   # method §12: 28x28x32 into the PixelCNN
    est = importance_sampled(model, x, samples=8, batch_size=3, seed=0, progress=False)
    assert (est["nll_nats"] <= -est["elbo_nats"] + 1e-9).all()     # the IWAE bound is tighter than the ELBO
    # The analytic KL of `terms` is the mean of log q - log p over samples.
    w = model.log_weights(x[:1], x[:1], 1000, torch.Generator().manual_seed(1))
    mc = (w["log_qz"] - w["log_pz"]).mean().item()
    assert model.terms(x[:1])["kl"].item() == pytest.approx(mc, rel=0.05, abs=0.2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        t = model.terms(x)
        loss = -(t["log_px"] - t["kl"]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 50
    gen = generate(model, 2, seed=0, batch_size=2)   # exact sampling: 784 PixelCNN passes per batch
    assert gen["images"].shape == (2, 1, 28, 28) and gen["canvases"] is None


def npdraw_with_pixelcnn():
    grid = Grid(28, 7, 1)
    prior = Prior(PriorConfig(parts=6, steps=grid.cells, cells=grid.cells, channels=1, side=28, width=16, layers=1,
                              heads=2), torch.rand(6, 1, 7, 7), grid)
    cfg = ModelConfig(channels=1, image_size=28, canvas_size=28, parts=6, cells=grid.cells, arch="small",
                      output="bernoulli", width=16, decoder="pixelcnn", pixelcnn_layers=1, pixelcnn_width=8)
    return NPDraw(cfg, prior, grid)


def test_npdraw_with_a_pixelcnn_decoder_trains_and_is_scored_by_the_same_code():
    torch.manual_seed(5)
    model = npdraw_with_pixelcnn()
    assert isinstance(model.output, PixelCNNBernoulli)
    decoder_params = {id(p) for p in model.decoder_parameters()}
    assert all(id(p) in decoder_params for p in model.output.parameters())   # trained with the decoder
    x = torch.bernoulli(torch.rand(4, 1, 28, 28) * 0.3)
    parse = (torch.zeros(4, 16, dtype=torch.long), torch.arange(16).expand(4, 16), torch.zeros(4, 16, dtype=torch.bool))
    terms = model.terms(x, x, parse, tau=1.0, hard_id=False)
    (-(terms["log_px"] - terms["kl"]).mean()).backward()
    assert model.output.net.out.weight.grad.abs().sum() > 0
    assert math.isfinite(terms["log_px"].sum().item())
    est = importance_sampled(model, x, samples=3, batch_size=4, seed=0, progress=False)
    assert (est["nll_nats"] <= -est["elbo_nats"] + 1e-9).all()
    gen = generate(model, 3, seed=0)
    assert gen["images"].shape == (3, 1, 28, 28) and gen["canvases"].shape == (3, 1, 28, 28)


@pytest.mark.parametrize("variant, system, decoder", [("pixelvae", "pixelvae", "factorised"),
                                                      ("pcnn", "npdraw", "pixelcnn"),
                                                      ("K6-pcnn", "npdraw", "pixelcnn")])
def test_variant_tokens(params, variant, system, decoder):
    cfg = resolve(params, dataset="mnist", profile="smoke", variant=variant)
    assert (cfg.system, cfg.model.decoder) == (system, decoder)


@pytest.mark.parametrize("variant", ["pixelvae", "pcnn"])
def test_pixelcnn_variants_refuse_colour_data(params, variant):
    with pytest.raises(ParamsError, match="cifar10"):
        resolve(params, dataset="cifar10", profile="smoke", variant=variant)


def test_decoder_is_appendix_e1():
    """The PixelVAE paper's MNIST decoder (appendix E.1): 4x4x64 -> two 3x3 convs -> transposed conv to
    8x8x64 -> a 3x3 conv at 8x8, then the crop to 7x7 -> transposed conv to 14x14x32 (32 channels in the
    middle one) -> 3x3 conv -> transposed conv to 28x28x32 -> a final 3x3 conv at 28x28."""
    model = PixelVAE(PixelVAEConfig(latent=4, pixelcnn_layers=1, width=8))
    seen = []
    layers = [*model.dec_a, *model.dec_b]
    for layer in layers:
        layer.register_forward_hook(lambda mod, inp, out: seen.append(tuple(out.shape[1:])))
    assert model.decode(torch.zeros(2, 4)).shape == (2, 32, 28, 28)
    assert seen == [(64, 4, 4), (64, 4, 4), (64, 8, 8), (64, 8, 8), (32, 14, 14), (32, 14, 14), (32, 28, 28),
                    (32, 28, 28)]   # the three upsamplings and the convolutions between them, at these sizes
