"""Choosing the compute device: one GPU per process, leased through a lock file.

Snakemake's `--resources gpu=N` only counts GPUs; it does not say which one a
job should use, so N jobs started together would all land on cuda:0.  Every
process that wants a GPU therefore takes one through an exclusive `flock` on
one lock file per device.  The kernel drops the lock when the process ends,
however it ends (a SIGKILL included), so a crashed job never holds a GPU.

A `CUDA_VISIBLE_DEVICES` set by a scheduler (SLURM, a user) is honoured and
never rewritten: the lease only chooses among the devices it exposes, and lock
files are named by each device's UUID, so two jobs that both see their GPU as
"cuda:0" under different masks still lock different files.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from npdraw.artifacts.errors import MachineError, ParamsError

log = logging.getLogger(__name__)
_HELD: list[Lease] = []   # leases live as long as the process


@dataclass
class Lease:
    index: int      # torch device index among the visible devices
    gpu_id: str     # the device's identity (UUID, else its CUDA_VISIBLE_DEVICES entry)
    path: Path      # the lock file held
    fd: int

    def release(self) -> None:
        os.close(self.fd)   # closing the descriptor drops the flock


def lock_dir() -> Path:
    """Where the lock files live: $NPDRAW_GPU_LOCKS, else a folder under the system's temp dir."""
    return Path(os.environ.get("NPDRAW_GPU_LOCKS") or Path(tempfile.gettempdir()) / "npdraw-gpu-locks")


def visible_gpus() -> list[str]:
    """An identity per GPU this process may use, in torch's index order."""
    if not torch.cuda.is_available():
        return []
    ids = []
    for i in range(torch.cuda.device_count()):
        uuid = getattr(torch.cuda.get_device_properties(i), "uuid", None)
        ids.append(f"GPU-{uuid}" if uuid is not None else _mask_entry(i))
    return ids


def _mask_entry(i: int) -> str:
    mask = [s.strip() for s in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if s.strip()]
    return mask[i] if i < len(mask) else str(i)


def lease(ids: list[str], directory: Path | None = None, poll_s: float = 2.0, timeout_s: float | None = None) -> Lease:
    """Take the first free device of `ids` (waiting while all are taken); return the held lease."""
    directory = Path(directory or lock_dir())
    directory.mkdir(parents=True, exist_ok=True)
    start, waited = time.monotonic(), False
    while True:
        for index, gpu_id in enumerate(ids):
            path = directory / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', gpu_id)}.lock"
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return Lease(index, gpu_id, path, fd)
        if timeout_s is not None and time.monotonic() - start > timeout_s:
            raise TimeoutError(f"all {len(ids)} GPUs stayed leased for {timeout_s:.0f} s (locks in {directory})")
        if not waited:
            log.info("all %d visible GPUs are leased by other jobs (locks in %s); waiting", len(ids), directory)
            waited = True
        time.sleep(poll_s)


def pick_device(requested: str = "auto") -> torch.device:
    """'auto': a free visible GPU if there is one, else the CPU; 'cpu'; 'cuda' (a GPU must exist).

    The GPU is leased for the life of the process (see the module docstring);
    one log line says which device was chosen and why.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if requested not in ("auto", "cpu", "cuda"):
        raise ParamsError(f"--device {requested!r}: expected auto, cpu or cuda")
    if requested == "cuda" and not torch.cuda.is_available():
        raise MachineError(f"--device cuda: no CUDA device is visible (CUDA_VISIBLE_DEVICES={visible!r}, "
                           f"torch {torch.__version__}); run where one is, or pass --device cpu or auto")
    if requested == "cpu" or not torch.cuda.is_available():
        log.info("device: CPU (%d threads)%s", torch.get_num_threads(),
                 "" if requested == "cpu" else "; no GPU visible")
        return torch.device("cpu")
    held = lease(visible_gpus())
    _HELD.append(held)
    device = torch.device("cuda", held.index)
    torch.cuda.set_device(device)
    log.info("device: %s (%s, %s; lock %s; CUDA_VISIBLE_DEVICES=%s)", device, torch.cuda.get_device_name(device),
             held.gpu_id, held.path, visible)
    return device
