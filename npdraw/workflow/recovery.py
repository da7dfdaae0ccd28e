"""After a crash: clear what dead Snakemake / DVC / stage processes left, so the pipeline reruns.

A SIGKILLed or power-cut `snakemake` leaves `.snakemake/locks/` behind and a killed `dvc repro`
leaves its entries in `.dvc/tmp/rwlock`; both tools then refuse to start ("Directory cannot be
locked", "... is busy") until somebody has checked that nothing is running and removed them.  A
killed stage also leaves the temporaries of the outputs it was writing (`.<name>.*.tmp`, see
npdraw.artifacts.io.atomic_path): never taken as outputs, but they take space.

This does the check and the clean-up: only when no process of this project is alive on this
machine (a `snakemake`, `dvc` or `stages/*.py` process whose working directory is the project)
does it remove the locks and temporaries; otherwise it names the live processes and touches
nothing.  What a killed run finished is kept: outputs are written atomically, Snakemake reruns
incomplete jobs (`--rerun-incomplete`), `dvc repro` reruns stages whose outputs do not match
dvc.lock, and training resumes from its `resume.pt`.

    python -m npdraw.workflow.recovery [project folder]     (`make run` calls it first)

On a cluster whose nodes share the project folder, run it only where the workflow ran: it
cannot see processes on other machines.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from npdraw.artifacts.io import TEMPORARY_GLOB

# Where stages write (temporaries of atomic writes are siblings of their outputs).
OUTPUT_ROOTS = ("data", "results")


@dataclass
class Recovery:
    live: list[str] = field(default_factory=list)        # processes of the project still running
    snakemake_locks: list[Path] = field(default_factory=list)
    dvc_rwlock: Path | None = None
    temporaries: list[Path] = field(default_factory=list)
    resumable: list[Path] = field(default_factory=list)  # training that will continue, not restart

    def summary(self, removed: str = "removed") -> str:
        if self.live:
            return ("left as is: processes of this project are running:\n  " + "\n  ".join(self.live)
                    + "\nwait for them or stop them, then run this again")
        lines = [f"{removed} {len(self.snakemake_locks)} Snakemake lock(s)" if self.snakemake_locks else "",
                 f"{removed} the stale DVC lock {self.dvc_rwlock}" if self.dvc_rwlock else "",
                 f"{removed} {len(self.temporaries)} temporary output(s) of killed stages" if self.temporaries else "",
                 *(f"training will resume from {p}" for p in self.resumable)]
        return "\n".join(line for line in lines if line) or "nothing to recover"


def project_processes(root: Path) -> list[str]:
    """'pid: command' of live snakemake / dvc / stage processes working in `root` (not this one)."""
    root, found, me = root.resolve(), [], os.getpid()
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            cmdline, cwd = proc.info["cmdline"] or [], proc.info["cwd"]
            if proc.pid == me or cwd is None or Path(cwd).resolve() != root:
                continue
            if any(Path(w).name in ("snakemake", "dvc") or "stages/" in w for w in cmdline[:3]):
                found.append(f"{proc.pid}: {' '.join(cmdline)[:160]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
            continue
    return found


def _dvc_holders(rwlock: Path) -> list[int]:
    """PIDs that hold or read-lock paths in DVC's rwlock file (none when it is missing or empty)."""
    try:
        info = json.loads(rwlock.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        return []
    holders = [h for h in info.get("write", {}).values()]
    holders += [h for readers in info.get("read", {}).values() for h in readers]
    return [int(h["pid"]) for h in holders if isinstance(h, dict) and "pid" in h]


def _dvc_alive(pid: int) -> bool:
    try:
        return "dvc" in " ".join(psutil.Process(pid).cmdline())   # a reused PID is not the lock's owner
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def recover(root: str | Path = ".", dry_run: bool = False) -> Recovery:
    """Find (and unless dry_run remove) what dead processes of the project at `root` left."""
    root, rec = Path(root), Recovery()
    rec.live = project_processes(root)
    rwlock = root / ".dvc" / "tmp" / "rwlock"
    holders = _dvc_holders(rwlock)
    live_dvc = [pid for pid in holders if _dvc_alive(pid)]
    rec.live += [f"{pid}: dvc (holds {rwlock})" for pid in live_dvc
                 if not any(s.startswith(f"{pid}:") for s in rec.live)]
    rec.resumable = sorted(root.glob("results/**/resume.pt"))
    if rec.live:
        return rec
    locks = root / ".snakemake" / "locks"
    rec.snakemake_locks = sorted(locks.glob("*.lock")) if locks.is_dir() else []
    rec.dvc_rwlock = rwlock if holders else None
    rec.temporaries = sorted(p for top in OUTPUT_ROOTS if (root / top).is_dir()
                             for p in (root / top).rglob(TEMPORARY_GLOB))
    if not dry_run:
        for path in rec.snakemake_locks + rec.temporaries + ([rec.dvc_rwlock] if rec.dvc_rwlock else []):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    return rec


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", nargs="?", default=".", help="project folder (default: the current one)")
    p.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    args = p.parse_args(argv)
    rec = recover(args.root, args.dry_run)
    print(rec.summary("would remove" if args.dry_run else "removed"), file=sys.stderr)
    return 1 if rec.live else 0


if __name__ == "__main__":
    sys.exit(main())
