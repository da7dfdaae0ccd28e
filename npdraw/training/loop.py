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
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from npdraw.artifacts.errors import CheckpointError, ParamsError
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
        self.state = {"epoch": 0, "best": math.inf, "best_epoch": -1, "best_state": None, "history": [],
                      "stopped": None, "kept": []}

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
                self.state = {**self.state, **ckpt["state"]}   # a state saved before a key existed gets its default
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

    def end_epoch(self, model, optimizer, order: torch.Generator, record: dict, score: float,
                  keep: int | None = None) -> None:
        """Record the epoch, keep the weights if `score` (lower is better) is the best so far, save state.
        `keep`: also set the best weights so far aside under that label (what a run stopped here would have
        kept: the learning curve's budgets)."""
        state = self.state
        state["history"].append(record)
        self._log(record)
        if score < state["best"]:
            state["best"], state["best_epoch"] = score, record["epoch"]
            # A fresh dict at each improvement (never updated in place): a kept entry can share it.
            state["best_state"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        state["epoch"] = record["epoch"]
        if keep is not None:
            state["kept"].append({"label": keep, "epoch": record["epoch"], "best_epoch": state["best_epoch"],
                                  "best": state["best"], "state_dict": state["best_state"]})
        self.save(model, optimizer, order)

    def stop(self, epoch: int, reason: str, model, optimizer, order: torch.Generator) -> None:
        """Record that training ended after epoch `epoch` (from 1) and why ('budget', 'patience')."""
        if self.state["stopped"] is None:
            self.state["stopped"] = {"after_epoch": epoch, "reason": reason}
            self.save(model, optimizer, order)

    def save(self, model, optimizer, order: torch.Generator) -> None:
        """Write the resume file (the main process only)."""
        state = self.state
        if not self.main or self.resume_path is None:
            return
        save_torch(self.resume_path, {"fingerprint": self.fingerprint, "state_dict": model.state_dict(),
                                      "optimizer": optimizer.state_dict(), "order_rng": order.get_state(),
                                      "torch_rng": torch.get_rng_state(), "state": state})

    def finish(self, model, save) -> dict:
        """Load the best weights into `model`, call save(model, best_epoch, best_score); return the summary
        (the state without weights)."""
        model.load_state_dict(self.state["best_state"])
        if self.main:
            save(model, self.state["best_epoch"], self.state["best"])
        summary = {k: v for k, v in self.state.items() if k not in ("best_state", "kept")}
        return {**summary, "kept": [{k: v for k, v in e.items() if k != "state_dict"} for e in self.state["kept"]]}


def batches(n: int, batch_size: int, world: int) -> int:
    """Steps per epoch; with several ranks a last batch smaller than the world is dropped."""
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= world else 0)


@dataclass(frozen=True)
class Budget:
    """How long a trainer trains: `epochs` rounds (each a validation, a checkpoint score and a resume point)
    of `per_epoch` items (None: one pass over the training items), `items` in all if it runs to the end, and
    `rule`, how that was decided (what a run's record says of its budget)."""
    epochs: int
    per_epoch: int | None
    items: int
    rule: str

    def seen(self, epoch: int, n: int) -> int:
        """Items trained on by the end of epoch `epoch` (from 1) over `n` training items."""
        return epoch * (self.per_epoch or n)

    def milestones(self, counts, n: int, every: int = 1) -> dict[int, int]:
        """{epoch (from 1): count} for each count of items in `counts` this budget reaches (a run of a
        smaller budget leaves the larger counts out); each must end a round that is a check (every
        `every`-th), where a run of that budget would have scored its last weights."""
        size, keep = self.per_epoch or n, {}
        for count in counts:
            if count % size:
                raise ParamsError(f"training.milestones: {count:,} image updates do not end a round of {size:,} "
                                  f"({self.rule}); expected multiples of training.round_images")
            if (count // size) % every:
                raise ParamsError(f"training.milestones: {count:,} image updates end round {count // size}, which "
                                  f"is not a check (training.select_every = {every}); expected a multiple of "
                                  f"{size * every:,}")
            if count // size <= self.epochs:
                keep[count // size] = count
        return keep


def plan(training, n: int, epochs: int, updates: int | None, split_epochs: int | None = None) -> Budget:
    """The budget of a trainer with `n` training items: its own `epochs` passes over them when neither
    `updates` (a fixed count of items, the same for every split and system) nor `split_epochs` (that many
    passes over the split, as the paper's 500 epochs) is set; otherwise that many items, cut into rounds of
    `training.round_images` items (the last budget rounded up to a whole round) or, without it, into
    `training.rounds` rounds of equal size.  A round of items is drawn by cycling a small split and sampling
    a large one (epoch_order)."""
    if updates is not None and split_epochs is not None:
        raise ParamsError(f"a budget of {updates:,} updates and of {split_epochs} epochs of the split: set one of "
                          "training.image_updates / prior.updates and training.split_epochs / prior.split_epochs")
    if updates is None and split_epochs is None:
        return Budget(epochs, None, epochs * n, f"{epochs} epochs")
    rule = f"{updates:,} updates" if split_epochs is None else f"{split_epochs} epochs of {n:,}"
    updates = updates if split_epochs is None else split_epochs * n
    size = training.get("round_images")
    if size:
        rounds = -(-updates // size)
        return Budget(rounds, size, rounds * size, f"{rule} in rounds of {size:,}")
    per = -(-updates // training["rounds"])
    return Budget(training["rounds"], per, per * training["rounds"], f"{rule} in {training['rounds']} rounds")


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
        patience: int | None = None, per_epoch_items: int | None = None, keep: dict[int, int] | None = None) -> None:
    """Train `model` from where `run` left off (its resume file) to `epochs`: each epoch shuffles the
    n training items with `order`, runs `step` on every global batch and the optimizer after it, then
    `validate`, and ends the epoch in `run` (history, best weights, resume file).  With `dist`
    (npdraw.compute.distributed.Dist) each rank takes its share of every batch; ranks other than 0 draw
    their own random numbers from (seed, the `stream`'s salt, epoch).  With `patience`, training stops
    early once that many epochs in a row have not improved the validation score (decided from the
    recorded state, so a resumed run stops where the uninterrupted one would).  `per_epoch_items`
    (npdraw.training.loop.plan): an epoch of that many items, cycling or sampling the n (epoch_order).
    `keep` {epoch (from 1): label}: at the end of those epochs the best weights so far are set aside under
    the label (Run.end_epoch).  The run's state records after which epoch training stopped and why."""
    rank, world = (dist.rank, dist.world) if dist is not None else (0, 1)
    per_epoch = batches(per_epoch_items or n, batch_size, world)
    for epoch in range(run.restore(model, optimizer, order, device), epochs):
        if run.state["stopped"] is not None:
            break
        if patience is not None and epoch - run.state["best_epoch"] >= patience:
            log.info("%s: no better validation score for %d epochs: stopping after epoch %d of %d", name, patience,
                     epoch, epochs)
            run.stop(epoch, "patience", model, optimizer, order)
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
        run.end_epoch(model, optimizer, order, record, score, (keep or {}).get(epoch + 1))
    run.stop(run.state["epoch"], "budget", model, optimizer, order)
