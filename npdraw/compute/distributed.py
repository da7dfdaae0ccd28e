"""Data-parallel training and evaluation with torchrun, and nothing of it on one device.

A stage asks for `compute.gpus` GPUs.  With more than one, the stage re-executes
itself under `torchrun --standalone` (a free rendezvous port is picked; nothing
is fixed) with one process per GPU; each process leases its own GPU
(npdraw.compute.device) and joins a process group (NCCL on GPUs, gloo on the CPU).
With one device no process group is created and every helper below is the
identity, so the single-process code path is the plain one.

Conventions shared by the training loops:
  * every rank draws the same permutation (one seeded generator); a global
    batch of B images is split as idx[rank::world];
  * the loss of a rank is its sum divided by the global batch size times the
    world size, so DDP's gradient average equals the single-process mean;
  * rank 0 keeps its single-process random stream; other ranks reseed from
    (seed, rank, epoch) for dropout, binarization and Gumbel noise;
  * rank 0 alone writes checkpoints, curves, metrics and pictures.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as td

from npdraw.artifacts.errors import MachineError, ParamsError
from npdraw.compute.device import pick_device, visible_gpus

log = logging.getLogger(__name__)


@dataclass
class Dist:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def seed(self, base: int, *salt: int) -> int:
        """`base` on rank 0 (the single-process stream); a derived seed on other ranks."""
        if self.rank == 0:
            return base
        return int(np.random.SeedSequence([base, self.rank, *salt]).generate_state(1)[0])

    def chunk(self, n: int) -> slice:
        """This rank's contiguous share of n items (shares differ by at most one)."""
        bounds = np.linspace(0, n, self.world + 1).round().astype(int)
        return slice(int(bounds[self.rank]), int(bounds[self.rank + 1]))

    def sum(self, *values: float) -> list[float]:
        """Sums over ranks of a few scalars (float64)."""
        if not self.active:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        td.all_reduce(t)
        return t.tolist()

    def gather(self, obj):
        """Every rank's object, in rank order (a one-element list on one device)."""
        if not self.active:
            return [obj]
        out = [None] * self.world
        td.all_gather_object(out, obj)
        return out

    def concat(self, arrays: dict) -> dict:
        """Each rank's share of per-item arrays / tensors (dict of equal keys; None stays None), joined in
        rank order."""
        parts = self.gather(arrays)

        def join(vs):
            if vs[0] is None:
                return None
            return torch.cat(vs) if isinstance(vs[0], torch.Tensor) else np.concatenate(vs)

        return {k: join([p[k] for p in parts]) for k in arrays}

    def wrap(self, module: torch.nn.Module, method: str) -> torch.nn.Module:
        """A module whose forward() is `module.<method>`, inside DDP when there are several ranks."""
        fwd = _Forward(module, method)
        if not self.active:
            return fwd
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(fwd, device_ids=ids)

    def train(self, live_dir: str, params: dict, fit):
        """Run fit(live) on every rank, with a DVCLive logger (logging `params`) on rank 0 only and None
        elsewhere; close the process group; return rank 0's result (None on other ranks)."""
        from dvclive import Live
        if self.main:
            with Live(live_dir, dvcyaml=False, save_dvc_exp=False, report=None) as live:
                live.log_params(params)
                result = fit(live)
        else:
            fit(None)
            result = None
        self.close()
        return result

    def close(self) -> None:
        if self.active and td.is_initialized():
            td.destroy_process_group()


class _Forward(torch.nn.Module):
    def __init__(self, module: torch.nn.Module, method: str):
        super().__init__()
        self.module, self.method = module, method

    def forward(self, *args, **kwargs):
        return getattr(self.module, self.method)(*args, **kwargs)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def relaunch(gpus: int, requested_device: str) -> None:
    """Re-execute this stage under torchrun with `gpus` processes if it asks for several GPUs.

    Returns without doing anything when one GPU is asked for or when already
    running under torchrun.
    """
    if gpus <= 1 or "WORLD_SIZE" in os.environ:
        return
    if requested_device == "cpu":
        raise ParamsError(f"compute.gpus = {gpus} asks for data-parallel GPU training, but --device cpu was given; "
                          "set compute.gpus: 1 to train on the CPU")
    n = len(visible_gpus())
    if n < gpus:
        raise MachineError(f"compute.gpus = {gpus}: only {n} GPU(s) visible (CUDA_VISIBLE_DEVICES="
                           f"{os.environ.get('CUDA_VISIBLE_DEVICES')!r}), expected at least {gpus}; run where "
                           f"{gpus} are visible, or set compute.gpus to at most {max(n, 1)}")
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}",
            sys.argv[0], *sys.argv[1:]]
    log.info("relaunching under torchrun with %d processes", gpus)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


def setup(requested_device: str = "auto") -> Dist:
    """The device of this process, and a process group when launched by torchrun with several ranks."""
    world = world_size()
    device = pick_device(requested_device)
    if world == 1:
        return Dist(0, 1, device)
    rank = int(os.environ["RANK"])
    backend = "nccl" if device.type == "cuda" else "gloo"
    td.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    log.info("rank %d of %d on %s (%s)", rank, world, device, backend)
    return Dist(rank, world, device)
