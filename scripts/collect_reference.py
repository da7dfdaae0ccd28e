"""Copy what a finished run made into a committed folder (results/reference/<dataset>/): its metrics
with their provenance, pictures, training curves, the trained model (prior inside) and the tables
with the paper's numbers beside ours; every file comes from the run, nothing is typed in.

    python scripts/collect_reference.py                        # the reference run of MNIST
    python scripts/collect_reference.py --root /elsewhere --dataset mnist --profile reference

Refuses (and copies nothing) unless the run has finished: every file below must exist.
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from npdraw.reporting.demo import REFERENCE_RUN
from npdraw.reporting.tables import write_table
from npdraw.workflow.paths import CURVES
from npdraw.workflow.stages import output

# (stage, its output flag in the stage table, name in the committed folder).
FILES = [
    ("make_splits", "summary", "metrics/splits.json"),
    ("train_classifier", "metrics", "metrics/classifier.json"),
    ("build_bank", "metrics", "metrics/bank.json"),
    ("parse", "metrics", "metrics/parse.json"),
    ("train_prior", "metrics", "metrics/prior.json"),
    ("train_model", "metrics", "metrics/model.json"),
    ("evaluate", "metrics", "metrics/eval.json"),
    ("build_bank", "picture", "pictures/bank.png"),
    ("parse", "picture", "pictures/parse.png"),
    ("train_prior", "samples", "pictures/prior_samples.png"),
    ("train_model", "reconstructions", "pictures/reconstructions.png"),
    ("evaluate", "grid", "pictures/samples.png"),
    ("evaluate", "figure", "pictures/canvases_and_samples.png"),
    ("edit_latents", "out", "pictures/latent_edit.png"),
    ("train_model", "out", "model.pt"),   # NP-DRAW with its prior inside: what `make demo` loads
]
LIVE = ("train_prior", "train_model")   # DVCLive's per-epoch .tsv files of each, under curves/<prior|model>/


def epochs(history: list[dict], out: Path) -> None:
    """The model's curve, one row per epoch, from metrics/model.json's history."""
    df = pd.DataFrame([{"epoch": h["epoch"], "valid ELBO (nats)": h["valid_elbo_nats"],
                        "valid BCE": h["valid_bce_nats"], "valid KL": h["valid_kl_nats"],
                        "valid domain FID": h.get("valid_fid"), "train images/s": h["images_per_s"],
                        "seconds": h["seconds"] + h.get("select_seconds", 0.0)} for h in history])
    write_table(df, out / "model_epochs.md", out / "model_epochs.csv", title=(
        "The full model, per epoch (metrics/model.json): validation ELBO = -(BCE + KL) on the 1,000 validation "
        "images, the domain FID of the samples the checkpoint is chosen by (every model.select_every epochs), "
        "training throughput, and the epoch's seconds with that FID's."))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=".", help="checkout the run ran in")
    p.add_argument("--dataset", default=REFERENCE_RUN["dataset"])
    p.add_argument("--profile", default=REFERENCE_RUN["profile"])
    p.add_argument("--out", help="committed folder (default results/reference/<dataset>)")
    p.add_argument("--without-model", action="store_true", help="leave the checkpoint out (8 MB at MNIST settings)")
    args = p.parse_args()
    root = Path(args.root)
    run = {**REFERENCE_RUN, "dataset": args.dataset, "profile": args.profile}
    out = Path(args.out or f"results/reference/{args.dataset}")
    files = [(output(stage, flag, run), dest) for stage, flag, dest in FILES
             if not (args.without_model and dest == "model.pt")] + [(CURVES.format(**run),
                                                                     "pictures/training_curves.png")]
    missing = [src for src, _ in files if not (root / src).is_file()]
    if missing:
        sys.exit(f"error: the {args.dataset} run of profile {args.profile} under {root} has not finished: "
                 f"missing {', '.join(missing)}")
    for src, dest in files:
        (out / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / src, out / dest)
    for stage in LIVE:
        live = root / output(stage, "live", run) / "plots/metrics"
        for tsv in live.rglob("*.tsv"):
            dest = out / "curves" / stage.removeprefix("train_") / tsv.relative_to(live)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tsv, dest)
    # Table 1 and the NLL table, with the paper's numbers beside ours (npdraw.reporting.tables.PAPER).
    subprocess.run([sys.executable, "stages/make_tables.py", "--out", str(out / "tables"),
                    str(root / output("evaluate", "metrics", run))], check=True)
    epochs(json.loads((out / "metrics/model.json").read_text())["history"], out / "tables")
    print(f"{out}: {len(files)} files, curves of {', '.join(LIVE)}, tables")


if __name__ == "__main__":
    main()
