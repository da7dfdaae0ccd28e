"""Stage make_tables: results tables from metrics JSON files only (never recomputed).

    make_tables.py --out DIR results/.../metrics/eval.json ...
        Table 1 (FID / KID / NLL) and the NLL table of the runs given
    make_tables.py --out DIR --prior-size results/.../metrics/eval.json ...
        the prior-size comparison (the paper text's reading, token slim, against the authors' ViT, token vit)
    make_tables.py --out DIR --dvc-exp exp_show.json --dataset omniglot --profile P --seed N
        the ablation table (K, M, lambda -> PSNR, FID, NLL, BCE, KL) from a saved
        `dvc exp show --json` (scripts/dvc_ablation.py writes it)
"""

import argparse
import json
from pathlib import Path

from npdraw.artifacts.errors import ParamsError
from npdraw.reporting.tables import (
    ablation_from_experiments,
    nll_table,
    prior_size_row,
    prior_size_table,
    results_row,
    table1,
    write_table,
)
from npdraw.workflow.cli import main


def results_tables(paths: list[str], out: Path) -> None:
    rows = [results_row(path) for path in paths]
    profiles = ", ".join(sorted({r["profile"] for r in rows}))
    samples = ", ".join(sorted({f"{r['samples']:,} samples vs {r['fid_reference_images']:,} test images"
                                for r in rows}))
    write_table(table1(rows), out / "table1.md", out / "table1.csv", latex=out / "table1.tex", title=(
        f"Table 1: sample quality and likelihood (measured: profile {profiles}; {samples}). fid_domain / kid_domain: "
        "FID / KID on features of the dataset's committed domain network (features/), scaled to unit feature "
        "spread (not comparable with Inception FID); fid_domain_floor: the same FID for as many real held-out "
        "images, what a perfect model would score; precision_domain / recall_domain: the share of samples on the "
        "test images' manifold and of test images on the samples' (k = 3); classifier_accuracy: the domain "
        "network's validation accuracy. fid_inception: Inception pool3 FID (– where torch-fidelity's weights were "
        "unavailable). "
        "nll: importance-sampled bound on the test set (nats per image, or bits per dim for colour). "
        "train_minutes: wall minutes of the training epochs (model, and NP-DRAW's prior). "
        "paper_*: numbers reported by the NP-DRAW paper (Inception FID, 10,000 samples) and, for PixelVAE, "
        "by Gulrajani et al. 2017 — not measured here."))
    write_table(nll_table(rows), out / "nll.md", out / "nll.csv", latex=out / "nll.tex", title=(
        f"Negative log-likelihood (measured: profile {profiles}): importance-sampled bound with nll_samples samples "
        "per test image (Burda et al.), its standard error, the same bound on Larochelle's statically binarized "
        "MNIST test set where it applies, and ELBO = -(BCE + KL). paper_nll: reported, not measured here."))


def prior_sizes(paths: list[str], out: Path) -> None:
    table = prior_size_table([prior_size_row(path) for path in paths])
    s = table.iloc[0]
    write_table(table, out / "prior_size.md", out / "prior_size.csv", title=(
        f"Prior size (profile {', '.join(sorted(set(table.profile)))}): the paper's 'eight layer ViT, hidden "
        f"size 64' as this pipeline reads it (4 heads of 16, MLP 256) against the authors' ViT (variant token "
        f"vit: 16 heads of 64, MLP 2048, learned positions). prior_*_nll_nats: NLL of the heuristic parses "
        f"(nats per sequence); nll: the full model's importance-sampled test NLL (S = {s['nll_samples']}, "
        f"{s['nll_images']} test images); fid_domain: domain-classifier FID; prior_fastest_epoch_s: the "
        f"fastest prior epoch (wall seconds; the mean also counts whatever else ran on the machine). All measured."))


def ablation_from_dvc(shown_path: Path, dataset: str, profile: str, seed: int, variants: list[str] | None,
                      out: Path) -> Path:
    table = ablation_from_experiments(json.loads(shown_path.read_text()), dataset, profile, seed, variants,
                                      str(shown_path))
    stem = out / f"ablation_{dataset}_{profile}_seed{seed}"
    s = table.iloc[0]
    write_table(table, stem.with_suffix(".md"), stem.with_suffix(".csv"), latex=stem.with_suffix(".tex"), title=(
        f"Ablation on {dataset} ({profile} profile, seed {seed}; dvc experiments): patch size K, bank size M and "
        f"regulariser weight lambda -> test parse PSNR (dB), domain FID (the pipeline's classifier, {s['samples']:,} "
        f"samples; fid_inception – where Inception weights were unavailable), importance-sampled NLL "
        f"(S = {s['nll_samples']}, {s['nll_images']} test images), BCE and KL of the ELBO (nats). All measured."))
    return stem.with_suffix(".md")


def run() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("metrics", nargs="*", help="results/<dataset>/<profile>/<split>/seed<N>/<variant>/metrics/eval.json")
    p.add_argument("--out", required=True, help="folder for the tables")
    p.add_argument("--dvc-exp", type=Path, help="saved `dvc exp show --json`: build the ablation table from it")
    p.add_argument("--prior-size", action="store_true", help="the prior-size comparison of the runs given")
    p.add_argument("--dataset", default="omniglot")
    p.add_argument("--profile")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", nargs="+", help="ablation rows (default: every variant found)")
    args = p.parse_args()
    if args.dvc_exp is None:
        if not args.metrics:
            raise ParamsError("make_tables: give evaluation metrics files, or --dvc-exp for the ablation table")
        (prior_sizes if args.prior_size else results_tables)(args.metrics, Path(args.out))
        return
    if args.metrics or not args.profile:
        raise ParamsError("make_tables --dvc-exp: takes --profile (and --dataset, --seed, --variants), "
                          "not metrics files")
    if not args.dvc_exp.is_file():
        raise ParamsError(f"{args.dvc_exp}: saved `dvc exp show --json` not found")
    path = ablation_from_dvc(args.dvc_exp, args.dataset, args.profile, args.seed, args.variants, Path(args.out))
    print(path.read_text())


if __name__ == "__main__":
    main(run)
