"""Layers shared by the models, where PyTorch's own is slow on a CPU."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d (same parameters, same state dict) with its bias added after the convolution
    instead of inside it.

    PyTorch's CPU backward of a transposed convolution that carries its bias reduces the bias gradient
    very slowly: for the NP-DRAW decoder's 14 -> 28 layer at batch 150 (128 channels, bf16,
    channels_last) the backward takes 131 ms with the bias inside, 78 without, while the bias gradient
    on its own is a 2 ms sum (`python -m benchmarks.bench_layers` times the layer both ways).  In bf16
    the output is rounded once more (the conv's bf16 output, then the add); in fp32 the two agree to
    rounding."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        padding = self._output_padding(x, output_size, self.stride, self.padding, self.kernel_size,
                                       2, self.dilation)
        y = F.conv_transpose2d(x, self.weight, None, self.stride, self.padding, padding, self.groups,
                               self.dilation)
        if self.bias is None:
            return y
        return y + self.bias.to(y.dtype).view(1, -1, 1, 1)   # (1, C_out, 1, 1) over (B, C_out, H, W)
