"""Benchmark: the library's hand-written paths against plain PyTorch, at MNIST training settings.

Each line times one operation of the model's training step both ways (median of --repeats calls, after
two warm-up calls), forward and backward where the step runs both, in the precision and layout
params.yaml selects (bf16 autocast and channels_last by default): the decoder's 14 -> 28 transposed
convolution (npdraw.models.layers.ConvTranspose2d), the token CNN's first convolution over the
5,400 token images of a batch of 150 and the decoder's over the canvases (StridedConv2d) and the rest
of the frozen token CNN (one matmul, npdraw.models.prior.TokenEncoder), the prefix canvases
(npdraw.parts.canvas.prefix_cells against torch.cummax), the final canvas (render_relaxed as autocast
runs it against the model's fp32 rendering, NPDraw.canvas) and the Gumbel-softmax noise
(npdraw.models.npdraw.gumbel_softmax).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from benchmarks.bench_model import build
from benchmarks.common import add_compute_options, compute_choice, machine
from npdraw.compute.precision import autocast, layout, use_layout
from npdraw.models.layers import ConvTranspose2d, StridedConv2d
from npdraw.models.npdraw import gumbel_softmax
from npdraw.models.prior import PriorConfig, TokenEncoder
from npdraw.parts.canvas import Grid, location_weights, prefix_cells, render_relaxed, step_parts

B, T, M, GRID = 150, 36, 50, Grid(28, 5, 1)      # batch, steps, parts, canvas: MNIST settings


def cummax_prefix(bank, z_id, z_loc, z_is, grid: Grid) -> torch.Tensor:
    """The canvases before each step, (B, T, T_c, D), by torch.cummax over the step axis (moved last,
    where cummax is 4x faster on a CPU): the formulation prefix_cells replaced, with the same values and
    the gradient rule prefix_cells keeps."""
    parts = step_parts(bank, z_id, z_is)
    contrib = location_weights(z_loc, grid.cells, parts.dtype).unsqueeze(-1) * parts.unsqueeze(2)
    b, t = contrib.shape[:2]
    steps_last = contrib.reshape(b, t, -1).transpose(1, 2).contiguous()              # (B, T_c * D, T)
    after = steps_last.cummax(dim=-1).values.transpose(1, 2).reshape(contrib.shape)
    return torch.cat([torch.zeros_like(after[:, :1]), after[:, :-1]], dim=1)


def timed(fn, repeats: int) -> float:
    """Median seconds of fn() over `repeats` calls, after two."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def backward_of(forward, precision: str, *inputs):
    """A call that runs forward(*inputs) under the precision's autocast and back-propagates a sum."""
    def call():
        with autocast("cpu", precision):
            out = forward(*inputs)
        out.float().sum().backward()
    return call


def cases(precision: str, cl: bool):
    """(label, plain PyTorch call, the library's call) for each operation."""
    torch.manual_seed(0)
    h14 = layout(torch.randn(B, 128, 14, 14), cl).requires_grad_()
    plain_up, ours_up = nn.ConvTranspose2d(128, 128, 4, 2, 1), ConvTranspose2d(128, 128, 4, 2, 1)
    ours_up.load_state_dict(plain_up.state_dict())
    yield ("decoder's transposed conv 14 -> 28 (128 channels), fwd + bwd",
           backward_of(use_layout(plain_up, cl), precision, h14), backward_of(use_layout(ours_up, cl), precision, h14))

    tokens = layout(torch.rand(B * T, 2, 28, 28), cl).requires_grad_()
    plain_c1, ours_c1 = nn.Conv2d(2, 16, 3, 2, 1), StridedConv2d(2, 16)
    ours_c1.load_state_dict(plain_c1.state_dict())
    for layer in (plain_c1, ours_c1):
        use_layout(layer, cl).requires_grad_(False)
    yield ("token CNN's first conv (5,400 tokens), fwd + input gradient",
           backward_of(plain_c1, precision, tokens), backward_of(ours_c1, precision, tokens))

    canvases = layout(torch.rand(B, 1, 28, 28), cl).requires_grad_()
    plain_d1, ours_d1 = nn.Conv2d(1, 128, 3, 2, 1), StridedConv2d(1, 128)
    ours_d1.load_state_dict(plain_d1.state_dict())
    yield ("decoder's first conv (150 canvases, 1 -> 128 channels), fwd + bwd",
           backward_of(use_layout(plain_d1, cl), precision, canvases),
           backward_of(use_layout(ours_d1, cl), precision, canvases))

    enc = use_layout(TokenEncoder(PriorConfig(parts=M, steps=T, cells=T, channels=1, side=28)), cl)
    enc.requires_grad_(False)
    hidden = layout(torch.rand(B * T, 16, 14, 14), cl).requires_grad_()
    yield ("frozen token CNN after conv1 (conv2, flatten, proj), fwd + input gradient",
           backward_of(lambda h: enc.proj(enc.conv2(h).flatten(1)), precision, hidden),
           backward_of(lambda h: F.linear(h.permute(0, 2, 3, 1).flatten(1), *enc.composed(h.shape[1:], h.device)),
                       precision, hidden))

    bank = torch.rand(M, 1, 5, 5) * (torch.rand(M, 1, 5, 5) > 0.4)
    leaves = [torch.randn(B, T, M, requires_grad=True), torch.randn(B, T, GRID.cells, requires_grad=True),
              torch.randn(B, T, requires_grad=True)]

    def latents():
        return (gumbel_softmax(leaves[0], 0.7, False), gumbel_softmax(leaves[1], 0.7, True), torch.sigmoid(leaves[2]))
    yield ("prefix canvases (150 x 36 steps, relaxed latents), fwd + bwd",
           backward_of(lambda: cummax_prefix(bank, *latents(), GRID), precision),
           backward_of(lambda: prefix_cells(bank, *latents(), GRID), precision))
    model = build()
    model.prior.bank.copy_(bank)
    yield ("final canvas (150 x 36 steps, relaxed latents), fwd + bwd",
           backward_of(lambda: render_relaxed(bank, *latents(), GRID), precision),
           backward_of(lambda: model.canvas(*latents()), precision))

    logits = torch.randn(B, T, M)
    yield ("Gumbel-softmax sample of the part logits (150 x 36 x 50), forward",
           lambda: F.gumbel_softmax(logits, tau=0.7), lambda: gumbel_softmax(logits, 0.7, False))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=10)
    add_compute_options(p)
    args = p.parse_args()
    precision, cl, _ = compute_choice(args)
    print(f"machine: {machine()}; {precision}, {'channels_last' if cl else 'NCHW'}")
    for label, plain, ours in cases(precision, cl):
        a, b = timed(plain, args.repeats), timed(ours, args.repeats)
        print(f"{label}: PyTorch {a * 1e3:.1f} ms, npdraw {b * 1e3:.1f} ms ({a / b:.2f}x)")


if __name__ == "__main__":
    main()
