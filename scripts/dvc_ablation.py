"""The Omniglot ablation (method §11.3) as DVC experiments: queue, run, tabulate.

    python scripts/dvc_ablation.py --profile smoke                 # the 8 one-factor variants
    python scripts/dvc_ablation.py --profile quick --jobs 2 --variants base K8 lam0

Each variant is queued as
    dvc exp run --queue evaluate -n omniglot-<profile>-s<seed>-<variant>
                -S dataset=omniglot -S profile=<profile> -S split=full -S seed=<seed> -S variant=<variant>
(the pipeline up to the evaluation: bank, parses, prior, model, NLL / FID), then
`dvc exp run --run-all` runs the queue.  Variants whose experiment already finished are
reused, not queued again.  The table is built by the make_tables stage from the saved
`dvc exp show --json` into results/tables/ablation_omniglot_<profile>_seed<N>.{md,csv,tex}.
Run from the repository root with the project's environment on PATH, in a git repository
whose HEAD holds the code (queued experiments run from a copy of HEAD plus the workspace).
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from npdraw.artifacts.errors import ParamsError
from npdraw.artifacts.io import atomic_path
from npdraw.data.sources import mirror_root
from npdraw.reporting.dvc_experiments import ABLATION_METRICS, dvc, experiment_rows, show_experiments
from npdraw.workflow.cli import main
from npdraw.workflow.params import load_params
from npdraw.workflow.resolve import resolve
from npdraw.workflow.snakemake import DVC_ABLATION_VARIANTS

DATASET = "omniglot"


def run() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="smoke")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", nargs="+", default=DVC_ABLATION_VARIANTS)
    p.add_argument("--jobs", type=int, default=1, help="experiments run in parallel (queue workers)")
    p.add_argument("--out-dir", default="results/tables")
    args = p.parse_args()
    if subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], capture_output=True).returncode:
        raise ParamsError("scripts/dvc_ablation.py: run it in a git repository with at least one commit "
                          "(dvc experiments are commits derived from HEAD)")
    params = load_params("params.yaml")
    for variant in args.variants:   # refuse an impossible variant before queueing anything
        resolve(params, dataset=DATASET, profile=args.profile, split="full", seed=args.seed, variant=variant)
    # Queued experiments run in a copy of the repository under .dvc/tmp: the data mirror must not
    # be looked up relative to it.
    os.environ["NPDRAW_DATA"] = str(mirror_root().resolve())
    done = {r["name"] for r in experiment_rows(show_experiments(), ABLATION_METRICS)}
    queued = []
    for variant in args.variants:
        name = f"{DATASET}-{args.profile}-s{args.seed}-{variant}"
        if name in done:
            print(f"{name}: finished experiment exists, reused", file=sys.stderr)
            continue
        choices = [f"dataset={DATASET}", f"profile={args.profile}", "split=full", f"seed={args.seed}",
                   f"variant={variant}"]
        dvc("exp", "run", "--queue", "evaluate", "-n", name, *(a for c in choices for a in ("-S", c)))
        print(f"{name}: queued", file=sys.stderr)
        queued.append(name)
    if queued:
        print(f"running {len(queued)} queued experiment(s) with {args.jobs} worker(s): {', '.join(queued)}",
              file=sys.stderr)
        dvc("exp", "run", "--run-all", "--jobs", str(args.jobs), stream=True)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / f"ablation_{DATASET}_{args.profile}_seed{args.seed}.dvc-exp-show.json"
    with atomic_path(saved) as tmp:
        tmp.write_text(json.dumps(show_experiments(), indent=1))
    result = subprocess.run([sys.executable, "stages/make_tables.py", "--out", str(out), "--dvc-exp", str(saved),
                             "--dataset", DATASET, "--profile", args.profile, "--seed", str(args.seed),
                             "--variants", *args.variants])
    if result.returncode:
        raise ParamsError(f"the ablation table was not built (make_tables exit {result.returncode}); "
                          f"`dvc queue status` and `dvc queue logs <name>` show each experiment")


if __name__ == "__main__":
    main(run)
