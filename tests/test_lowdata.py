"""The low-data grid: which runs it names, and its curves rebuilt from fixture metrics files."""

import json
import re
import subprocess
import sys

import pandas as pd
import pytest
from conftest import REPO

from npdraw.artifacts.errors import ArtifactError, ParamsError
from npdraw.reporting.lowdata import curve_inputs, curves, seed_bands, split_name
from npdraw.workflow.resolve import parse_split
from npdraw.workflow.snakemake import WILDCARDS


@pytest.mark.parametrize("kind, proportion, name", [("digit", 0.3, "digit-0.3"), ("alphabet", 0.03, "alphabet-0.03"),
                                                    ("sample", 0.001, "sample-0.001"), ("sample", 1, "sample-1")])
def test_split_names_are_valid_wildcards_that_parse_back(kind, proportion, name):
    assert split_name(kind, proportion) == name
    assert re.fullmatch(WILDCARDS["split"], name) and parse_split(name) == (kind, float(proportion))


def test_the_profile_override_replaces_the_grid(params):
    smoke = curves(params, "smoke")
    assert [(c["dataset"], c["kind"], c["splits"], c["seeds"], c["variants"]) for c in smoke] == [
        ("mnist", "sample", ["sample-0.25", "sample-0.5"], [0, 1], ["base", "vae"])]
    paper = curves(params, "paper")
    assert [c["kind"] for c in paper] == ["digit", "sample", "character", "alphabet"]
    assert paper[0]["splits"][0] == "digit-0.1" and paper[0]["seeds"] == [0, 1, 2]
    assert curve_inputs(params, "smoke", "mnist", "sample") == [
        f"results/mnist/smoke/sample-{p}/seed{s}/{v}/metrics/eval.json"
        for v in ("base", "vae") for p in ("0.25", "0.5") for s in (0, 1)]


def test_an_impossible_curve_is_refused_naming_it(params):
    bad = {**params, "lowdata": {**params["lowdata"], "curves": [{"dataset": "omniglot", "kind": "digit",
                                                                  "proportions": [0.5]}]}}
    with pytest.raises(ParamsError, match=r"lowdata.curves.0 \(profile 'paper'\): split 'digit-0.5'"):
        curves(bad, "paper")
    with pytest.raises(ParamsError, match="no curve for dataset 'omniglot', kind 'sample'"):
        curve_inputs(params, "smoke", "omniglot", "sample")


def write_run(root, proportion, seed, fid_domain, nll, train, variant="base"):
    run = root / f"results/mnist/smoke/digit-{proportion}/seed{seed}"
    (run / f"{variant}/metrics").mkdir(parents=True)
    digits = list(range(int(round(proportion * 10))))
    (run / "splits.json").write_text(json.dumps({"counts": {"train": train, "valid": 10, "test": 20},
                                                 "digits": digits}))
    (run / f"{variant}/metrics/eval.json").write_text(json.dumps({"fid_domain": fid_domain, "nll_nats": nll,
                                                                  "generated": 200,
                                                                  "domain_classifier_accuracy": 0.9}))
    return str((run / f"{variant}/metrics/eval.json").relative_to(root))


def lowdata_curve(root, *paths):
    out = ["--plot", "c.png", "--points", "p.csv", "--summary", "s.md", "--summary-csv", "s.csv"]
    return subprocess.run([sys.executable, str(REPO / "stages/lowdata_curve.py"), *out, *paths], cwd=root,
                          capture_output=True, text=True)


@pytest.mark.slow
def test_curve_from_fixture_metrics_has_the_exact_means_and_spreads(tmp_path):
    paths = [write_run(tmp_path, 0.3, 0, 10.0, 100.0, 300), write_run(tmp_path, 0.3, 1, 14.0, 104.0, 300),
             write_run(tmp_path, 0.6, 0, 5.0, 90.0, 600), write_run(tmp_path, 0.6, 1, 5.0, 92.0, 600)]
    result = lowdata_curve(tmp_path, *paths)
    assert result.returncode == 0, result.stderr
    summary = pd.read_csv(tmp_path / "s.csv")
    assert list(summary.proportion) == [0.3, 0.6] and list(summary.train_images_mean) == [300, 600]
    assert list(summary.fid_domain_mean) == [12.0, 5.0] and list(summary.nll_mean) == [102.0, 91.0]
    assert summary.fid_domain_std.round(6).tolist() == [2.828427, 0.0] and list(summary.fid_domain_count) == [2, 2]
    assert "fid_inception_mean" not in summary   # Inception FID not measured: no column, no panel
    points = pd.read_csv(tmp_path / "p.csv")
    assert list(points.seed) == [0, 1, 0, 1] and set(points.kind) == {"digit"}
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "s.md").read_text().startswith("Low-data curve: mnist, low-data by digit (smoke profile")


@pytest.mark.slow
def test_every_system_is_a_line_on_the_same_axes_labelled_with_the_true_data(tmp_path):
    """Two systems at two proportions: one summary row per system and proportion, the digits and images
    the splits really held on the axis."""
    from npdraw.reporting.lowdata import axis_labels, points, summary

    paths = [write_run(tmp_path, 0.3, 0, 10.0, 100.0, 300), write_run(tmp_path, 0.6, 0, 5.0, 90.0, 600),
             write_run(tmp_path, 0.3, 1, 20.0, 110.0, 300, "vae"), write_run(tmp_path, 0.6, 1, 15.0, 95.0, 600, "vae")]
    result = lowdata_curve(tmp_path, *paths)
    assert result.returncode == 0, result.stderr
    table = pd.read_csv(tmp_path / "s.csv")
    assert list(zip(table.model, table.proportion, table.fid_domain_mean)) == [
        ("NP-DRAW", 0.3, 10.0), ("NP-DRAW", 0.6, 5.0), ("VAE", 0.3, 20.0), ("VAE", 0.6, 15.0)]
    assert list(table.groups_mean) == [3, 6, 3, 6]
    df = points([tmp_path / p for p in paths])
    assert axis_labels(df, "digit") == {0.3: "0.3\n3 digits\n300 img", 0.6: "0.6\n6 digits\n600 img"}
    assert len(summary(df)) == 4 and "accuracy is 0.900" in (tmp_path / "s.md").read_text()


@pytest.mark.slow
def test_a_missing_run_is_named_and_nothing_is_written(tmp_path):
    ok = write_run(tmp_path, 0.3, 0, 10.0, 100.0, 300)
    result = lowdata_curve(tmp_path, ok, "results/mnist/smoke/digit-0.6/seed0/base/metrics/eval.json")
    assert result.returncode == 2
    assert "results/mnist/smoke/digit-0.6/seed0/base/metrics/eval.json: metrics file not found" in result.stderr
    assert not any((tmp_path / f).exists() for f in ("c.png", "p.csv", "s.md", "s.csv"))


def test_training_curves_picture_from_dvclive_files(tmp_path):
    from npdraw.reporting.curves import plot_curves, read_live

    for split, values in (("train", [3.0, 2.0, 1.5]), ("valid", [3.5, 2.5, 2.0])):
        f = tmp_path / f"live/plots/metrics/{split}/nll_nats.tsv"
        f.parent.mkdir(parents=True)
        f.write_text("step\tnll_nats\n" + "".join(f"{i}\t{v}\n" for i, v in enumerate(values)))
    curves_read = read_live(tmp_path / "live")
    assert list(curves_read["nll_nats"]["valid"]["value"]) == [3.5, 2.5, 2.0]
    plot_curves({"prior": tmp_path / "live"}, tmp_path / "curves.png", "t")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ArtifactError, match="no DVCLive curves"):
        read_live(tmp_path / "nothing")


def test_seed_bands_draw_each_models_mean_band_and_runs():
    """One line per model through the mean at each x, its runs as dots, models in name order (colours stay
    put from figure to figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = pd.DataFrame([{"model": m, "budget": b, "fid": base + b + seed}
                         for m, base in (("VAE", 10.0), ("NP-DRAW", 0.0)) for b in (1.0, 2.0) for seed in (0, 2)])
    fig, ax = plt.subplots()
    seed_bands(ax, runs, "budget", "fid")
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines) == ["NP-DRAW", "VAE"]
    assert list(lines["VAE"].get_ydata()) == [12.0, 13.0] and list(lines["NP-DRAW"].get_xdata()) == [1.0, 2.0]
    dots = [c for c in ax.collections if isinstance(c, matplotlib.collections.PathCollection)]
    assert [len(c.get_offsets()) for c in dots] == [4, 4]                 # every run of each model
    plt.close(fig)
