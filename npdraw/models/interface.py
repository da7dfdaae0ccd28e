"""The written interface of a generative model the pipeline can train, score and sample.

Every system of the registry (npdraw.workflow.systems) names one class meeting `GenerativeModel`; the
stages reach it only through this interface (`model_class`, npdraw.models.checkpoints) and never
through its name.  Shapes: B images (C, H, W), S importance samples.

- Built from a run's resolved configuration (`arch` the architecture that configuration gives,
  `build` a fresh model; NP-DRAW also takes its trained prior).
- Training (npdraw.training.trainer, one loop for every system): `terms(x_in, x_target, *training_args(step,
  data))` gives per-image (B,) terms from one differentiable posterior sample, at least `log_px` = log p(x|z)
  and `kl` (the ELBO is their difference); `objective(terms, cfg)` is the one loss call, the per-image loss
  the trainer minimises (-(log_px - kl); NP-DRAW adds lambda times its parse cross-entropy `ce`);
  `param_groups(cfg)` the optimiser's parameters and rates; `validation_terms` the terms of one hard
  sample of validation images; `fingerprint` and `epoch_record` what a resume file and an epoch's record
  add (npdraw.models.interface.Baseline: a Gaussian-latent VAE's).
- Likelihood: `log_weights` draws S samples z_s ~ q(z|x) and returns log p(x|z_s), log p(z_s) and
  log q(z_s|x), each (S, B), from which npdraw.evaluation.importance forms the importance-sampled
  bound, the same for every system (float64, log-mean-exp over S).
- Samples: `sample(n)` gives images in [0, 1] (B, C, H, W), and the canvases and decoder means where the
  system has them (None where not); `sample_rule` says in words how an image is drawn.
- Pictures: `reconstruct` gives the decoder's mean image of a posterior sample (or of q's mean).
- Checkpoint: `kind` (the system's name, npdraw.artifacts.contracts.CheckpointContract) and `keys`;
  `checkpoint()` what the file holds besides the training records, `from_checkpoint` the inverse,
  `check_checkpoint` refuses a file of another kind or another configuration than a run's.
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch

from npdraw.artifacts.contracts import CheckpointContract
from npdraw.workflow.systems import system


@runtime_checkable
class GenerativeModel(Protocol):
    """See the module docstring."""

    kind: ClassVar[str]
    keys: ClassVar[tuple[str, ...]]
    cfg: Any

    @classmethod
    def arch(cls, cfg) -> dict: ...

    @classmethod
    def build(cls, cfg, **inputs) -> GenerativeModel: ...

    @classmethod
    def from_checkpoint(cls, ckpt: dict) -> GenerativeModel: ...

    @classmethod
    def check_checkpoint(cls, path, ckpt: dict, cfg=None) -> None: ...

    def checkpoint(self) -> dict: ...

    def terms(self, x_in: torch.Tensor, x_target: torch.Tensor, *args, **kwargs) -> dict[str, torch.Tensor]: ...

    def param_groups(self, cfg) -> list[dict]: ...

    def training_args(self, step, data: dict) -> tuple: ...

    @staticmethod
    def objective(terms: dict[str, torch.Tensor], cfg) -> torch.Tensor: ...

    def validation_terms(self, x: torch.Tensor, generator, data: dict, rows: slice,
                         precision: str) -> dict[str, torch.Tensor]: ...

    def fingerprint(self) -> dict: ...

    def epoch_record(self, step) -> dict: ...

    def log_weights(self, x_in: torch.Tensor, x_target: torch.Tensor, samples: int, generator=None,
                    compile: bool = False, per_pass: int = 1) -> dict[str, torch.Tensor]: ...

    def sample(self, n: int, generator=None, colour: str = "mean") -> dict[str, torch.Tensor | None]: ...

    def sample_rule(self, colour: str) -> str: ...

    def reconstruct(self, x: torch.Tensor, generator=None) -> torch.Tensor: ...


def stacked_passes(q, x_target, samples: int, per_pass: int, draw, score) -> dict[str, torch.Tensor]:
    """log p(x|z), log p(z), log q(z|x) of `samples` draws from the posterior q (a tuple of (B, ...)
    tensors), each (S, B): `per_pass` samples at a time scored as one batch of per_pass x B, sample-major,
    so that draw(q repeated k times) takes the same random numbers as k draws of q.  The repeated
    batches are built once per pass size (at most two: per_pass and the remainder), not per pass."""
    def repeated(k: int):
        if k == 1:
            return q, x_target
        return tuple(t.repeat(k, *[1] * (t.dim() - 1)) for t in q), x_target.repeat(k, *[1] * (x_target.dim() - 1))

    batches, out = {}, []
    for first in range(0, samples, per_pass):
        k = min(per_pass, samples - first)
        if k not in batches:
            batches[k] = repeated(k)
        qk, xk = batches[k]
        out.append([v.reshape(k, -1) for v in score(qk, draw(qk), xk)])
    return {key: torch.cat(v) for key, v in zip(("log_px", "log_pz", "log_qz"), zip(*out))}


def run_name(cfg) -> str:
    """The run a checkpoint is checked against, as messages name it."""
    return f"{cfg.dataset}, variant {cfg.variant!r}, profile {cfg.profile!r}"


def model_class(name: str) -> type[GenerativeModel]:
    """The model class of system `name`, imported from its registry entry's 'module:Class'."""
    module, _, cls = system(name).model.partition(":")
    return getattr(importlib.import_module(module), cls)


def contract(model_cls) -> CheckpointContract:
    """The checkpoint contract of a model class: its kind, the stage that writes it, its keys."""
    writer = "train_model" if system(model_cls.kind).parts else "train_baseline"
    return CheckpointContract(model_cls.kind, writer, model_cls.keys)


class Baseline:
    """What the baselines' classes share: a checkpoint of their architecture (a dataclass `Config` with
    to_dict()) and state dict, checked against the run's configuration; the architecture read from the
    system's params section (the section keys that are fields of `Config`)."""

    kind: ClassVar[str]
    keys: ClassVar[tuple[str, ...]] = ("arch", "state_dict")
    Config: ClassVar[type]

    @classmethod
    def arch(cls, cfg) -> dict:
        section = cfg[system(cls.kind).section]
        fields = cls.Config.__dataclass_fields__
        return cls.Config(**{k: section[k] for k in fields if k in section}, **cls.data_arch(cfg)).to_dict()

    @classmethod
    def data_arch(cls, cfg) -> dict:
        """Architecture settings that come from the dataset, not the section (none by default)."""
        return {}

    @classmethod
    def build(cls, cfg, **inputs):
        return cls(cls.Config(**cls.arch(cfg)))

    @classmethod
    def from_checkpoint(cls, ckpt: dict):
        model = cls(cls.Config(**ckpt["arch"]))
        model.load_state_dict(ckpt["state_dict"])
        return model

    @classmethod
    def check_checkpoint(cls, path, ckpt: dict, cfg=None) -> None:
        what = f"this run ({run_name(cfg)})" if cfg is not None else ""
        contract(cls).check(path, ckpt, cls.arch(cfg) if cfg is not None else None, what=what)

    def checkpoint(self) -> dict:
        return {"arch": self.cfg.to_dict(), "state_dict": self.state_dict()}

    # --- training: a VAE's ELBO on its own parameters (npdraw.training.trainer) ----------------------

    def param_groups(self, cfg) -> list[dict]:
        return [{"params": self.parameters(), "lr": cfg[system(self.kind).section].lr}]

    def training_args(self, step, data: dict) -> tuple:
        return ()

    @staticmethod
    def objective(terms: dict[str, torch.Tensor], cfg) -> torch.Tensor:
        """The negative ELBO of each image (B,), nats."""
        return -(terms["log_px"] - terms["kl"])

    def validation_terms(self, x: torch.Tensor, generator, data: dict, rows: slice, precision: str) -> dict:
        from npdraw.compute.precision import autocast

        with autocast(x.device, precision):
            return self.terms(x, x, generator=generator)

    def fingerprint(self) -> dict:
        return {}

    def epoch_record(self, step) -> dict:
        return {}
