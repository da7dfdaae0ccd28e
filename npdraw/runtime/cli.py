"""What every stage CLI shares: arguments naming the run, config loading, logging, errors."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from npdraw.runtime import pipeline
from npdraw.runtime.config import load_params
from npdraw.runtime.errors import NpdrawError, ParamsError
from npdraw.runtime.pipeline import SCOPES

CHOICE_ARGS = {
    "dataset": dict(help="a key of `datasets` in params (default: params' `dataset`)"),
    "profile": dict(help="smoke | quick | paper (default: params' `profile`)"),
    "split": dict(help="full, digit-F, sample-F, character-F, alphabet-F"),
    "seed": dict(type=int, help="run seed"),
    "variant": dict(help="ablation variant, e.g. base or K6-M10"),
}

COMMON = {
    "data": dict(required=True, help="prepared dataset folder"),
    "splits": dict(required=True, help="splits .npz of the run"),
    "device": dict(default="auto", help="auto (a free visible GPU, leased; else the CPU), cpu or cuda"),
}


def stage_parser(stage: str, description: str, common: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """Parser of stage `stage` (an entry of npdraw.runtime.pipeline.STAGES): --params and the run choices
    its scope names (default: params.yaml's); `common` adds the arguments many stages share
    (--data, --splits, --device)."""
    p = argparse.ArgumentParser(description=description)
    p.set_defaults(stage=stage)
    p.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    for choice in SCOPES[pipeline.stage(stage).scope]:
        p.add_argument(f"--{choice}", **CHOICE_ARGS[choice])
    for name in common:
        p.add_argument(f"--{name}", **COMMON[name])
    return p


# Arguments that name a file a stage reads (as opposed to one it writes).
INPUT_ARGS = ("data", "splits", "bank", "parses", "prior", "model", "classifier", "reference")


def input_files(args: argparse.Namespace) -> dict[str, str]:
    """{'--bank': path, ...}: the files this stage read, for messages that must name them."""
    return {f"--{name}": str(getattr(args, name)) for name in INPUT_ARGS if getattr(args, name, None)}


def run_config(args: argparse.Namespace):
    """The resolved configuration the stage of `args` (stage_parser) runs with, its name under
    `stage`.  A variant the running engine cannot build is refused before any work, with one message
    (pipeline.unbuildable): a stage of another system (the PixelVAE baseline has no parts, parses or
    prior), and under DVC (which sets DVC_STAGE for a stage's command) any variant whose system needs a
    stage dvc.yaml does not hold, even at the stages every system shares."""
    s = pipeline.stage(args.stage)
    params = load_params(args.params)
    choice = {c: getattr(args, c, None) for c in SCOPES[s.scope]}
    requested = params["variant"] if choice.get("variant") is None else choice["variant"]
    problem = pipeline.unbuildable(requested, s, "dvc" if "DVC_STAGE" in os.environ else "snakemake")
    if problem:
        raise ParamsError(problem)
    cfg = s.config(params, **choice)
    cfg["stage"] = s.name
    return cfg


def main(body: Callable[[], None]) -> None:
    """Run a stage: log to stderr; known failures exit 2 with one clear message."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        body()
    except NpdrawError as err:   # params, data, artifact, checkpoint, machine: one paragraph (npdraw.runtime.errors)
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except FileNotFoundError as err:  # an input named on the command line is not there
        print(f"error: {err.filename}: file not found; run the stage that writes it first (or fix the path)",
              file=sys.stderr)
        sys.exit(2)
    except FloatingPointError as err:  # a diverged training run (npdraw.training.loop.check_finite)
        print(f"error: {err}", file=sys.stderr)
        sys.exit(3)
