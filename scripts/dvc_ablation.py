"""Run the Omniglot part-bank ablation (K x M, SPEC 11.3) as DVC experiments and tabulate PSNR.

    python scripts/dvc_ablation.py --profile smoke            # all 9 K x M points
    python scripts/dvc_ablation.py --profile quick --variants K5-M10 K8-M200

Each point is `dvc exp run parse -S dataset=omniglot -S profile=P -S variant=V -n NAME`
(up to the parse stage: the PSNR needs no training);
points whose experiment already exists are reused.  The table is built from
`dvc exp show --json` into results/tables/ablation_psnr_dvc_<profile>.{md,csv}.
Run from the repository root with the project's environment on PATH.
"""

import argparse
import subprocess
import sys
from pathlib import Path

from npdraw.cli import main
from npdraw.config import load_params
from npdraw.dvc_experiments import experiment_rows, show
from npdraw.tables import psnr_row, psnr_table, write_table
from npdraw.workflow import ABLATION_VARIANTS

METRICS = "results/{dataset}/{profile}/{split}/seed{seed}/{variant}/metrics/parse.json"


def run() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="smoke")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", nargs="+", default=ABLATION_VARIANTS)
    p.add_argument("--out-dir", default="results/tables")
    args = p.parse_args()
    params = load_params("params.yaml")
    existing = {r["name"] for r in experiment_rows(show(), METRICS)}
    for variant in args.variants:
        name = f"omniglot-{args.profile}-s{args.seed}-{variant}"
        if name in existing:
            print(f"{name}: experiment exists, reused", file=sys.stderr)
            continue
        choices = ["dataset=omniglot", f"profile={args.profile}", "split=full", f"seed={args.seed}",
                   f"variant={variant}"]
        subprocess.run(["dvc", "exp", "run", "parse", "-n", name, *(a for c in choices for a in ("-S", c))],
                       check=True)
    rows = [r for r in experiment_rows(show(), METRICS)
            if r["dataset"] == "omniglot" and r["profile"] == args.profile and r["seed"] == args.seed
            and r["split"] == "full" and r["variant"] in args.variants]
    latest = {r["variant"]: r for r in rows}  # one row per variant
    table = psnr_table([{**psnr_row(v, r["metrics"], params["datasets"]["omniglot"]), "experiment": r["name"]}
                        for v, r in latest.items()])
    out = Path(args.out_dir)
    write_table(table, out / f"ablation_psnr_dvc_{args.profile}.md", out / f"ablation_psnr_dvc_{args.profile}.csv",
                f"Part-bank ablation on omniglot ({args.profile} profile, dvc exp): test-set parse PSNR (dB)")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main(run)
