"""The training loop every trainer shares (the prior, the full model, the PixelVAE, the domain
classifier): epochs over shuffled batches, data-parallel ranks, resumable state, the best checkpoint,
curves.

`fit` runs the epochs; each trainer gives it one step (the loss of a batch, and the sums it reports)
and one validation (the epoch's record and its score).  After every epoch a resume file holds the
model, optimiser, data-order and torch random states, the history and the best weights so far; a
killed run restarted with the same configuration continues from it (a fingerprint of the
configuration guards against resuming a different run).  The best weights
(lowest validation score) are written to the output checkpoint only when
training finishes, so a killed run leaves nothing that looks finished.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm import tqdm

from npdraw.artifacts.errors import CheckpointError
from npdraw.artifacts.io import read_checkpoint, save_torch
from npdraw.compute.seeds import salt

log = logging.getLogger(__name__)


def check_finite(terms: dict[str, torch.Tensor], where: str, keep: Path) -> None:
    """Stop on NaN/inf, naming the step and the offending term(s)."""
    bad = [name for name, value in terms.items() if not torch.isfinite(value).all()]
    if bad:
        values = ", ".join(f"{name} = {terms[name].detach().float().mean().item()}" for name in bad)
        raise FloatingPointError(f"non-finite loss at {where}: {values}; training stopped, the last good "
                                 f"state is kept in {keep} (resume after fixing the cause)")


class Run:
    """Epoch bookkeeping of one training run (see module docstring)."""

    def __init__(self, resume_path: Path | None, fingerprint: str, live=None, metrics=("train", "valid"), main=True):
        """`main`: this process writes the resume file and the curves (rank 0 of a data-parallel run);
        `resume_path` None: no resume file (the state stays in memory)."""
        self.resume_path = Path(resume_path) if resume_path is not None else None
        self.fingerprint, self.live, self.metrics = fingerprint, live, metrics
        self.main = main
        self.state = {"epoch": 0, "best": math.inf, "best_epoch": -1, "best_state": None, "history": []}

    def restore(self, model: torch.nn.Module, optimizer, order: torch.Generator, device) -> int:
        """Load the resume file if it belongs to this configuration; return the first epoch to run."""
        if self.resume_path is None:
            return self.state["epoch"]
        if self.resume_path.exists():
            try:
                ckpt = read_checkpoint(self.resume_path, device, weights_only=False)
            except CheckpointError as err:   # damaged on disk (never half-written: writes are atomic)
                log.warning("resume file unusable, training starts afresh: %s", err)
                return self.state["epoch"]
            if ckpt.get("fingerprint") == self.fingerprint:
                model.load_state_dict(ckpt["state_dict"])
                optimizer.load_state_dict(ckpt["optimizer"])
                order.set_state(ckpt["order_rng"])
                torch.set_rng_state(ckpt["torch_rng"])
                self.state = ckpt["state"]
                log.info("resuming from %s at epoch %d", self.resume_path, self.state["epoch"])
                for record in self.state["history"]:  # the curves restart whole, whatever survived of them
                    self._log(record)
            else:
                log.info("%s belongs to another configuration: starting afresh", self.resume_path)
        else:
            log.info("no resume file %s: training starts at epoch 1", self.resume_path)
        return self.state["epoch"]

    def _log(self, record: dict) -> None:
        if self.live is not None:
            for split in self.metrics:
                for key, value in record.items():
                    if key.startswith(f"{split}_"):
                        self.live.log_metric(f"{split}/{key[len(split) + 1:]}", value)
            self.live.next_step()

    def end_epoch(self, model, optimizer, order: torch.Generator, record: dict, score: float) -> None:
        """Record the epoch, keep the weights if `score` (lower is better) is the best so far, save state."""
        state = self.state
        state["history"].append(record)
        self._log(record)
        if score < state["best"]:
            state["best"], state["best_epoch"] = score, record["epoch"]
            state["best_state"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        state["epoch"] = record["epoch"]
        if not self.main or self.resume_path is None:
            return
        save_torch(self.resume_path, {"fingerprint": self.fingerprint, "state_dict": model.state_dict(),
                                      "optimizer": optimizer.state_dict(), "order_rng": order.get_state(),
                                      "torch_rng": torch.get_rng_state(), "state": state})

    def finish(self, model, save) -> dict:
        """Load the best weights into `model`, call save(model, best_epoch, best_score); return the summary."""
        model.load_state_dict(self.state["best_state"])
        if self.main:
            save(model, self.state["best_epoch"], self.state["best"])
        return {k: v for k, v in self.state.items() if k != "best_state"}


def batches(n: int, batch_size: int, world: int) -> int:
    """Steps per epoch; with several ranks a last batch smaller than the world is dropped."""
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= world else 0)


def plan(training, n: int, epochs: int, updates: int | None) -> tuple[int, int | None]:
    """(epochs, items per epoch) of a trainer with `n` training items: its own `epochs` passes over them
    (None: an epoch is one pass) when `updates` is None; else `updates` items in all, cut into
    `training.rounds` epochs of equal size (each a validation, a checkpoint score and a resume point),
    whatever n, so that every split and every system gets the same number of updates."""
    if updates is None:
        return epochs, None
    return training["rounds"], -(-updates // training["rounds"])


def epoch_order(n: int, count: int | None, generator: torch.Generator) -> torch.Tensor:
    """The order of an epoch's items: one shuffled pass over range(n) (count None), or `count` items from
    as many shuffled passes as it takes (a small training set is cycled; a large one is sampled)."""
    if count is None:
        return torch.randperm(n, generator=generator)
    return torch.cat([torch.randperm(n, generator=generator) for _ in range(-(-count // n))])[:count]


# step(epoch, step, batch) -> (the loss to minimise, {name: this rank's sum over its images}); batch:
# the global batch's indices (each rank takes batch[rank::world]).
Step = Callable[[int, int, torch.Tensor], tuple[torch.Tensor, dict[str, float]]]
# validate(epoch, sums over all ranks, images seen, seconds of training) -> (record, score; lower is better).
Validate = Callable[[int, dict[str, float], int, float], tuple[dict, float]]


def fit(run: Run, model: torch.nn.Module, optimizer, order: torch.Generator, device, *, name: str, epochs: int,
        n: int, batch_size: int, step: Step, validate: Validate, seed: int, stream: str | int, dist=None,
        patience: int | None = None, per_epoch_items: int | None = None) -> None:
    """Train `model` from where `run` left off (its resume file) to `epochs`: each epoch shuffles the
    n training items with `order`, runs `step` on every global batch and the optimizer after it, then
    `validate`, and ends the epoch in `run` (history, best weights, resume file).  With `dist`
    (npdraw.compute.distributed.Dist) each rank takes its share of every batch; ranks other than 0 draw
    their own random numbers from (seed, the `stream`'s salt, epoch).  With `patience`, training stops
    early once that many epochs in a row have not improved the validation score (decided from the
    recorded state, so a resumed run stops where the uninterrupted one would).  `per_epoch_items`
    (npdraw.training.loop.plan): an epoch of that many items, cycling or sampling the n (epoch_order)."""
    rank, world = (dist.rank, dist.world) if dist is not None else (0, 1)
    per_epoch = batches(per_epoch_items or n, batch_size, world)
    for epoch in range(run.restore(model, optimizer, order, device), epochs):
        if patience is not None and epoch - run.state["best_epoch"] >= patience:
            log.info("%s: no better validation score for %d epochs: stopping after epoch %d of %d", name, patience,
                     epoch, epochs)
            break
        model.train()
        if rank:
            torch.manual_seed(dist.seed(seed, salt(stream), epoch))
        start, sums, seen = time.perf_counter(), {}, 0
        perm = epoch_order(n, per_epoch_items, order).to(device)
        for i in tqdm(range(per_epoch), desc=f"{name} epoch {epoch + 1}/{epochs}", mininterval=5, leave=False,
                      disable=rank > 0):
            batch = perm[i * batch_size:(i + 1) * batch_size]
            loss, terms = step(epoch, i, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + value
            seen += len(batch)
        seconds = time.perf_counter() - start
        if dist is not None:
            sums = dict(zip(sums, dist.sum(*sums.values())))
        record, score = validate(epoch, sums, seen, seconds)
        run.end_epoch(model, optimizer, order, record, score)
