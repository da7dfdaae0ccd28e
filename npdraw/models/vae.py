"""The convolutional VAE baseline (method §13, variant `vae`), and the Gaussian-latent VAE it shares
with the PixelVAE (npdraw.models.pixelvae).

q(z|x) = N(mu(x), diag sigma(x)^2), p(z) = N(0, I).  Encoder (3x3 convolutions, ReLU) of the PixelVAE
paper's MNIST architecture (its appendix E.1): 32, 32 s2, 32, 64 s2, pad 7 -> 8, 64, 64 s2, 64, 64, 64,
then a linear map to 2 x latent.  Decoder: linear -> 4x4x64; 3x3 conv 64, 3x3 conv 64, transposed conv
to 8x8x64, 3x3 conv 64, crop to 7x7; transposed conv to 14x14x32, 3x3 conv 32, transposed conv to
28x28x32, 3x3 conv 32: a (B, 32, 28, 28) feature map.  The VAE turns it into one Bernoulli logit per
pixel with a 1x1 convolution (the "convolutional VAE" of the PixelVAE paper's MNIST table: the PixelVAE
with its autoregressive decoder removed); the PixelVAE conditions a gated PixelCNN on it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from npdraw.compute.precision import compiled_method, fp32
from npdraw.models.interface import Baseline, stacked_passes
from npdraw.models.layers import ConvTranspose2d

LOG_2PI = math.log(2 * math.pi)


def _uniform_(weight: torch.Tensor, std: float) -> None:
    """Uniform weights of standard deviation `std` (bound std * sqrt(3))."""
    nn.init.uniform_(weight, -std * math.sqrt(3), std * math.sqrt(3))


@torch.no_grad()
def reference_init(model: nn.Module, linear_out: tuple[nn.Module, ...] = ()) -> None:
    """The initialisation of the PixelVAE paper's own code (igul222/PixelVAE, lib/ops): every bias zero;
    a convolution followed by a nonlinearity uniform with std sqrt(4 / (fan_in + fan_out)) (fans of a
    masked PixelCNN convolution halved), a transposed convolution of stride 2 with std
    2 sqrt(2 / (c_in k^2)), a linear layer LeCun's std sqrt(1 / fan_in), and the convolutions in
    `linear_out` (to a logit: no nonlinearity follows) Glorot's std sqrt(2 / (fan_in + fan_out)).

    PyTorch's defaults (uniform with bound 1 / sqrt(fan_in), random biases) leave the 17 stacked ReLU
    layers of the VAE with almost no signal at the start: it then sits on a plateau for about 500
    updates (docs/performance.md, "The baselines against their references")."""
    from npdraw.models.pixelcnn import MaskedConv2d

    last = {id(m) for m in linear_out}
    for m in model.modules():
        if isinstance(m, nn.ConvTranspose2d):
            k = m.kernel_size[0] * m.kernel_size[1]
            _uniform_(m.weight, 2 * math.sqrt(2.0 / (m.in_channels * k)))
        elif isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1]
            fans = (m.in_channels + m.out_channels) * k / (2 if isinstance(m, MaskedConv2d) else 1)
            _uniform_(m.weight, math.sqrt((2.0 if id(m) in last else 4.0) / fans))
        elif isinstance(m, nn.Linear):
            _uniform_(m.weight, math.sqrt(1.0 / m.in_features))
        else:
            continue
        if m.bias is not None:
            m.bias.zero_()


def conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1), nn.ReLU())


def up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.ReLU())


def gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(log_var)) summed over the last axis."""
    return -0.5 * (LOG_2PI + log_var + (z - mu) ** 2 * torch.exp(-log_var)).sum(-1)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last axis."""
    return -0.5 * (LOG_2PI + z ** 2).sum(-1)


class BernoulliPixels(nn.Module):
    """An output distribution (the interface of npdraw.models.npdraw.Bernoulli) over a feature map h:
    one logit per pixel by a 1x1 convolution."""

    def __init__(self, cond: int):
        super().__init__()
        self.out = nn.Conv2d(cond, 1, 1)

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return fp32(self.out(h))   # summed in fp32 whatever the precision of the pass

    def log_prob(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x | h) per image (B,), nats; x (B, 1, H, W) in {0, 1}."""
        return -F.binary_cross_entropy_with_logits(self.logits(h), x, reduction="none").flatten(1).sum(1)

    @torch.no_grad()
    def sample(self, h: torch.Tensor, generator=None) -> torch.Tensor:
        p = torch.sigmoid(self.logits(h))
        return (torch.rand(p.shape, generator=generator).to(p) < p).to(p.dtype)

    def mean(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(h))


class GaussianVAE(Baseline, nn.Module):
    """The encoder and upsampling decoder of the module docstring around an output distribution over the
    decoder's (B, 32, 28, 28) feature map, which a subclass makes (`make_output`, with `logit_layers` the
    convolutions of it that give a logit), initialised as the PixelVAE paper's code does (reference_init)."""

    image_size = 28
    sample_description: ClassVar[str]

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.enc_a = nn.Sequential(conv(1, 32), conv(32, 32, 2), conv(32, 32), conv(32, 64, 2))   # 28 -> 7
        self.enc_b = nn.Sequential(conv(64, 64), conv(64, 64, 2), conv(64, 64), conv(64, 64), conv(64, 64))  # 8 -> 4
        self.to_q = nn.Linear(64 * 4 * 4, 2 * cfg.latent)
        self.from_z = nn.Linear(cfg.latent, 64 * 4 * 4)
        self.dec_a = nn.Sequential(conv(64, 64), conv(64, 64), up(64, 64), conv(64, 64))       # 4 -> 8
        self.dec_b = nn.Sequential(up(64, 32), conv(32, 32), up(32, 32), conv(32, 32))          # 7 -> 28
        self.output = self.make_output(cfg)
        reference_init(self, self.logit_layers())

    def logit_layers(self) -> tuple[nn.Module, ...]:
        """The convolutions that give a logit (no nonlinearity after them: Glorot's initialisation)."""
        raise NotImplementedError

    def make_output(self, cfg) -> nn.Module:
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q's mean and log-variance, each (B, latent), fp32 (q's density is summed from them)."""
        h = F.pad(self.enc_a(x), (0, 1, 0, 1))                  # 7x7 -> 8x8
        mu, log_var = fp32(self.to_q(self.enc_b(h).flatten(1))).chunk(2, dim=-1)
        return mu, log_var.clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, latent) -> the output's feature map (B, 32, 28, 28)."""
        h = self.dec_a(F.relu(self.from_z(z)).view(-1, 64, 4, 4))[..., :7, :7]   # crop after the 3x3 conv at 8x8
        return self.dec_b(h)

    def terms(self, x_in: torch.Tensor, x_target: torch.Tensor | None = None,
              generator=None) -> dict[str, torch.Tensor]:
        """Per-image log p(x|z) with one reparameterised z ~ q, and the analytic KL(q || p) (B,)."""
        x_target = x_in if x_target is None else x_target
        mu, log_var = self.encode(x_in)
        eps = torch.randn(mu.shape, generator=generator).to(mu) if generator is not None else torch.randn_like(mu)
        z = mu + torch.exp(0.5 * log_var) * eps
        log_px = self.output.log_prob(self.decode(z), x_target)
        kl = 0.5 * (mu ** 2 + torch.exp(log_var) - 1.0 - log_var).sum(-1)
        return {"log_px": log_px, "kl": kl}

    def score(self, q, z, x_target) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """log p(x|z), log p(z), log q(z|x) (B,) of one sample z of the posterior q = (mu, log_var)."""
        mu, log_var = q
        return (self.output.log_prob(self.decode(z), x_target), standard_normal_log_prob(z),
                gaussian_log_prob(z, mu, log_var))

    @torch.no_grad()
    def log_weights(self, x_in, x_target, samples: int, generator=None, compile: bool = False,
                    per_pass: int = 1) -> dict[str, torch.Tensor]:
        """z_s ~ q(z|x), s = 1..S: log p(x|z_s), log p(z_s), log q(z_s|x), each (S, B); `per_pass`
        samples scored as one batch (npdraw.models.interface.stacked_passes), `score` through torch.compile with
        `compile`."""
        def draw(q):
            mu, log_var = q
            return mu + torch.exp(0.5 * log_var) * torch.randn(mu.shape, generator=generator).to(mu)
        return stacked_passes(self.encode(x_in), x_target, samples, per_pass, draw,
                              compiled_method(self, "score", compile))

    @torch.no_grad()
    def sample(self, n: int, generator=None, colour: str = "mean") -> dict[str, torch.Tensor | None]:
        """z ~ N(0, I), then the output distribution; no canvas.  Binary data only: `colour` does not apply."""
        device = self.from_z.weight.device
        z = torch.randn(n, self.cfg.latent, generator=generator).to(device)
        return {"images": self.output.sample(self.decode(z), generator), "canvases": None, "means": None}

    def sample_rule(self, colour: str) -> str:
        return self.sample_description

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, generator=None) -> torch.Tensor:
        """The output's mean (or greedy decode) at z = the mean of q(z|x)."""
        return self.output.mean(self.decode(self.encode(x)[0]))


@dataclass(frozen=True)
class VAEConfig:
    latent: int = 32           # latent dimensions

    def to_dict(self) -> dict:
        return asdict(self)


class ConvVAE(GaussianVAE):
    """The convolutional VAE: Bernoulli pixels from the decoder's feature map (module docstring)."""

    kind = "vae"
    Config = VAEConfig
    sample_description = "z ~ N(0, I) -> one Bernoulli draw per pixel"

    def make_output(self, cfg) -> nn.Module:
        return BernoulliPixels(32)

    def logit_layers(self) -> tuple[nn.Module, ...]:
        return (self.output.out,)
