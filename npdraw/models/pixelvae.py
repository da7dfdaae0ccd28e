"""PixelVAE (Gulrajani et al. 2017), MNIST architecture of method §12: the pipeline's own baseline.

q(z|x) = N(mu(x), diag sigma(x)^2), p(z) = N(0, I), p(x|z) a conditional gated
PixelCNN (npdraw.models.pixelcnn) over the upsampling decoder's 28x28x32 feature map.
Encoder (3x3 convolutions, ReLU): 32, 32 s2, 32, 64 s2, pad 7 -> 8, 64, 64 s2,
64, 64, 64, then a linear map to 2 x latent.  Decoder as the PixelVAE paper's
appendix E.1: linear -> 4x4x64; 3x3 conv 64, 3x3 conv 64, transposed conv to
8x8x64, 3x3 conv 64, crop to 7x7; transposed conv to 14x14x32, 3x3 conv 32,
transposed conv to 28x28x32, 3x3 conv 32.  The interface matches NPDraw's where the
evaluation code needs it: `log_weights` (importance-sampled NLL) and `sample`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from npdraw.models.layers import ConvTranspose2d
from npdraw.models.npdraw import stacked_passes
from npdraw.models.pixelcnn import PixelCNNBernoulli
from npdraw.runtime.precision import compiled_method, fp32

LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class PixelVAEConfig:
    latent: int = 32           # latent dimensions
    pixelcnn_layers: int = 3   # N: 5x5 gated residual blocks after the 7x7 one
    width: int = 32            # PixelCNN channels

    def to_dict(self) -> dict:
        return asdict(self)


def conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1), nn.ReLU())


def up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.ReLU())


def gaussian_log_prob(z: torch.Tensor, mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, exp(log_var)) summed over the last axis."""
    return -0.5 * (LOG_2PI + log_var + (z - mu) ** 2 * torch.exp(-log_var)).sum(-1)


class PixelVAE(nn.Module):
    image_size = 28

    def __init__(self, cfg: PixelVAEConfig):
        super().__init__()
        self.cfg = cfg
        self.enc_a = nn.Sequential(conv(1, 32), conv(32, 32, 2), conv(32, 32), conv(32, 64, 2))   # 28 -> 7
        self.enc_b = nn.Sequential(conv(64, 64), conv(64, 64, 2), conv(64, 64), conv(64, 64), conv(64, 64))  # 8 -> 4
        self.to_q = nn.Linear(64 * 4 * 4, 2 * cfg.latent)
        self.from_z = nn.Linear(cfg.latent, 64 * 4 * 4)
        self.dec_a = nn.Sequential(conv(64, 64), conv(64, 64), up(64, 64), conv(64, 64))       # 4 -> 8
        self.dec_b = nn.Sequential(up(64, 32), conv(32, 32), up(32, 32), conv(32, 32))          # 7 -> 28
        self.output = PixelCNNBernoulli(32, cfg.width, cfg.pixelcnn_layers)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.pad(self.enc_a(x), (0, 1, 0, 1))                  # 7x7 -> 8x8
        mu, log_var = fp32(self.to_q(self.enc_b(h).flatten(1))).chunk(2, dim=-1)   # fp32: q's density is summed
        return mu, log_var.clamp(-12.0, 8.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, latent) -> the PixelCNN's conditioning (B, 32, 28, 28)."""
        h = self.dec_a(F.relu(self.from_z(z)).view(-1, 64, 4, 4))[..., :7, :7]   # crop after the 3x3 conv at 8x8
        return self.dec_b(h)

    def terms(self, x: torch.Tensor, generator=None) -> dict[str, torch.Tensor]:
        """Per-image log p(x|z) with one reparameterised z ~ q, and the analytic KL(q || p) (B,)."""
        mu, log_var = self.encode(x)
        eps = torch.randn(mu.shape, generator=generator).to(mu) if generator is not None else torch.randn_like(mu)
        z = mu + torch.exp(0.5 * log_var) * eps
        log_px = self.output.log_prob(self.decode(z), x)
        kl = 0.5 * (mu ** 2 + torch.exp(log_var) - 1.0 - log_var).sum(-1)
        return {"log_px": log_px, "kl": kl}

    def score(self, q, z, x_target) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """log p(x|z), log p(z), log q(z|x) (B,) of one sample z of the posterior q = (mu, log_var)."""
        mu, log_var = q
        return (self.output.log_prob(self.decode(z), x_target),
                gaussian_log_prob(z, torch.zeros_like(z), torch.zeros_like(z)), gaussian_log_prob(z, mu, log_var))

    @torch.no_grad()
    def log_weights(self, x_in, x_target, samples: int, generator=None, compile: bool = False,
                    per_pass: int = 1) -> dict[str, torch.Tensor]:
        """z_s ~ q(z|x), s = 1..S: log p(x|z_s), log p(z_s), log q(z_s|x), each (S, B); `per_pass`
        samples scored as one batch (npdraw.models.npdraw.stacked_passes), `score` through torch.compile with
        `compile`."""
        def draw(q):
            mu, log_var = q
            return mu + torch.exp(0.5 * log_var) * torch.randn(mu.shape, generator=generator).to(mu)
        return stacked_passes(self.encode(x_in), x_target, samples, per_pass, draw,
                              compiled_method(self, "score", compile))

    @torch.no_grad()
    def sample(self, n: int, generator=None, colour: str = "mean") -> dict[str, torch.Tensor | None]:
        """Exact ancestral samples: z ~ N(0, I), then the PixelCNN pixel by pixel.  No canvas, and no
        per-pixel means (each pixel's depends on the pixels drawn before it); binary only, so `colour`
        does not apply."""
        device = self.from_z.weight.device
        z = torch.randn(n, self.cfg.latent, generator=generator).to(device)
        return {"images": self.output.sample(self.decode(z), generator), "canvases": None, "means": None}
