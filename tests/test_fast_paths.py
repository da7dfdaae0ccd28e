"""The hand-written fast paths compute what the plain PyTorch formulation computes: values and gradients."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from functorch.compile import make_boxed_func
from torch._dynamo.backends.common import aot_autograd

from benchmarks.bench_layers import cummax_prefix
from benchmarks.bench_model import build
from npdraw.compute.precision import autocast, layout
from npdraw.models.layers import ConvTranspose2d, StridedConv2d
from npdraw.models.npdraw import gumbel_softmax
from npdraw.models.prior import PriorConfig, TokenEncoder
from npdraw.parts.canvas import Grid, prefix_cells, render, render_relaxed, token_images


def relaxed_latents(b=6, t=36, parts=7, cells=36, seed=0, dtype=torch.float64):
    """Leaves (id, loc, is logits) and the relaxed latents the model trains with: a soft identity, a
    straight-through one-hot location, a soft presence."""
    g = torch.Generator().manual_seed(seed)
    leaves = [torch.randn(b, t, parts, generator=g, dtype=dtype).requires_grad_(),
              torch.randn(b, t, cells, generator=g, dtype=dtype).requires_grad_(),
              torch.randn(b, t, generator=g, dtype=dtype).requires_grad_()]
    loc_soft = leaves[1].softmax(-1)
    loc = F.one_hot(loc_soft.argmax(-1), cells).to(dtype) - loc_soft.detach() + loc_soft
    return leaves, (leaves[0].softmax(-1), loc, torch.sigmoid(leaves[2]))


def test_prefix_cells_match_the_cummax_formulation():
    """Values exactly, gradients to rounding, with ties everywhere (blank cells; parts with zero pixels):
    the gradient of a tied maximum goes to the latest step, as torch.cummax's."""
    grid = Grid(28, 5, 1)
    g = torch.Generator().manual_seed(1)
    bank = (torch.rand(7, 1, 5, 5, generator=g) * (torch.rand(7, 1, 5, 5, generator=g) > 0.4)).double()
    leaves, z = relaxed_latents()
    ours, ref = prefix_cells(bank, *z, grid), cummax_prefix(bank, *z, grid)
    assert torch.equal(ours, ref)
    weights = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    got = torch.autograd.grad((ours * weights).sum(), leaves, retain_graph=True)
    want = torch.autograd.grad((ref * weights).sum(), leaves)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    with torch.no_grad():
        assert torch.equal(prefix_cells(bank, *z, grid), ref)


def test_model_canvas_is_rendered_in_fp32_under_autocast():
    """Relaxed latents: render_relaxed's fp32 canvas, gradients included, whatever the autocast; hard
    latents: render()'s canvas, the same as their one-hots give."""
    model = build()
    leaves, z = relaxed_latents(parts=50, dtype=torch.float32)
    with autocast("cpu", "bf16"):
        canvas = model.canvas(*z)
    want = render_relaxed(model.bank, *z, model.grid)
    assert canvas.dtype == torch.float32 and torch.equal(canvas, want)
    w = torch.randn(want.shape)
    got = torch.autograd.grad((canvas * w).sum(), leaves, retain_graph=True)
    for a, b in zip(got, torch.autograd.grad((want * w).sum(), leaves)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    g = torch.Generator().manual_seed(3)
    z_id, z_loc = torch.randint(0, 50, (6, 36), generator=g), torch.randint(0, 36, (6, 36), generator=g)
    z_is = torch.rand(6, 36, generator=g) < 0.5
    with autocast("cpu", "bf16"):
        hard = model.canvas(z_id, z_loc, z_is)
    one_hot = render_relaxed(model.bank, F.one_hot(z_id, 50).float(), F.one_hot(z_loc, 36).float(), z_is.float(),
                             model.grid)
    assert torch.equal(hard, render(model.bank, z_id, z_loc, z_is, model.grid)) and torch.equal(hard, one_hot)


def test_token_images_are_the_same_in_both_layouts():
    grid = Grid(28, 5, 1)                     # padded to 30: the crop is exercised
    g = torch.Generator().manual_seed(2)
    canvas, drew = torch.rand(4, 36, 25, generator=g), F.one_hot(torch.tensor([0, 7, 30, 35]), 36).float()
    cl, nchw = token_images(canvas, drew, grid, True), token_images(canvas, drew, grid, False)
    assert cl.is_contiguous(memory_format=torch.channels_last) and nchw.is_contiguous()
    assert torch.equal(cl, nchw) and cl.shape == (4, 2, 28, 28)
    assert torch.equal(nchw[:, 1].sum((1, 2)), torch.tensor([16.0, 25.0, 16.0, 16.0]))  # corner cells lose the pad


@pytest.mark.parametrize("trainable", [False, True])
@pytest.mark.parametrize("c_in, side, channels_last", [(2, 28, False), (2, 28, True), (4, 32, True), (1, 6, False)])
def test_strided_conv_matches_conv2d(trainable, c_in, side, channels_last):
    """Outputs and every gradient equal nn.Conv2d's (fp64), for the MNIST and the colour token images
    and a small one, in either layout; the weight trains or is frozen."""
    torch.manual_seed(0)
    ours, ref = StridedConv2d(c_in, 16).double(), nn.Conv2d(c_in, 16, 3, 2, 1).double()
    ref.load_state_dict(ours.state_dict())
    for p in (*ours.parameters(), *ref.parameters()):
        p.requires_grad_(trainable)
    x = layout(torch.randn(5, c_in, side, side, dtype=torch.float64), channels_last).requires_grad_()
    y_ours, y_ref = ours(x), ref(x)
    torch.testing.assert_close(y_ours, y_ref, rtol=0, atol=0)
    w = torch.randn_like(y_ref)
    wrt = [x, *ours.parameters()] if trainable else [x]
    got = torch.autograd.grad((y_ours * w).sum(), wrt)
    want = torch.autograd.grad((y_ref * w).sum(), [x, *ref.parameters()] if trainable else [x])
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_strided_conv_traces_under_torch_compile():
    """The phase-convolution gradient traces as one graph under torch.compile (AOTAutograd; inductor's
    code generation is left out to keep the test fast) and gives the eager values and input gradient."""
    torch.manual_seed(0)
    layer = StridedConv2d(2, 16).double().requires_grad_(False)
    x = torch.randn(3, 2, 8, 8, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 16, 4, 4, dtype=torch.float64)
    backward_graphs = []

    def keep_backward(gm, _):
        backward_graphs.append(gm.code)
        return make_boxed_func(gm.forward)
    backend = aot_autograd(fw_compiler=lambda gm, _: make_boxed_func(gm.forward), bw_compiler=keep_backward)
    torch._dynamo.reset()
    traced = torch.compile(layer, backend=backend, fullgraph=True)
    y_eager, y_traced = layer(x), traced(x)
    torch.testing.assert_close(y_traced, y_eager, rtol=0, atol=0)
    g_eager, = torch.autograd.grad((y_eager * w).sum(), x)
    g_traced, = torch.autograd.grad((y_traced * w).sum(), x)
    torch.testing.assert_close(g_traced, g_eager, rtol=1e-12, atol=1e-12)
    assert len(backward_graphs) == 1   # one graph: fullgraph tracing did not break at the custom gradient


def test_strided_conv_in_bf16_is_as_accurate_as_the_plain_conv():
    """Under bf16 autocast (channels_last) the input gradient, summed in fp32 and rounded once, is as
    close to the exact one as oneDNN's."""
    torch.manual_seed(0)
    ours, ref = StridedConv2d(2, 16), nn.Conv2d(2, 16, 3, 2, 1)
    ref.load_state_dict(ours.state_dict())
    for layer in (ours, ref):
        layer.requires_grad_(False).to(memory_format=torch.channels_last)
    x = torch.rand(64, 2, 28, 28).bfloat16().contiguous(memory_format=torch.channels_last)
    w = torch.randn(64, 16, 14, 14)

    def input_grad(layer):
        xi = x.clone().requires_grad_()
        with autocast("cpu", "bf16"):
            y = layer(xi)
        return torch.autograd.grad((y.float() * w).sum(), xi)[0].double()

    xd = x.double().requires_grad_()    # exact: the bf16 weight and the bf16 gradient reaching the layer
    exact = torch.autograd.grad((F.conv2d(xd, ref.weight.bfloat16().double(), None, 2, 1)
                                 * w.bfloat16().double()).sum(), xd)[0]
    err_ours, err_ref = [(input_grad(layer) - exact).abs().mean().item() for layer in (ours, ref)]
    assert 0 < err_ours <= 1.05 * err_ref


def test_conv_transpose_matches_the_plain_layer():
    torch.manual_seed(0)
    ours, ref = ConvTranspose2d(8, 6, 4, 2, 1).double(), nn.ConvTranspose2d(8, 6, 4, 2, 1).double()
    assert ours.state_dict().keys() == ref.state_dict().keys()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(3, 8, 7, 7, dtype=torch.float64, requires_grad=True)
    y_ours, y_ref = ours(x), ref(x)
    torch.testing.assert_close(y_ours, y_ref, rtol=1e-12, atol=1e-12)
    w = torch.randn_like(y_ref)
    got = torch.autograd.grad((y_ours * w).sum(), [x, *ours.parameters()])
    want = torch.autograd.grad((y_ref * w).sum(), [x, *ref.parameters()])
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_frozen_token_encoder_is_the_same_function():
    """With its parameters frozen and an input that needs a gradient (model training), the token CNN
    applies conv2 and proj as one matmul: the same outputs and input gradient; loading other weights
    rebuilds that matmul."""
    torch.manual_seed(0)
    cfg = PriorConfig(parts=5, steps=36, cells=36, channels=1, side=28)
    enc = TokenEncoder(cfg).double()
    x = torch.rand(4, 2, 28, 28, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, cfg.width, dtype=torch.float64)
    y_plain = enc(x)
    g_plain = torch.autograd.grad((y_plain * w).sum(), x)[0]
    enc.requires_grad_(False)
    enc(x)   # the first call composes conv2 and proj, later ones reuse the composition
    y_fast = enc(x)
    torch.testing.assert_close(y_fast, y_plain, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.autograd.grad((y_fast * w).sum(), x)[0], g_plain, rtol=1e-12, atol=1e-12)
    other = TokenEncoder(cfg).double()
    enc.load_state_dict(other.state_dict())
    torch.testing.assert_close(enc(x), other(x), rtol=1e-12, atol=1e-12)


def test_gumbel_softmax_draws_the_softmax():
    """Hard draws are one-hots whose frequencies are the softmax's probabilities, with the soft sample's
    gradient (straight through)."""
    torch.manual_seed(0)
    logits = torch.tensor([1.0, 0.0, -1.0, 2.0]).repeat(40000, 1).requires_grad_()
    hard = gumbel_softmax(logits, 0.5, True)
    assert torch.equal(hard.detach().sum(-1), torch.ones(40000)) and set(hard.detach().unique().tolist()) == {0.0, 1.0}
    torch.testing.assert_close(hard.detach().mean(0), logits[0].detach().softmax(-1), rtol=0, atol=0.01)
    torch.manual_seed(1)
    soft = gumbel_softmax(logits, 0.5, False)
    torch.manual_seed(1)
    hard = gumbel_softmax(logits, 0.5, True)
    w = torch.randn(4)
    torch.testing.assert_close(torch.autograd.grad((hard * w).sum(), logits)[0],
                               torch.autograd.grad((soft * w).sum(), logits)[0])
