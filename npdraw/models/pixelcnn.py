"""A small conditional gated PixelCNN over binary single-channel images (method §12).

p(x | h) = prod_i p(x_i | x_<i, h) in raster order, each factor a Bernoulli.
The conditioning h (B, cond, H, W) is a feature map from a decoder (PixelVAE's
upsampling decoder, or NP-DRAW's canvas decoder); it enters every gated layer
through a 1x1 convolution.  Layers (Gulrajani et al. 2017, MNIST):
  one 7x7 gated masked convolution of type A (the centre pixel excluded),
  N gated residual blocks of 5x5 masked convolutions of type B (centre
  included: it holds features of earlier pixels only),
  two 1x1 gated residual convolutions, and a 1x1 convolution to the logit.
A gated layer computes tanh(a) * sigmoid(b) from (a, b) = masked_conv(x) + 1x1(h).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from npdraw.compute.precision import fp32


class MaskedConv2d(nn.Conv2d):
    """A k x k convolution that sees only pixels before the centre in raster order (and the centre if
    `include_centre`).  Single-channel data: no channel-group masking is needed."""

    def __init__(self, c_in: int, c_out: int, k: int, include_centre: bool):
        super().__init__(c_in, c_out, k, padding=k // 2)
        mask = torch.ones(1, 1, k, k)
        c = k // 2
        mask[..., c, c + int(include_centre):] = 0
        mask[..., c + 1:, :] = 0
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)


class GatedLayer(nn.Module):
    def __init__(self, c_in: int, width: int, k: int, include_centre: bool, cond: int, residual: bool):
        super().__init__()
        self.conv = MaskedConv2d(c_in, 2 * width, k, include_centre)
        self.cond = nn.Conv2d(cond, 2 * width, 1)
        self.proj = nn.Conv2d(width, width, 1)
        self.residual = residual

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        a, b = (self.conv(x) + self.cond(h)).chunk(2, dim=1)
        y = self.proj(torch.tanh(a) * torch.sigmoid(b))
        return x + y if self.residual else y


class PixelCNN(nn.Module):
    """Logits of p(x_i = 1 | x_<i, h) for every pixel, in one teacher-forced pass."""

    def __init__(self, cond: int, width: int = 32, layers: int = 3):
        super().__init__()
        self.first = GatedLayer(1, width, 7, False, cond, residual=False)
        self.blocks = nn.ModuleList(GatedLayer(width, width, 5, True, cond, residual=True) for _ in range(layers))
        self.head = nn.ModuleList(GatedLayer(width, width, 1, True, cond, residual=True) for _ in range(2))
        self.out = nn.Conv2d(width, 1, 1)
        # How far (rows up, columns either way) an output pixel's inputs reach: the half-kernels summed.
        self.reach = 3 + 2 * layers

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        y = self.first(x, h)
        for layer in (*self.blocks, *self.head):
            y = layer(y, h)
        return self.out(y)


class PixelCNNBernoulli(nn.Module):
    """An output distribution (the interface of npdraw.models.npdraw.Bernoulli) whose parameters are the
    conditioning feature map h: log_prob teacher-forced, sample ancestral (H x W passes)."""

    def __init__(self, cond: int, width: int, layers: int):
        super().__init__()
        self.params = cond
        self.net = PixelCNN(cond, width, layers)

    def log_prob(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x | h) per image (B,), nats; x (B, 1, H, W) in {0, 1}."""
        logits = fp32(self.net(x, h))   # summed in fp32 whatever the precision of the pass
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)

    @torch.no_grad()
    def sample(self, h: torch.Tensor, generator=None, greedy: bool = False) -> torch.Tensor:
        """Exact ancestral sampling in raster order (uniforms from `generator`, on the CPU);
        greedy: each pixel set to its more probable value instead (a picture of the decoder).

        Pixel (r, c) depends only on rows r - reach .. r and columns c - reach .. c + reach, so each
        of the H x W passes runs the network on that window alone (exact: every feature on the
        path to (r, c) lies inside it; the window's own zero padding only touches features off that path).
        """
        b, _, height, width = h.shape
        reach = self.net.reach
        x = torch.zeros(b, 1, height, width, device=h.device, dtype=h.dtype)
        for r in range(height):
            r0 = max(0, r - reach)
            for c in range(width):
                c0, c1 = max(0, c - reach), min(width, c + reach + 1)
                logit = self.net(x[:, :, r0:r + 1, c0:c1], h[:, :, r0:r + 1, c0:c1])[:, 0, r - r0, c - c0]
                p = torch.sigmoid(logit)
                if greedy:
                    x[:, 0, r, c] = (p > 0.5).to(x.dtype)
                else:
                    u = torch.rand(b, generator=generator).to(p)
                    x[:, 0, r, c] = (u < p).to(x.dtype)
        return x

    def mean(self, h: torch.Tensor) -> torch.Tensor:
        """For pictures: the greedy decode (an autoregressive model has no cheap pixel-wise mean)."""
        return self.sample(h, greedy=True)
