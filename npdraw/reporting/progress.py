"""Progress a person sees while `make run` works: which stage runs, and how far it is.

Snakemake sends each stage's stderr (its log lines and tqdm bars) to the stage's log file, so the
terminal shows only job lines.  This watcher runs beside Snakemake: every few seconds it reads the
tail of each log file written to in the last moments and prints one line per running stage, e.g.

    [12:09:35] train_model  mnist/quick/full/seed0/base  model epoch 4/6  31%  134 steps  1.11 s/step  ETA 1:43

and stops when the Snakemake process it was given ends.  The logs stay as they are.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import psutil

# The tail of a tqdm bar: "<desc>:  31%|###   | 41/134 [00:40<01:43,  1.11s/it]" (or "it/s").
BAR = re.compile(r"(?P<desc>[^\r\n|]*?):\s+(?P<pct>\d+)%\|[^|]*\|\s*(?P<n>\d+)/(?P<total>\d+)\s+"
                 r"\[(?P<elapsed>[\d:]+)<(?P<left>[\d:?]+),\s*(?P<rate>[\d.?]+)(?P<unit>s/it|it/s)\]")
# A finished epoch's log line: "HH:MM:SS npdraw.training.trainer: epoch 5: train loss ..."
EPOCH = re.compile(r"^\d\d:\d\d:\d\d (?P<who>npdraw\.[\w.]+): (?P<text>epoch \d+:.*)$", re.M)


def status(text: str) -> str | None:
    """What the end of a log says about its stage: the last progress bar, else the last epoch line."""
    last = text.replace("\r", "\n").rstrip().rsplit("\n", 1)[-1]
    bar = BAR.search(last)
    if bar:
        b = bar.groupdict()
        per = (f"{b['rate']} s/step" if b["unit"] == "s/it" else f"{b['rate']} steps/s")
        return (f"{b['desc'].strip()}  {b['pct']}%  {b['n']}/{b['total']}  {per}  "
                f"elapsed {b['elapsed']}  ETA {b['left']}")
    epochs = EPOCH.findall(text)
    return epochs[-1][1] if epochs else None


def stage_of(log: Path) -> tuple[str, str]:
    """(stage, run) of a log path: results/<dataset>/<profile>/<split>/seed<N>/<variant>/logs/<stage>.log,
    results/<dataset>/<profile>/reference/logs/<stage>.log, or logs/<stage>/<name>.log."""
    parts = log.parts
    if "results" in parts and parts[-2] == "logs":
        start = parts.index("results") + 1
        return log.stem, "/".join(parts[start:-2])
    return parts[-2], log.stem


def running_logs(roots: list[Path], since: float) -> list[Path]:
    """Log files under `roots` written to after `since` (epoch seconds)."""
    found = []
    for root in roots:
        for log in root.rglob("*.log"):
            try:
                if log.stat().st_mtime >= since:
                    found.append(log)
            except FileNotFoundError:   # renamed or removed meanwhile
                continue
    return sorted(found)


def tail(path: Path, size: int = 8192) -> str:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - size))
        return f.read().decode("utf-8", "replace")


def alive(pid: int) -> bool:
    """Whether process `pid` still runs (an exited one its parent has not yet reaped does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def watch(pid: int, roots: list[Path], interval: float = 10.0, out=sys.stdout) -> None:
    """Print the running stages' progress every `interval` seconds (lines that changed) until `pid` ends."""
    shown: dict[Path, str] = {}
    while alive(pid):
        time.sleep(interval)
        for log in running_logs(roots, time.time() - 2 * interval):
            try:
                line = status(tail(log))
            except OSError:
                continue
            if line and shown.get(log) != line:
                shown[log] = line
                stage, run = stage_of(log)
                print(f"[{time.strftime('%H:%M:%S')}] {stage:<16} {run:<34} {line}", file=out, flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pid", type=int, required=True, help="the Snakemake process to follow")
    p.add_argument("--every", type=float, default=10.0, help="seconds between looks at the logs")
    p.add_argument("roots", nargs="*", default=["results", "logs"], help="folders holding the stage logs")
    args = p.parse_args(argv)
    watch(args.pid, [Path(r) for r in args.roots if Path(r).is_dir() or not Path(r).exists()], args.every)


if __name__ == "__main__":
    main()
