"""Stage plot_curves: a picture of a run's training curves (prior and model) from their DVCLive folders."""

import argparse

from npdraw.artifacts.errors import ParamsError
from npdraw.reporting.curves import plot_curves
from npdraw.workflow.cli import main


def run() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--live", nargs="+", required=True, metavar="LABEL=DIR",
                   help="training stage label and its DVCLive folder, e.g. prior=results/.../prior/live")
    p.add_argument("--title", default="training curves")
    p.add_argument("--out", required=True, help="PNG")
    args = p.parse_args()
    lives = {}
    for item in args.live:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise ParamsError(f"--live {item!r}: expected LABEL=DIR, e.g. prior=results/.../prior/live")
        lives[label] = path
    plot_curves(lives, args.out, args.title)


if __name__ == "__main__":
    main(run)
