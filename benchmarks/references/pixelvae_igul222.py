"""A PyTorch port, written for this project, of the PixelVAE paper's own MNIST code (igul222/PixelVAE,
Theano: mnist_pixelvae_train.py with lib/ops), to check the pipeline's convolutional VAE and PixelVAE
against (benchmarks/baseline_references.py).

What is kept of the reference, and where it differs from npdraw.models.vae / pixelvae:
- its layers and their order (Enc.1-8, Enc.Out; Dec.Inp, Dec.1-8 with the 8 -> 7 crop; 3x3 transposed
  convolutions of stride 2 where the pipeline's take 4x4), the encoder's interleaved (mu, log sigma);
- its initialisation (lib/ops: uniform weights, std sqrt(4 / (fan_in + fan_out)) for a convolution into a
  nonlinearity, halved fans for masked ones, sqrt(2 / (fan_in + fan_out)) into a logit, 2 sqrt(2 / (c_in
  k^2)) for a transposed convolution, sqrt(1 / fan_in) for a linear layer; zero biases) and the weight
  normalisation the training script switches on for every layer;
- its PixelCNN ('upsample_z_conv': the images concatenated with the decoder's features, a 7x7 gated layer
  with vertical and horizontal stacks, `layers` 5x5 ones, two 1x1 gated layers, a 1x1 conv to the logit);
  the conv VAE is the same decoder ending in that last 1x1 conv on the features, without the PixelCNN;
- its objective: per image BCE + alpha KL with alpha = min(1, step / kl_warmup) (KL annealing, 10,000 steps in
  the script), Adam 1e-3.  benchmarks/baseline_references.py switches the annealing off (kl_warmup 0): every
  system there trains on the ELBO from its first step, as the pipeline trains every system.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import weight_norm

ALPHA_ITERS = 10_000   # steps of the KL weight's linear warm-up (the script's --alpha_iters default)


def _uniform(shape, std: float) -> torch.Tensor:
    return torch.empty(shape).uniform_(-std * math.sqrt(3), std * math.sqrt(3))


class Conv(nn.Module):
    """lib.ops.conv2d.Conv2D: 'half' padding, optional causal mask ('a', 'b', 'hstack_a', 'hstack',
    'vstack'), weight-normalised, zero bias."""

    def __init__(self, c_in: int, c_out: int, k: int | tuple[int, int], stride: int = 1, he: bool = True,
                 mask: str | None = None):
        super().__init__()
        kh, kw = (k, k) if isinstance(k, int) else k
        fan_in, fan_out = c_in * kh * kw, c_out * kh * kw
        if mask is not None:   # "only approximately correct", as the reference says
            fan_in, fan_out = fan_in / 2, fan_out / 2
        self.conv = nn.Conv2d(c_in, c_out, (kh, kw), stride, (kh // 2, kw // 2))
        with torch.no_grad():
            std = math.sqrt((4.0 if he else 2.0) / (fan_in + fan_out))
            self.conv.weight.copy_(_uniform(self.conv.weight.shape, std))
            self.conv.bias.zero_()
        m = torch.ones(c_out, c_in, kh, kw)
        cr, cc = kh // 2, kw // 2
        if mask is not None:
            if cr == 0:
                m[:, :, :, cc + 1:] = 0
            elif cc == 0:
                m[:, :, cr + 1:, :] = 0
            else:
                m[:, :, cr + 1:, :] = 0
                m[:, :, cr, cc + 1:] = 0
            if mask in ("a", "hstack_a"):   # one channel: the centre itself is excluded
                m[:, :, cr, cc] = 0
            if mask == "vstack":
                m[:, :, cr, :] = 1
        self.register_buffer("mask", m)
        self.conv = weight_norm(self.conv, dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.conv.weight * self.mask, self.conv.bias, self.conv.stride, self.conv.padding)


class Deconv(nn.Module):
    """lib.ops.deconv2d.Deconv2D: a 3x3 transposed convolution doubling the side, weight-normalised."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(c_in, c_out, 3, 2, 1, output_padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(_uniform(self.conv.weight.shape, 2 * math.sqrt(2.0 / (c_in * 9))))
            self.conv.bias.zero_()
        self.conv = weight_norm(self.conv, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def linear(c_in: int, c_out: int) -> nn.Module:
    """lib.ops.linear.Linear ('lecun' for a non-square map), weight-normalised, zero bias."""
    layer = nn.Linear(c_in, c_out)
    with torch.no_grad():
        layer.weight.copy_(_uniform(layer.weight.shape, math.sqrt(1.0 / c_in)))
        layer.bias.zero_()
    return weight_norm(layer, dim=0)


def gate(x: torch.Tensor) -> torch.Tensor:
    """PixCNNGate: tanh of the even channels times sigmoid of the odd ones."""
    return torch.tanh(x[:, ::2]) * torch.sigmoid(x[:, 1::2])


class Stacks(nn.Module):
    """next_stacks: one gated layer of vertical and horizontal stacks."""

    def __init__(self, c_in: int, dim: int, k: int, hstack: str, residual: bool):
        super().__init__()
        self.v = Conv(c_in, 2 * dim, k, mask="vstack")
        self.v2h = Conv(2 * dim, 2 * dim, 1)
        self.h = Conv(c_in, 2 * dim, (1, k), mask=hstack)
        self.h2h = Conv(dim, dim, 1)
        self.residual = residual

    def forward(self, xv: torch.Tensor, xh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.v(F.pad(xv, (0, 0, 1, 0)))                    # (B, 2D, H + 1, W): one row padded on top
        h = self.h2h(gate(self.h(xh) + self.v2h(v[:, :, :-1])))
        return gate(v)[:, :, 1:], (h + xh if self.residual else h)


class ReferenceVAE(nn.Module):
    """The reference's encoder and upsampling decoder; `pixelcnn_layers` None: the conv VAE (a 1x1 conv to
    the logit on the decoder's features), else the PixelVAE with that many 5x5 gated layers."""

    def __init__(self, latent: int = 32, pixelcnn_layers: int | None = None, dim_pix: int = 32,
                 kl_warmup: int = ALPHA_ITERS):
        super().__init__()
        self.kl_warmup = kl_warmup
        d1, d2, d3, d4 = 32, 32, 64, 64
        self.latent = latent
        relu = nn.ReLU()
        self.enc_a = nn.Sequential(Conv(1, d1, 3), relu, Conv(d1, d2, 3, 2), relu, Conv(d2, d2, 3), relu,
                                   Conv(d2, d3, 3, 2), relu)
        self.enc_b = nn.Sequential(Conv(d3, d3, 3), relu, Conv(d3, d4, 3, 2), relu, Conv(d4, d4, 3), relu,
                                   Conv(d4, d4, 3), relu)
        self.enc_out = linear(4 * 4 * d4, 2 * latent)
        self.dec_in = linear(latent, 4 * 4 * d4)
        self.dec_a = nn.Sequential(Conv(d4, d4, 3), relu, Conv(d4, d4, 3), relu, Deconv(d4, d3), relu,
                                   Conv(d3, d3, 3), relu)
        self.dec_b = nn.Sequential(Deconv(d3, d2), relu, Conv(d2, d2, 3), relu, Deconv(d2, d1), relu,
                                   Conv(d1, d1, 3), relu)
        self.pixelcnn = pixelcnn_layers is not None
        if self.pixelcnn:
            self.first = Stacks(1 + d1, dim_pix, 7, "hstack_a", residual=False)
            self.blocks = nn.ModuleList(Stacks(dim_pix, dim_pix, 5, "hstack", residual=True)
                                        for _ in range(pixelcnn_layers))
            self.out1, self.out2 = Conv(dim_pix, 2 * d1, 1), Conv(d1, 2 * d1, 1)
        self.out3 = Conv(d1, 1, 1, he=False)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.pad(self.enc_a(x), (0, 1, 0, 1))                          # 7x7 -> 8x8
        out = self.enc_out(self.enc_b(h).flatten(1))
        return out[:, ::2], out[:, 1::2]                                # mu, log sigma

    def logits(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        h = self.dec_a(F.relu(self.dec_in(z)).view(-1, 64, 4, 4))[..., :7, :7]
        h = self.dec_b(h)                                               # (B, 32, 28, 28)
        if self.pixelcnn:
            both = torch.cat([x, h], 1)
            xv, xh = self.first(both, both)
            for block in self.blocks:
                xv, xh = block(xv, xh)
            h = gate(self.out2(gate(self.out1(xh))))
        return self.out3(h)

    def terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per image: log p(x|z) of one reparameterised z and the analytic KL to N(0, I), nats."""
        mu, log_sigma = self.encode(x)
        z = mu + torch.exp(log_sigma) * torch.randn_like(mu)
        log_px = -F.binary_cross_entropy_with_logits(self.logits(z, x), x, reduction="none").flatten(1).sum(1)
        kl = (0.5 * (mu ** 2 + torch.exp(2 * log_sigma) - 1) - log_sigma).sum(1)
        return {"log_px": log_px, "kl": kl}

    def loss(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """The reference's training cost: mean over the batch of BCE + alpha KL (KL annealing; none, alpha 1,
        with kl_warmup 0)."""
        t = self.terms(x)
        alpha = min(1.0, step / self.kl_warmup) if self.kl_warmup else 1.0
        return (-t["log_px"] + alpha * t["kl"]).mean()

    def optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3)
