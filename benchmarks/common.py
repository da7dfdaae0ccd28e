"""Shared setup for the benchmarks: MNIST straight from the data mirror."""

from __future__ import annotations

import os
import platform

import torch

from npdraw.data.prepare import load_source


def mnist_arrays() -> dict:
    ds = {"source": "mnist_idx", "image_size": 28, "channels": 1}
    arrays, _ = load_source("mnist_idx", ds, "mnist", allow_download=False)
    return arrays


def machine() -> str:
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
