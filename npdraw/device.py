"""Choosing the compute device for a training or evaluation stage."""

from __future__ import annotations

import logging
import os

import torch

from npdraw.config import ParamsError

log = logging.getLogger(__name__)


def pick_device(requested: str = "auto") -> torch.device:
    """'auto': the first visible GPU if there is one, else the CPU; 'cpu'; 'cuda' (must exist).

    A CUDA_VISIBLE_DEVICES set by a scheduler is respected: 'cuda' is the first
    device it exposes.  One log line says what was chosen.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if requested not in ("auto", "cpu", "cuda"):
        raise ParamsError(f"--device {requested!r}: expected auto, cpu or cuda")
    if requested == "cuda" and not torch.cuda.is_available():
        raise ParamsError(f"--device cuda: no CUDA device is visible (CUDA_VISIBLE_DEVICES={visible!r}, "
                          f"torch {torch.__version__}); use --device cpu or auto")
    if requested == "cpu" or not torch.cuda.is_available():
        log.info("device: CPU (%d threads)%s", torch.get_num_threads(),
                 "" if requested == "cpu" else "; no GPU visible")
        return torch.device("cpu")
    device = torch.device("cuda", 0)
    log.info("device: %s (%s; CUDA_VISIBLE_DEVICES=%s)", device, torch.cuda.get_device_name(device), visible)
    return device
