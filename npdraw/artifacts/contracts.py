"""Contracts for what stages hand each other: checked by the reader, written once beside the writer.

An `ArrayContract` lists the fields of an array artifact (an .npy, the members of an
.npz, the tensors of a checkpoint) with their dtype family, shape and value range.
Shapes and ranges may name dimensions: a dimension the reader knows from the run's
configuration (M parts, T steps, N images of the dataset) is passed to `check` and
must match; an unknown one is bound by the first field that uses it and must agree
across fields (every split of a parses file has the same T).

A `CheckpointContract` names a checkpoint's kind (a prior is not a model), the keys
it must carry, and the configuration entries that must equal the run's.

Every violation is one ArtifactError (CheckpointError for checkpoints) naming the
file, the field, what was found, what was expected, and the stage that writes a
good one; the stage CLI turns it into one `error:` paragraph and exit 2, before
anything is written.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from npdraw.artifacts.errors import ArtifactError, CheckpointError

# dtype families a field may ask for, and the numpy kinds that satisfy each
KINDS = {"uint8": ("u",), "int": ("i", "u"), "bool": ("b",), "float": ("f",), "index": ("i", "u")}

Bound = int | float | str | None   # a number, a dimension's name, or no bound


@dataclass(frozen=True)
class Field:
    """One array of an artifact: `dtype` a family of KINDS; `shape` of ints, dimension names or
    None (any size); values within [low, high] and below `below` (exclusive, e.g. "M" for part ids);
    `finite` for floats."""
    name: str
    dtype: str
    shape: tuple[int | str | None, ...]
    low: Bound = None
    high: Bound = None
    below: Bound = None
    finite: bool = True
    optional: bool = False


@dataclass(frozen=True)
class ArrayContract:
    """The fields of one array artifact, and the stage that writes it."""
    artifact: str   # what it is, for messages: "parses", "part bank", ...
    writer: str     # the stage that writes a good one
    fields: tuple[Field, ...]

    def fail(self, path, problem: str, cls=ArtifactError) -> ArtifactError:
        return cls(f"{path}: {problem}; the {self.writer} stage writes a good {self.artifact} (rerun it, or pass "
                   f"the file this run's {self.writer} wrote)")

    def check(self, path: str | Path, arrays: Mapping[str, Any], **dims: int) -> dict[str, int]:
        """Check `arrays` (name -> array-like) read from `path`; return every dimension, bound or given."""
        bound = dict(dims)
        for f in self.fields:
            if f.name not in arrays:
                if f.optional:
                    continue
                raise self.fail(path, f"{self.artifact} has no field '{f.name}' (fields found: "
                                      f"{', '.join(sorted(map(str, arrays))) or 'none'}; expected "
                                      f"{', '.join(g.name for g in self.fields if not g.optional)})")
            self._check_field(path, f, np.asarray(_numpy(arrays[f.name])), bound)
        return bound

    def _check_field(self, path, f: Field, a: np.ndarray, bound: dict[str, int]) -> None:
        where = f"{self.artifact} field '{f.name}'"
        if a.dtype.kind not in KINDS[f.dtype] or (f.dtype == "uint8" and a.dtype != np.uint8):
            raise self.fail(path, f"{where} is {a.dtype}, expected {f.dtype}")
        if a.ndim != len(f.shape):
            raise self.fail(path, f"{where} has shape {a.shape}, expected {_shape(f.shape, bound)}")
        for axis, (size, want) in enumerate(zip(a.shape, f.shape)):
            if want is None:
                continue
            if isinstance(want, str):
                if want not in bound:
                    bound[want] = size
                    continue
                want_size, name = bound[want], f"{want} = {bound[want]}"
            else:
                want_size, name = want, str(want)
            if size != want_size:
                raise self.fail(path, f"{where} has shape {a.shape}, expected {_shape(f.shape, bound)} "
                                      f"(axis {axis}: {size}, expected {name})")
        if a.size == 0:
            return
        if f.dtype == "float" and f.finite:
            bad = ~np.isfinite(a)
            if bad.any():
                raise self.fail(path, f"{where} holds {int(bad.sum())} non-finite values (first at index "
                                      f"{tuple(int(i) for i in np.argwhere(bad)[0])}: {a[bad].flat[0]}), expected "
                                      f"finite numbers")
        if f.dtype == "bool":
            return
        lo, hi = a.min(), a.max()
        for bound_value, ok, relation in ((f.low, lambda v: lo >= v, ">="), (f.high, lambda v: hi <= v, "<="),
                                          (f.below, lambda v: hi < v, "<")):
            if bound_value is None:
                continue
            value = bound[bound_value] if isinstance(bound_value, str) else bound_value
            if not ok(value):
                found = lo if relation == ">=" else hi
                named = f"{bound_value} = {value}" if isinstance(bound_value, str) else f"{value}"
                raise self.fail(path, f"{where} holds values from {_num(lo)} to {_num(hi)} ({_num(found)} found), "
                                      f"expected every value {relation} {named}")


@dataclass(frozen=True)
class CheckpointContract:
    """A checkpoint kind: the keys it carries and the stage that writes it."""
    kind: str       # stored under the checkpoint's "kind" key
    writer: str
    keys: tuple[str, ...]

    def fail(self, path, problem: str) -> CheckpointError:
        return CheckpointError(f"{path}: {problem}; the {self.writer} stage writes a good {self.kind} checkpoint "
                               f"(rerun it, or pass the file this run's {self.writer} wrote)")

    def check(self, path: str | Path, ckpt: dict, expect: Mapping[str, Any] | None = None,
              found_config: Mapping[str, Any] | None = None, what: str = "this run") -> None:
        """The checkpoint's kind and keys; its tensors finite; `found_config` (default: ckpt['arch'])
        equal to `expect` on every key `expect` names."""
        kind = ckpt.get("kind")
        if kind != self.kind:
            found = (f"a {kind} checkpoint" if isinstance(kind, str) else
                     "a checkpoint without a 'kind' (not written by this pipeline's stages, or by an older version)")
            raise self.fail(path, f"{found}, expected a {self.kind} checkpoint")
        missing = [k for k in self.keys if k not in ckpt]
        if missing:
            raise self.fail(path, f"{self.kind} checkpoint without {', '.join(repr(k) for k in missing)} "
                                  f"(keys found: {', '.join(sorted(map(str, ckpt)))})")
        for name, tensor in _tensors(ckpt):
            values = np.asarray(_numpy(tensor))
            if values.dtype.kind == "f" and not np.isfinite(values).all():
                raise self.fail(path, f"{self.kind} checkpoint tensor '{name}' holds "
                                      f"{int((~np.isfinite(values)).sum())} non-finite values, expected finite "
                                      f"weights (a diverged or damaged run)")
        if expect:
            found = ckpt.get("arch", {}) if found_config is None else found_config
            diff = [f"{k} = {found.get(k)!r} (expected {v!r})" for k, v in expect.items() if found.get(k) != v]
            if diff:
                raise self.fail(path, f"a {self.kind} checkpoint of another configuration than {what}: "
                                      f"{', '.join(diff)}")


    @contextlib.contextmanager
    def rebuilding(self, path: str | Path):
        """Around rebuilding a module from a checked checkpoint: settings or tensors that do not fit
        the architecture become one CheckpointError instead of a traceback."""
        try:
            yield
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
            raise self.fail(path, f"{self.kind} checkpoint that does not rebuild its model "
                                  f"({type(err).__name__}: {str(err).splitlines()[0][:300]})") from None


# The kind of value each well-known metric holds wherever it appears (None allowed where a metric does not
# apply, unless the reader requires it): a bool where a number belongs (JSON true read as 1) or text where a
# count belongs is refused, naming the file and the key.
NUMBER, COUNT, TEXT, OBJECT, LIST = "a number", "a whole number", "text", "an object", "a list"
METRIC_KINDS = {
    **dict.fromkeys(("nll_nats", "elbo_nats", "bce_nats", "kl_nats", "reg_nats", "nll_stderr_nats", "bits_per_dim",
                     "fid_domain", "fid_domain_floor", "fid_domain_floor_sd", "fid_domain_real", "kid_domain",
                     "kid_domain_std", "precision_domain", "recall_domain", "fid", "kid", "kid_std", "precision",
                     "recall", "psnr_db", "selection_score", "valid_accuracy", "domain_classifier_accuracy",
                     "wall_seconds"), NUMBER),
    **dict.fromkeys(("generated", "nll_samples", "nll_images", "test_images", "fid_reference_images",
                     "selected_epoch", "best_epoch", "epochs", "real_images"), COUNT),
    **dict.fromkeys(("selected_by", "system", "sample_rule", "selection_key"), TEXT),
    **dict.fromkeys(("valid", "test", "provenance", "feature_network"), OBJECT),
    "history": LIST,
}
_CHECKS = {NUMBER: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
           COUNT: lambda v: isinstance(v, int) and not isinstance(v, bool),
           TEXT: lambda v: isinstance(v, str), OBJECT: lambda v: isinstance(v, Mapping),
           LIST: lambda v: isinstance(v, list)}


def check_metrics(path: str | Path, metrics: Mapping[str, Any], required: tuple[str, ...] = (),
                  writer: str = "the stage that writes it") -> None:
    """A metrics file's `required` keys are present (not null), every well-known metric in it has its kind
    (METRIC_KINDS) and every number in it is finite; else an ArtifactError naming the file and the key."""
    missing = [k for k in required if metrics.get(k) is None]
    if missing:
        raise ArtifactError(f"{path}: metrics file without {', '.join(repr(k) for k in missing)} (keys found: "
                            f"{', '.join(sorted(metrics)) or 'none'}); rerun {writer}")
    for key, kind in METRIC_KINDS.items():
        value = metrics.get(key)
        if value is not None and not _CHECKS[kind](value):
            raise ArtifactError(f"{path}: metric '{key}' = {value!r}, expected {kind}; rerun {writer}")
    bad = non_finite(metrics)
    if bad:
        raise ArtifactError(f"{path}: metric '{bad[0][0]}' = {bad[0][1]}, expected a finite number "
                            f"({len(bad)} such value(s)); rerun {writer}")


def non_finite(obj: Any, prefix: str = "") -> list[tuple[str, float]]:
    """(dotted key, value) of every NaN or infinite float in a nested dict / list of metrics."""
    if isinstance(obj, float) or isinstance(obj, np.floating):
        return [] if math.isfinite(obj) else [(prefix or "(value)", float(obj))]
    if isinstance(obj, Mapping):
        return [hit for k, v in obj.items() for hit in non_finite(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(obj, (list, tuple)):
        return [hit for i, v in enumerate(obj) for hit in non_finite(v, f"{prefix}.{i}" if prefix else str(i))]
    return []


def _tensors(obj: Any, prefix: str = ""):
    """(dotted name, tensor) of every tensor in a checkpoint's nested dicts."""
    import torch

    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _tensors(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{prefix}.{i}" if prefix else str(i))


def _numpy(value: Any) -> Any:
    """Tensors as numpy arrays (bfloat16 through float32, which numpy lacks)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu()
        return (value.float() if value.is_floating_point() else value).numpy()
    return value


def _shape(shape: tuple, bound: Mapping[str, int] | None = None) -> str:
    parts = [("any" if s is None else f"{s} = {bound[s]}" if isinstance(s, str) and bound and s in bound else str(s))
             for s in shape]
    return "(" + ", ".join(parts) + (",)" if len(parts) == 1 else ")")


def _num(v) -> str:
    return f"{v:.6g}" if isinstance(v, (float, np.floating)) else str(v)
