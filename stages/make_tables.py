"""Stage make_tables: Table 1 (FID / KID / NLL) and the NLL table from evaluation metrics files only."""

import argparse
from pathlib import Path

from npdraw.cli import main
from npdraw.tables import nll_table, results_row, table1, write_table


def run() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("metrics", nargs="+", help="results/<dataset>/<profile>/<split>/seed<N>/<variant>/metrics/eval.json")
    p.add_argument("--out", required=True, help="folder for table1.{md,csv,tex} and nll.{md,csv,tex}")
    args = p.parse_args()
    rows = [results_row(path) for path in args.metrics]
    profiles = ", ".join(sorted({r["profile"] for r in rows}))
    out = Path(args.out)
    samples = ", ".join(sorted({f"{r['samples']:,} samples vs {r['fid_reference_images']:,} test images"
                                for r in rows}))
    write_table(table1(rows), out / "table1.md", out / "table1.csv", latex=out / "table1.tex", title=(
        f"Table 1: sample quality and likelihood (measured: profile {profiles}; {samples}). fid_domain / kid_domain: "
        "FID / KID on features of the pipeline's own domain classifier (always available; not comparable with "
        "Inception FID). fid_inception: Inception pool3 FID (– where torch-fidelity's weights were unavailable). "
        "nll: importance-sampled bound on the test set (nats per image, or bits per dim for colour). "
        "paper_*: numbers reported by the NP-DRAW paper (Inception FID, 10,000 samples) and, for PixelVAE, "
        "by Gulrajani et al. 2017 — not measured here."))
    write_table(nll_table(rows), out / "nll.md", out / "nll.csv", latex=out / "nll.tex", title=(
        f"Negative log-likelihood (measured: profile {profiles}): importance-sampled bound with nll_samples samples "
        "per test image (Burda et al.), its standard error, the same bound on Larochelle's statically binarized "
        "MNIST test set where it applies, and ELBO = -(BCE + KL). paper_nll: reported, not measured here."))


if __name__ == "__main__":
    main(run)
