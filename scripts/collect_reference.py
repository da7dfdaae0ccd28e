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

from npdraw.reporting.tables import write_table

# (file in the run, name in the committed folder).  {ref}: results/<dataset>/<profile>/reference,
# {run}: results/<dataset>/<profile>/full/seed0, {var}: {run}/base.
FILES = [
    ("{run}/splits.json", "metrics/splits.json"),
    ("{ref}/classifier.json", "metrics/classifier.json"),
    ("{var}/metrics/bank.json", "metrics/bank.json"),
    ("{var}/metrics/parse.json", "metrics/parse.json"),
    ("{var}/metrics/prior.json", "metrics/prior.json"),
    ("{var}/metrics/model.json", "metrics/model.json"),
    ("{var}/metrics/eval.json", "metrics/eval.json"),
    ("{var}/bank.png", "pictures/bank.png"),
    ("{var}/parse.png", "pictures/parse.png"),
    ("{var}/prior/samples.png", "pictures/prior_samples.png"),
    ("{var}/model/reconstructions.png", "pictures/reconstructions.png"),
    ("{var}/eval/samples.png", "pictures/samples.png"),
    ("{var}/figures/canvases_and_samples.png", "pictures/canvases_and_samples.png"),
    ("{var}/figures/latent_edit.png", "pictures/latent_edit.png"),
    ("{var}/figures/training_curves.png", "pictures/training_curves.png"),
    ("{var}/model/best.pt", "model.pt"),   # NP-DRAW with its prior inside: what `make demo` loads
]
CURVES = ("prior", "model")   # DVCLive's per-epoch .tsv files of each trainer, under curves/<trainer>/


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
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--profile", default="reference")
    p.add_argument("--out", help="committed folder (default results/reference/<dataset>)")
    p.add_argument("--without-model", action="store_true", help="leave the checkpoint out (8 MB at MNIST settings)")
    args = p.parse_args()
    root = Path(args.root)
    base = f"results/{args.dataset}/{args.profile}"
    where = {"ref": f"{base}/reference", "run": f"{base}/full/seed0", "var": f"{base}/full/seed0/base"}
    out = Path(args.out or f"results/reference/{args.dataset}")
    files = [(src, dest) for src, dest in FILES if not (args.without_model and dest == "model.pt")]
    missing = [src.format(**where) for src, _ in files if not (root / src.format(**where)).is_file()]
    if missing:
        sys.exit(f"error: the run under {root / base} has not finished: missing {', '.join(missing)}")
    for src, dest in files:
        (out / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / src.format(**where), out / dest)
    for trainer in CURVES:
        live = root / where["var"] / trainer / "live/plots/metrics"
        for tsv in live.rglob("*.tsv"):
            dest = out / "curves" / trainer / tsv.relative_to(live)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tsv, dest)
    # Table 1 and the NLL table, with the paper's numbers beside ours (npdraw.reporting.tables.PAPER).
    subprocess.run([sys.executable, "stages/make_tables.py", "--out", str(out / "tables"),
                    str(root / where["var"] / "metrics/eval.json")], check=True)
    epochs(json.loads((out / "metrics/model.json").read_text())["history"], out / "tables")
    print(f"{out}: {len(files)} files, curves of {', '.join(CURVES)}, tables")


if __name__ == "__main__":
    main()
