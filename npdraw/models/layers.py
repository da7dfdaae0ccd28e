"""Layers shared by the models, where PyTorch's own is slow on a CPU."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d (same parameters, same state dict) with its bias added after the convolution
    instead of inside it.

    PyTorch's CPU backward of a transposed convolution that carries its bias reduces the bias gradient
    very slowly, slower than the rest of the layer's backward, while on its own it is a small sum
    (`python -m benchmarks.bench_layers` times the layer both ways; docs/performance.md).  In bf16 the
    output is rounded once more (the conv's bf16 output, then the add); in fp32 the two agree to
    rounding."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        padding = self._output_padding(x, output_size, self.stride, self.padding, self.kernel_size,
                                       2, self.dilation)
        y = F.conv_transpose2d(x, self.weight, None, self.stride, self.padding, padding, self.groups,
                               self.dilation)
        if self.bias is None:
            return y
        return y + self.bias.to(y.dtype).view(1, -1, 1, 1)   # (1, C_out, 1, 1) over (B, C_out, H, W)


class _PhaseGradConv(torch.autograd.Function):
    """y = conv2d(x, weight, bias), 3 x 3, stride 2, padding 1, with the input gradient computed as one
    stride-1 convolution and a pixel shuffle (see StridedConv2d); weight and bias gradients by PyTorch's
    kernel."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, 2, 1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        g_x = _phase_input_grad(grad, weight) if ctx.needs_input_grad[0] else None
        g_w = g_b = None
        if ctx.needs_input_grad[1] or (ctx.has_bias and ctx.needs_input_grad[2]):
            _, g_w, g_b = torch.ops.aten.convolution_backward(
                grad, x, weight, [weight.shape[0]] if ctx.has_bias else None, [2, 2], [1, 1], [1, 1], False,
                [0, 0], 1, [False, ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]])
        return g_x, g_w, g_b


# Tap of the 3 x 3 kernel that links input row 2i + a to output row i + d, indexed [a, d]; 3 is the
# zero tap of the padded kernel (row 2i reaches no tap of row i + 1).
_PHASE_TAPS = torch.tensor([[1, 3], [2, 0]])


def _phase_kernel(weight: torch.Tensor) -> torch.Tensor:
    """(C_out, C_in, 3, 3) kernel of the stride-2 convolution -> (4 * C_in, C_out, 2, 2) kernel of the
    stride-1 convolution of its output gradient that gives the four phases of its input gradient, output
    channels ordered (a, b, c)."""
    c_out, c_in = weight.shape[:2]
    padded = F.pad(weight, (0, 1, 0, 1))                                            # tap 3 is zero
    taps = _PHASE_TAPS.to(weight.device)
    k = padded[:, :, taps[:, None, :, None], taps[None, :, None, :]]               # [o, c, a, b, dy, dx]
    return k.permute(2, 3, 1, 0, 4, 5).reshape(4 * c_in, c_out, 2, 2)


def _phase_input_grad(grad: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Gradient (N, C_in, 2H, 2W) of a 3 x 3, stride-2, padding-1 convolution's input from its output's
    gradient (N, C_out, H, W), returned channels_last in grad's dtype.

    Input pixel (2i + a, 2j + b) receives tap ky = 1 of output row i when a = 0, and taps ky = 2 of row i
    and ky = 0 of row i + 1 when a = 1; the same for columns.  So each phase (a, b) is a 2 x 2 stride-1
    convolution of the gradient over rows i, i + 1 and columns j, j + 1 with some taps zero, and the four
    are one convolution with 4 * C_in outputs (summed in fp32 by the convolution kernel, rounded once,
    as oneDNN's own input gradient), then interleaved by one copy."""
    n, _, h, w = grad.shape
    c_in = weight.shape[1]
    fmt = torch.channels_last if grad.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    kernel = _phase_kernel(weight.to(grad.dtype)).contiguous(memory_format=fmt)
    # Padding 1 on every side, then the first row and column cropped: rows i, i + 1 with row H zero.
    phases = F.conv2d(grad, kernel, None, 1, 1)[..., 1:, 1:]                         # (N, [a, b, c], H, W)
    out = torch.empty(n, h, 2, w, 2, c_in, dtype=grad.dtype, device=grad.device)   # (N, 2H, 2W, C_in)
    out.copy_(phases.reshape(n, 2, 2, c_in, h, w).permute(0, 4, 1, 5, 2, 3))
    return out.view(n, 2 * h, 2 * w, c_in).permute(0, 3, 1, 2)


class StridedConv2d(nn.Conv2d):
    """3 x 3, stride-2, padding-1 nn.Conv2d (same parameters, same outputs) for inputs of few channels
    that need their gradient: the prior's token images (C + 1 channels) and the decoder's canvas (C) in
    model training (`conv3x3` chooses it).

    On a CPU, oneDNN's input gradient of such a convolution is slow for few input channels: its
    backward-by-data has no fast kernel for so few channels (uxlfoundation/oneDNN#42) and converts a
    backward into a forward convolution for unit strides only (its verbose log in pytorch/pytorch#133304).
    The gradient is written here as that forward convolution: a stride-1 convolution of the output
    gradient and an interleaving copy of its four phases (_phase_input_grad), about twice as fast
    (`python -m benchmarks.bench_layers` times the layer both ways; docs/performance.md).  Under
    torch.compile the function is traced as it is.  On CUDA, for odd sides and when the input needs no
    gradient, the layer is nn.Conv2d."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(c_in, c_out, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (x.requires_grad and x.device.type == "cpu" and x.shape[-1] % 2 == 0 and x.shape[-2] % 2 == 0):
            return super().forward(x)
        cast = torch.is_autocast_enabled("cpu") and x.dtype != torch.float64     # autocast leaves fp64 alone
        dtype = torch.get_autocast_dtype("cpu") if cast else x.dtype
        with torch.autocast("cpu", enabled=False):       # the function sees the dtypes autocast would give
            bias = self.bias.to(dtype) if self.bias is not None else None
            return _PhaseGradConv.apply(x.to(dtype), self.weight.to(dtype), bias)


# Input channels up to which StridedConv2d's input gradient beats oneDNN's; with many (128) it is
# slower (benchmarks/bench_layers.py; docs/performance.md).
PHASE_GRADIENT_CHANNELS = 4


def conv3x3(c_in: int, c_out: int, stride: int) -> nn.Conv2d:
    """A 3 x 3, padding-1 convolution: StridedConv2d (the same layer and parameters, with a faster input
    gradient on a CPU) at stride 2 over up to PHASE_GRADIENT_CHANNELS input channels, else nn.Conv2d."""
    if stride == 2 and c_in <= PHASE_GRADIENT_CHANNELS:
        return StridedConv2d(c_in, c_out)
    return nn.Conv2d(c_in, c_out, 3, stride, 1)
