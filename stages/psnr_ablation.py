"""Stage psnr_ablation: the part-bank ablation table (K x M -> parse PSNR) from parse metrics files
(K and M as each parse ran: its provenance)."""

import argparse
import re

from npdraw.artifacts.errors import ParamsError
from npdraw.reporting.tables import psnr_row, psnr_table, read_metrics, write_table
from npdraw.workflow.cli import main


def run() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("metrics", nargs="+", help="results/<dataset>/.../<variant>/metrics/parse.json files")
    p.add_argument("--out", required=True, help="Markdown table")
    p.add_argument("--csv", required=True, help="CSV table")
    args = p.parse_args()
    rows = []
    for path in args.metrics:
        m = re.search(r"results/([^/]+)/([^/]+)/[^/]+/seed\d+/([^/]+)/metrics/parse\.json$", path)
        if not m:
            raise ParamsError(f"{path}: expected "
                              f"results/<dataset>/<profile>/<split>/seed<N>/<variant>/metrics/parse.json")
        dataset, profile, _ = m.groups()
        rows.append(psnr_row(read_metrics(path, ("test",), "the parse stage"), path))
    title = (f"Part-bank ablation on {dataset} ({profile} profile): heuristic-parse PSNR on the test set "
             f"(dB, MAX_I = 1; mean of per-image PSNR, and PSNR of the mean MSE)")
    write_table(psnr_table(rows), args.out, args.csv, title)


if __name__ == "__main__":
    main(run)
