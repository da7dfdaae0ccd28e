"""Numeric precision, memory layout and compilation of the heavy passes (params `compute.precision`,
`compute.channels_last`, `compute.compile`).

bf16 runs the convolutions, linear layers and attention under torch.autocast (on the CPU, oneDNN's
AVX512_BF16 kernels; on CUDA, tensor cores); everything that sums a likelihood stays in fp32: the
modules hand their logits and distribution parameters back as fp32 (`fp32`), and the log-probabilities,
KL terms, log-sum-exp and loss reductions are computed from those.  channels_last stores 4-d
activations as (N, H, W, C), the layout oneDNN's and cuDNN's fastest 3x3 convolutions use.  compile
runs the training step's forward and the NLL's per-sample scoring through torch.compile (inductor).
"""

from __future__ import annotations

import contextlib

import torch

PRECISIONS = ("fp32", "bf16")
def compiled(fn, enabled: bool):
    """`fn` through torch.compile (static shapes: a run's batch shapes repeat), or `fn` itself."""
    return torch.compile(fn, dynamic=False) if enabled else fn


def compiled_method(module: torch.nn.Module, name: str, enabled: bool):
    """module.<name>, through torch.compile with `enabled`; compiled once per module and kept on it (not
    in its state dict), so that each batch reuses the compiled code."""
    if not enabled:
        return getattr(module, name)
    cache = module.__dict__.setdefault("_compiled_methods", {})
    if name not in cache:
        cache[name] = compiled(getattr(module, name), True)
    return cache[name]


def autocast(device: torch.device | str, precision: str):
    """The context the forward passes run in: bf16 autocast, or nothing for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    device_type = torch.device(device).type
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16)


def fp32(t: torch.Tensor) -> torch.Tensor:
    """`t` widened to float32 when it is in a 16-bit float type (fp64 and fp32 pass unchanged): where a
    likelihood or loss is summed."""
    return t.float() if t.dtype in (torch.bfloat16, torch.float16) else t


def use_layout(module: torch.nn.Module, channels_last: bool) -> torch.nn.Module:
    """The module with its 4-d weights in channels_last (in place), or as it is."""
    return module.to(memory_format=torch.channels_last) if channels_last else module


def layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A 4-d batch in channels_last, or as it is."""
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x
