"""Two Snakemake runs at once in one checkout: the same configuration twice is refused, different
configurations run one after the other.

Snakemake's own lock refuses a second process whose outputs *or inputs* overlap the files the first
one still has to build: two configurations of one dataset share the prepared data and the FID
reference, so without this module the second of two different runs started together fails with
"Directory cannot be locked".  Instead, the Snakefile (workflow/common.smk) calls `acquire` while it
is parsed by a main process that is going to execute jobs:

  .npdraw/locks/run-<dataset>-<profile>-<split>-seed<N>-<variant>.lock
      taken without waiting: held already means this configuration is running now, and the second
      process is refused with one message naming the lock and its holder;
  .npdraw/locks/snakemake.lock
      then taken waiting (one log line says for whom), so a different configuration starts once the
      running one has finished, and Snakemake's lock never sees two of them.

Both are flock(2) locks on files that stay on disk: the kernel releases them when their process
ends, however it ends, so a crash leaves nothing to clear here (Snakemake's own stale lock after a
crash is cleared by `python -m npdraw.workflow.recovery`).  `dvc repro` holds DVC's repository lock for the
whole reproduction: a second `dvc repro` is refused by DVC, or waits with `dvc --wait-for-lock repro`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
from pathlib import Path
from typing import IO

from npdraw.artifacts.errors import MachineError

log = logging.getLogger(__name__)
LOCK_DIR = Path(".npdraw/locks")
CHECKOUT_LOCK = "snakemake.lock"

# Snakemake options after which it executes no job: these never take the locks.
NON_EXECUTING = {
    "-n", "--dry-run", "--dryrun", "--lint", "--report", "--unlock", "-l", "--list", "--list-rules",
    "--list-target-rules", "--lt", "-S", "--summary", "-D", "--detailed-summary", "--dag", "--rulegraph",
    "--filegraph", "--d3dag", "--cleanup-metadata", "--cm", "--list-changes", "--lc", "--list-input-changes",
    "--li", "--list-params-changes", "--lp", "--list-code-changes", "--list-version-changes", "--cleanup-shadow",
    "--delete-all-output", "--delete-temp-output", "--archive", "--containerize", "--export-cwl",
    "--print-compilation", "--generate-unit-tests", "--version", "-v", "-h", "--help", "--touch", "-t",
}


def executes(argv: list[str]) -> bool:
    """Whether a `snakemake` command line runs jobs (not a dry run, lint, report, listing, ...)."""
    for arg in argv[1:]:
        option = arg.split("=", 1)[0]
        if option in NON_EXECUTING:
            return False
        if arg.startswith("-") and not arg.startswith("--") and arg[1:].isalpha() and "n" in arg[1:]:
            return False   # combined short flags such as -np
    return True


def run_lock_name(config: dict) -> str:
    return (f"run-{config['dataset']}-{config['profile']}-{config['split']}-seed{config['seed']}-"
            f"{config['variant']}.lock")


def acquire(config: dict, root: Path = Path("."), wait: bool = True) -> list[IO]:
    """Take the configuration's lock (refused with MachineError if held) and then the checkout's
    (waiting for it, or with wait=False refused too).  Keep the returned files open for as long as
    the locks must be held: closing them, or the process ending, releases them."""
    folder = Path(root).resolve() / LOCK_DIR
    folder.mkdir(parents=True, exist_ok=True)
    run_path = folder / run_lock_name(config)
    run = _open(run_path)
    if not _try_lock(run):
        holder = _holder(run_path)
        run.close()
        raise MachineError(
            f"{run_path}: this configuration (dataset {config['dataset']}, profile {config['profile']}, split "
            f"{config['split']}, seed {config['seed']}, variant {config['variant']}) is already running in this "
            f"checkout ({holder}); wait for it to finish, or stop it. The lock is released by the kernel when "
            f"its process ends, so nothing needs clearing after a crash (Snakemake's own stale lock after a "
            f"crash: python -m npdraw.workflow.recovery)")
    _stamp(run)
    checkout_path = folder / CHECKOUT_LOCK
    checkout = _open(checkout_path)
    if not _try_lock(checkout):
        holder = _holder(checkout_path)
        if not wait:
            run.close()
            checkout.close()
            raise MachineError(f"{checkout_path}: another Snakemake run is executing in this checkout ({holder})")
        print(f"npdraw: waiting for the Snakemake run in this checkout to finish ({holder}): Snakemake "
              f"refuses two runs that share files ({checkout_path})", file=sys.stderr, flush=True)
        fcntl.flock(checkout, fcntl.LOCK_EX)
    _stamp(checkout, config)
    return [run, checkout]


def _open(path: Path) -> IO:
    return open(path, "a+")   # never truncates a holder's stamp before the lock is ours


def _try_lock(f: IO) -> bool:
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _stamp(f: IO, config: dict | None = None) -> None:
    """Who holds the lock, for the message of whoever finds it held."""
    f.seek(0)
    f.truncate()
    what = "" if config is None else (f" running {config['dataset']} {config['profile']} {config['split']} "
                                      f"seed{config['seed']} {config['variant']}")
    f.write(f"PID {os.getpid()}{what}: {' '.join(sys.argv)}\n")
    f.flush()


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        text = ""
    return text or "a process that has not yet written its name"
