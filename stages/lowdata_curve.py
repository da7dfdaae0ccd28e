"""Stage lowdata_curve: one low-data curve (paper Fig. 3) from the evaluation metrics of its runs.

Reads only results/<dataset>/<profile>/<kind>-<F>/seed<N>/<variant>/metrics/eval.json (and each
run's splits.json for its number of training images); writes the plot (mean +- sd across seeds),
the per-run points as CSV and the per-proportion summary as Markdown + CSV.
"""

import argparse

from npdraw.artifacts.errors import ParamsError
from npdraw.artifacts.io import atomic_path
from npdraw.reporting.lowdata import plot, points, summary
from npdraw.reporting.tables import run_of, write_table
from npdraw.workflow.cli import main


def run() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("metrics", nargs="+", help="eval.json files of the curve's runs (every proportion, system and seed)")
    p.add_argument("--plot", required=True, help="PNG: the curve")
    p.add_argument("--points", required=True, help="CSV: one row per run")
    p.add_argument("--summary", required=True, help="Markdown: mean / sd / seeds per proportion")
    p.add_argument("--summary-csv", required=True, help="CSV of the summary")
    args = p.parse_args()
    df = points(args.metrics)
    groups = df[["dataset", "kind"]].drop_duplicates()
    if len(groups) != 1:
        raise ParamsError(f"lowdata_curve: expected the runs of one dataset and split kind, got "
                          f"{groups.to_dict('records')}")
    dataset, kind = groups.iloc[0]
    profile = run_of(df["path"].iloc[0])["profile"]
    title = f"{dataset}, low-data by {kind} ({profile} profile, {int(df['samples'].iloc[0]):,} samples per FID)"
    plot(df, args.plot, title)
    with atomic_path(args.points) as tmp:
        df.to_csv(tmp, index=False)
    accuracy = df["classifier_accuracy"].dropna()
    classifier = (f", whose validation accuracy is {accuracy.iloc[0]:.3f}" if len(accuracy) else "")
    write_table(summary(df), args.summary, args.summary_csv,
                f"Low-data curve: {title}. Mean, standard deviation and number of seeds of each measure at each "
                f"proportion, per model; train_images_mean and groups_mean: the training images and the digits, "
                f"characters or alphabets the splits held. Domain FID uses the dataset's committed network (the same "
                f"for every run of {dataset} at this profile{classifier}), not Inception.")


if __name__ == "__main__":
    main(run)
