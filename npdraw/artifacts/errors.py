"""The failures a stage knows how to explain: each ends the stage with one `error:` paragraph, exit 2.

A small taxonomy, so that a message says what kind of thing is wrong and so what to fix:

  ParamsError      params.yaml or a run choice (dataset, profile, split, seed, variant) is unusable
  DataError        a dataset file is missing, corrupt or fails its checksum
  ArtifactError    a file one stage hands another breaks its contract (npdraw.artifacts.contracts)
  CheckpointError  ... a checkpoint: unreadable, of another kind, or of another configuration
  MachineError     the machine cannot do what was asked (a GPU that is not there, a held lock)

Anything else that escapes a stage is a bug in the pipeline and keeps its traceback.
"""

from __future__ import annotations


class NpdrawError(Exception):
    """A known failure; its message names the file, key or value and what was expected."""


class ParamsError(NpdrawError, ValueError):
    """params.yaml (or a choice made on the command line) is not usable."""


class DataError(NpdrawError, RuntimeError):
    """A dataset file is missing, corrupt or fails its checksum."""


class ArtifactError(NpdrawError, RuntimeError):
    """An artifact written by one stage and read by another breaks its contract."""


class CheckpointError(ArtifactError):
    """A checkpoint is unreadable, of another kind, or of another configuration than the run's."""


class MachineError(NpdrawError, RuntimeError):
    """The machine cannot do what was asked: a device that is not there, a lock another run holds."""
