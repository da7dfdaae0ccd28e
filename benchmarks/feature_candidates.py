"""Which feature network can judge Omniglot (method §14)? Candidates trained as the committed one is, each
scored by the metric card at the findings profile's sample counts.

    python -m benchmarks.feature_candidates                         # Omniglot: alphabets against characters
    python -m benchmarks.feature_candidates --dataset mnist --labels labels

Each candidate is the committed network's architecture and recipe (npdraw.training.features) with the
labels changed; it is trained into a scratch folder (features/ is not touched), then its reference
statistics, floor and card are computed exactly as the reference_stats and metric_card stages do.
Prints one row per candidate: its validation accuracy, training minutes, the floor and every case's FID,
and the card's verdict; `--out` writes the table as Markdown.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import pandas as pd

from npdraw.data.prepare import load_prepared
from npdraw.data.splits import make_splits
from npdraw.evaluation.card import dataset_card
from npdraw.evaluation.features import load_classifier
from npdraw.evaluation.floor import reference_statistics
from npdraw.reporting.tables import write_table
from npdraw.training.features import train_features
from npdraw.workflow.params import load_params
from npdraw.workflow.resolve import resolve


def candidate(params: dict, dataset: str, labels: str, scratch: Path) -> dict:
    """Train the network on `labels`, then its card at the findings profile: one row."""
    changed = copy.deepcopy(params)
    changed["datasets"][dataset]["labels"] = labels
    start = time.perf_counter()
    record = train_features(changed, dataset, f"data/prepared/{dataset}", scratch / f"{dataset}-{labels}.json")
    minutes = (time.perf_counter() - start) / 60
    cfg = resolve(changed, dataset=dataset, profile="findings")
    arrays = load_prepared(f"data/prepared/{dataset}", cfg)
    test = make_splits(arrays, cfg)[0]["test"][:cfg.evaluate.fid_images]
    net = load_classifier(scratch / f"{dataset}-{labels}.json")
    card = dataset_card(arrays, test, cfg, net, reference_statistics(arrays, test, cfg, net))[0]
    row = {"labels": labels, "classes": record["classes"], "valid_accuracy": record["valid_accuracy"],
           "train_minutes": minutes, "floor": card["floor"]["fid"], "floor_sd": card["floor"]["fid_sd"]}
    for case in card["cases"]:
        name = case["family"] + ("" if case["strength"] is None else f" {case['strength']:g}")
        row[name] = case["fid"]
    row["collapsed / floor"] = row["collapsed"] / row["floor"]
    row["card"] = "passes" if card["passes"] else "fails: " + "; ".join(c["check"] for c in card["checks"]
                                                                         if not c["passes"])
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="omniglot")
    p.add_argument("--labels", nargs="+", default=["alphabets", "characters"])
    p.add_argument("--out", type=Path, help="also write the table here (Markdown)")
    args = p.parse_args()
    params = load_params("params.yaml")
    with tempfile.TemporaryDirectory() as scratch:
        rows = [candidate(params, args.dataset, labels, Path(scratch)) for labels in args.labels]
    table = pd.DataFrame(rows).set_index("labels").T.reset_index().rename(columns={"index": "measure"})
    print(table.to_string(index=False))
    if args.out:
        write_table(table, args.out, title=f"Feature network candidates for {args.dataset} (findings profile: "
                    "2,000 images a case; `python -m benchmarks.feature_candidates`).")


if __name__ == "__main__":
    main()
