"""What every stage CLI shares: arguments naming the run, config loading, logging, errors."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable

from npdraw.artifacts.errors import NpdrawError, ParamsError
from npdraw.compute.memory import keep_freed_memory
from npdraw.workflow import stages as stage_table
from npdraw.workflow.params import load_params
from npdraw.workflow.paths import SCOPES

CHOICE_ARGS = {
    "dataset": dict(help="a key of `datasets` in params (default: params' `dataset`)"),
    "profile": dict(help="smoke | quick | reference | paper (default: params' `profile`)"),
    "split": dict(help="full, digit-F, sample-F, character-F, alphabet-F"),
    "seed": dict(type=int, help="run seed"),
    "variant": dict(help="ablation variant, e.g. base or K6-M10"),
}

COMMON = {
    "device": dict(default="auto", help="auto (a free visible GPU, leased; else the CPU), cpu or cuda"),
}


def stage_parser(stage: str, description: str, common: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """Parser of stage `stage` (an entry of npdraw.workflow.stages.STAGES): --params, the run choices
    its scope names (default: params.yaml's), and every input and output its entry lists (required);
    `common` adds the options some stages share (--device)."""
    s = stage_table.stage(stage)
    p = argparse.ArgumentParser(description=description)
    p.set_defaults(stage=stage)
    p.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    for choice in SCOPES[s.scope]:
        p.add_argument(f"--{choice}", **CHOICE_ARGS[choice])
    for flag in s.inputs:
        p.add_argument(f"--{flag}", required=True, help=stage_table.INPUT_HELP[flag])
    for flag, out in s.outputs.items():
        p.add_argument(f"--{flag}", required=True, help=out.help)
    for name in common:
        p.add_argument(f"--{name}", **COMMON[name])
    return p


def input_files(args: argparse.Namespace) -> dict[str, str]:
    """{'--bank': path, ...}: the files this stage read, for messages that must name them."""
    return {f"--{flag}": str(getattr(args, flag)) for flag in stage_table.stage(args.stage).inputs}


def run_config(args: argparse.Namespace):
    """The resolved configuration the stage of `args` (stage_parser) runs with, its name under
    `stage`.  A variant the running engine cannot build is refused before any work, with one message
    (stage_table.unbuildable): a stage of another system (a baseline has no parts, parses or prior), and
    under DVC (which sets DVC_STAGE for a stage's command) any variant whose system needs a stage
    dvc.yaml does not hold, even at the stages every system shares."""
    s = stage_table.stage(args.stage)
    params = load_params(args.params)
    choice = {c: getattr(args, c, None) for c in SCOPES[s.scope]}
    requested = params["variant"] if choice.get("variant") is None else choice["variant"]
    problem = stage_table.unbuildable(requested, s, "dvc" if "DVC_STAGE" in os.environ else "snakemake")
    if problem:
        raise ParamsError(problem)
    cfg = s.config(params, **choice)
    cfg["stage"] = s.name
    return cfg


def main(body: Callable[[], None]) -> None:
    """Run a stage: log to stderr; known failures exit 2 with one clear message."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    keep_freed_memory()   # before the first large tensor (npdraw.compute.memory: why)
    try:
        body()
    except NpdrawError as err:   # params, data, artifact, checkpoint, machine: one paragraph (npdraw.artifacts.errors)
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except FileNotFoundError as err:  # an input named on the command line is not there
        print(f"error: {err.filename}: file not found; run the stage that writes it first (or fix the path)",
              file=sys.stderr)
        sys.exit(2)
    except FloatingPointError as err:  # a diverged training run (npdraw.training.loop.check_finite)
        print(f"error: {err}", file=sys.stderr)
        sys.exit(3)
