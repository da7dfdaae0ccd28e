"""PixelVAE (Gulrajani et al. 2017), MNIST architecture of method §12: a baseline (variant `pixelvae`).

The Gaussian-latent VAE of npdraw.models.vae (the PixelVAE paper's appendix E.1 encoder and upsampling
decoder), with p(x|z) a conditional gated PixelCNN (npdraw.models.pixelcnn) over the decoder's
28x28x32 feature map: one 7x7 layer, N 5x5 gated residual blocks, two 1x1 gated layers, a 1x1 conv
to the Bernoulli logit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch.nn as nn

from npdraw.models.pixelcnn import PixelCNNBernoulli
from npdraw.models.vae import GaussianVAE


@dataclass(frozen=True)
class PixelVAEConfig:
    latent: int = 32           # latent dimensions
    pixelcnn_layers: int = 3   # N: 5x5 gated residual blocks after the 7x7 one
    width: int = 32            # PixelCNN channels

    def to_dict(self) -> dict:
        return asdict(self)


class PixelVAE(GaussianVAE):
    """Samples are exact and ancestral: z ~ N(0, I), then the PixelCNN pixel by pixel; pictures use its
    greedy decode (each pixel's mean depends on the pixels drawn before it)."""

    kind = "pixelvae"
    Config = PixelVAEConfig
    sample_description = "z ~ N(0, I) -> exact ancestral PixelCNN sample"

    def make_output(self, cfg) -> nn.Module:
        return PixelCNNBernoulli(32, cfg.width, cfg.pixelcnn_layers)

    def logit_layers(self) -> tuple[nn.Module, ...]:
        return (self.output.net.out,)
