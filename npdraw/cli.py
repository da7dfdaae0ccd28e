"""What every stage CLI shares: arguments naming the run, config loading, logging, errors."""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from npdraw.config import load_params, resolve
from npdraw.errors import NpdrawError


COMMON = {
    "data": dict(required=True, help="prepared dataset folder"),
    "splits": dict(required=True, help="splits .npz of the run"),
    "device": dict(default="auto", help="auto (a free visible GPU, leased; else the CPU), cpu or cuda"),
}


def stage_parser(description: str, run: bool = True, common: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """Parser with --params and, for per-run stages, the run's choices (default: params.yaml's);
    `common` adds the arguments many stages share (--data, --splits, --device)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    p.add_argument("--dataset", help="a key of `datasets` in params (default: params' `dataset`)")
    if run:
        p.add_argument("--profile", help="smoke | quick | paper (default: params' `profile`)")
        p.add_argument("--split", help="full, digit-F, sample-F, character-F, alphabet-F")
        p.add_argument("--seed", type=int, help="run seed")
        p.add_argument("--variant", help="ablation variant, e.g. base or K6-M10")
    for name in common:
        p.add_argument(f"--{name}", **COMMON[name])
    return p


# Arguments that name a file a stage reads (as opposed to one it writes).
INPUT_ARGS = ("data", "splits", "bank", "parses", "prior", "model", "classifier", "reference")


def input_files(args: argparse.Namespace) -> dict[str, str]:
    """{'--bank': path, ...}: the files this stage read, for messages that must name them."""
    return {f"--{name}": str(getattr(args, name)) for name in INPUT_ARGS if getattr(args, name, None)}


def run_config(args: argparse.Namespace):
    params = load_params(args.params)
    return resolve(params, dataset=args.dataset, profile=getattr(args, "profile", None),
                   split=getattr(args, "split", None), seed=getattr(args, "seed", None),
                   variant=getattr(args, "variant", None))


def main(body: Callable[[], None]) -> None:
    """Run a stage: log to stderr; known failures exit 2 with one clear message."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        body()
    except NpdrawError as err:   # params, data, artifact, checkpoint, machine: one paragraph (npdraw.errors)
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except FileNotFoundError as err:  # an input named on the command line is not there
        print(f"error: {err.filename}: file not found; run the stage that writes it first (or fix the path)",
              file=sys.stderr)
        sys.exit(2)
    except FloatingPointError as err:  # a diverged training run (npdraw.training.check_finite)
        print(f"error: {err}", file=sys.stderr)
        sys.exit(3)
