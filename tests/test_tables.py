"""Results tables rebuilt from fixture metrics files: exact content, and clear errors."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from conftest import REPO

BASE = {"nll_nats": 162.04, "nll_stderr_nats": 1.16, "elbo_nats": -180.5, "bce_nats": 150.25, "kl_nats": 30.25,
        "nll_samples": 50, "nll_images": 500, "fid_domain": 663.6, "kid_domain": 0.5, "kid_domain_std": 0.01,
        "generated": 2000, "fid_reference_images": 2000, "inception": "skipped",
        "static_binarized_test": {"nll_nats": 174.68}, "selected_by": "fid (domain features)", "selected_epoch": 2}
PIXELVAE = {"nll_nats": 120.5, "nll_stderr_nats": 2.0, "elbo_nats": -125.0, "bce_nats": 110.0, "kl_nats": 15.0,
            "nll_samples": 50, "nll_images": 500, "fid_domain": 40.0, "kid_domain": 0.05, "kid_domain_std": 0.01,
            "generated": 2000, "fid_reference_images": 2000, "fid": 12.5, "kid": 0.01, "kid_std": 0.001,
            "static_binarized_test": {"nll_nats": 130.0}, "selected_by": "elbo", "selected_epoch": 1}
def provenance(patch=5, bank=50, lam=50.0, precision="bf16"):
    """The part of a metrics file's provenance block the tables read (npdraw.workflow.provenance)."""
    return {"params": {"method": {"patch_size": patch, "bank_size": bank, "lambda_reg": lam}},
            "numerics": {"precision": precision, "channels_last": True, "compile": False}}


BASE["provenance"] = provenance()
PIXELVAE["provenance"] = provenance(lam=0.0, precision="fp32")
CIFAR = {"nll_nats": 7000.0, "bits_per_dim": 3.29, "nll_stderr_nats": 10.0, "elbo_nats": -7100.0,
         "bce_nats": 7050.0, "kl_nats": 50.0, "nll_samples": 5, "nll_images": 100, "fid_domain": 90.0,
         "kid_domain": 0.2, "kid_domain_std": 0.01, "generated": 200, "fid_reference_images": 200,
         "provenance": provenance(patch=8, bank=10)}

NLL_TABLE = """\
| dataset   | model                      | profile   | nll_samples   | nll_images   | nll    | nll_stderr_nats   | nll_static_nats   | elbo_nats   | bce_nats   | kl_nats   | selected_by           | selected_epoch   | precision   | paper_nll                                                              |
|:----------|:---------------------------|:----------|:--------------|:-------------|:-------|:------------------|:------------------|:------------|:-----------|:----------|:----------------------|:-----------------|:------------|:-----------------------------------------------------------------------|
| cifar10   | NP-DRAW                    | smoke     | 5             | 100          | 3.29   | 10.00             | –                 | -7100.00    | 7050.00    | 50.00     | –                     | –                | bf16        | <= 5.48 bpd                                                            |
| mnist     | NP-DRAW                    | quick     | 50            | 500          | 162.04 | 1.16              | 174.68            | -180.50     | 150.25     | 30.25     | fid (domain features) | 2                | bf16        | <= 98.92 nats                                                          |
| mnist     | NP-DRAW + PixelCNN decoder | quick     | 50            | 500          | 120.50 | 2.00              | 130.00            | -125.00     | 110.00     | 15.00     | elbo                  | 1                | fp32        | –                                                                      |
| mnist     | PixelVAE                   | quick     | 50            | 500          | 120.50 | 2.00              | 130.00            | -125.00     | 110.00     | 15.00     | elbo                  | 1                | fp32        | 79.48 (<= 80.02) nats (gated PixelVAE, static binarization, S = 5,000) |
"""


def write_fixture(root, dataset, profile, variant, metrics):
    path = root / f"results/{dataset}/{profile}/full/seed0/{variant}/metrics/eval.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics))
    return str(path.relative_to(root))


def make_tables(root, *paths):
    return subprocess.run([sys.executable, str(REPO / "stages/make_tables.py"), "--out", "results/tables", *paths],
                          cwd=root, capture_output=True, text=True)


@pytest.mark.slow
def test_tables_rebuilt_from_fixture_metrics_are_exactly_as_expected(tmp_path):
    paths = [write_fixture(tmp_path, "mnist", "quick", "base", BASE),
             write_fixture(tmp_path, "mnist", "quick", "pixelvae", PIXELVAE),
             write_fixture(tmp_path, "mnist", "quick", "pcnn", PIXELVAE),
             write_fixture(tmp_path, "cifar10", "smoke", "base", CIFAR)]
    result = make_tables(tmp_path, *paths)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "results/tables"
    nll = (out / "nll.md").read_text()
    assert nll.startswith("Negative log-likelihood (measured: profile quick, smoke)")
    assert nll.split("\n\n", 1)[1] == NLL_TABLE
    t1 = pd.read_csv(out / "table1.csv")
    assert list(t1.model) == ["NP-DRAW", "NP-DRAW", "NP-DRAW + PixelCNN decoder", "PixelVAE"]
    assert list(t1.fid_domain) == [90.0, 663.6, 40.0, 40.0]
    assert t1.fid_inception.isna().tolist() == [True, True, False, False]
    assert list(t1.nll_unit) == ["bpd", "nats", "nats", "nats"]
    assert list(t1.paper_fid.fillna(-1)) == [62.72, 2.48, -1, -1]   # measured and reported side by side
    tex = (out / "table1.tex").read_text()
    assert "\\begin{tabular}" in tex and "fid\\_domain" in tex and "$\\le$ 98.92 nats" in tex


@pytest.mark.slow
def test_a_missing_metrics_file_is_named(tmp_path):
    ok = write_fixture(tmp_path, "mnist", "quick", "base", BASE)
    result = make_tables(tmp_path, ok, "results/mnist/quick/full/seed0/pixelvae/metrics/eval.json")
    assert result.returncode == 2
    assert "results/mnist/quick/full/seed0/pixelvae/metrics/eval.json: metrics file not found" in result.stderr
    assert not (tmp_path / "results/tables/table1.md").exists()


@pytest.mark.slow
def test_a_metrics_file_outside_the_results_layout_is_refused(tmp_path):
    stray = tmp_path / "eval.json"
    stray.write_text(json.dumps(BASE))
    result = make_tables(tmp_path, str(stray))
    assert result.returncode == 2 and "expected results/<dataset>/<profile>" in result.stderr


def test_tables_workflow_rule_collects_the_configured_runs():
    from npdraw.workflow.snakemake import table_inputs
    config = {"tables": {"runs": ["mnist/base", "omniglot/pixelvae"]}}
    wc = type("W", (), {"profile": "smoke", "split": "full", "seed": "1"})()
    assert table_inputs(config)(wc) == ["results/mnist/smoke/full/seed1/base/metrics/eval.json",
                                         "results/omniglot/smoke/full/seed1/pixelvae/metrics/eval.json"]


@pytest.mark.parametrize("runs, message", [(["svhn/base"], "dataset 'svhn' is not one of"),
                                           (["mnist"], "does not match")])
def test_bad_table_runs_are_refused(params, runs, message):
    from npdraw.artifacts.errors import ParamsError
    from npdraw.workflow.params import validate_params
    with pytest.raises(ParamsError, match=message):
        validate_params({**params, "tables": {**params["tables"], "runs": runs}})


# --- the ablation table from a saved `dvc exp show --json` --------------------------------

def exp_entry(name, variant, psnr, eval_metrics, timestamp="2026-11-22T10:00:00"):
    run = f"results/omniglot/smoke/full/seed0/{variant}/metrics"
    params = {"dataset": "omniglot", "profile": "smoke", "split": "full", "seed": 0, "variant": variant}
    return {"rev": name * 4, "name": name, "data": {
        "timestamp": timestamp, "params": {"params.yaml": {"data": params}},
        "metrics": {f"{run}/parse.json": {"data": {"psnr_db": psnr, "test": {"psnr_db": psnr},
                                                   "provenance": eval_metrics.get("provenance", {})}},
                    f"{run}/eval.json": {"data": eval_metrics}}}}


def exp_show(*experiments):
    baseline = {"rev": "a" * 40, "name": "main", "data": {"params": {}, "metrics": {}},
                "experiments": [{"revs": [e]} for e in experiments]}
    return [{"rev": "workspace", "data": {}}, baseline]


ABLATION_TABLE = """\
| variant   | K   | M   | lambda   | psnr_db   | fid_domain   | fid_inception   | nll    | bce_nats   | kl_nats   | elbo_nats   | samples   | nll_samples   | nll_images   | experiment   |
|:----------|:----|:----|:---------|:----------|:-------------|:----------------|:-------|:-----------|:----------|:------------|:----------|:--------------|:-------------|:-------------|
| lam0      | 5   | 50  | 0.000    | 17.25     | 40.00        | 12.50           | 120.50 | 110.00     | 15.00     | -125.00     | 2000      | 50            | 500          | new-lam0     |
| base      | 5   | 50  | 50.00    | 18.50     | 663.60       | –               | 162.04 | 150.25     | 30.25     | -180.50     | 2000      | 50            | 500          | base         |
| K8-M10    | 8   | 10  | 50.00    | 12.00     | 90.00        | –               | 3.29   | 7050.00    | 50.00     | -7100.00    | 200       | 5             | 100          | k8m10        |
"""


@pytest.mark.slow
def test_ablation_table_from_dvc_exp_show_is_exactly_as_expected(tmp_path):
    shown = exp_show(exp_entry("base", "base", 18.5, BASE), exp_entry("k8m10", "K8-M10", 12.0, CIFAR),
                     exp_entry("old-lam0", "lam0", 1.0, BASE, "2026-11-21T10:00:00"),
                     exp_entry("new-lam0", "lam0", 17.25, PIXELVAE, "2026-11-22T11:00:00"),
                     exp_entry("half", "lam1", 1.0, {}))   # no eval metrics yet: not a row
    (tmp_path / "shown.json").write_text(json.dumps(shown))
    result = subprocess.run([sys.executable, str(REPO / "stages/make_tables.py"), "--out", "t", "--dvc-exp",
                             "shown.json", "--profile", "smoke"],
                            cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    md = (tmp_path / "t/ablation_omniglot_smoke_seed0.md").read_text()
    assert md.startswith("Ablation on omniglot (smoke profile, seed 0; dvc experiments)")
    assert md.split("\n\n", 1)[1] == ABLATION_TABLE
    table = pd.read_csv(tmp_path / "t/ablation_omniglot_smoke_seed0.csv")
    assert list(table.variant) == ["lam0", "base", "K8-M10"]     # sorted by K, M, lambda; newest lam0 kept
    assert list(table.experiment) == ["new-lam0", "base", "k8m10"]
    assert list(table["lambda"]) == [0.0, 50.0, 50.0] and list(table.K) == [5, 5, 8] and list(table.M) == [50, 50, 10]
    assert list(table.psnr_db) == [17.25, 18.5, 12.0] and list(table.nll) == [120.5, 162.04, 3.29]
    assert table.fid_inception.isna().tolist() == [False, True, True]
    assert (tmp_path / "t/ablation_omniglot_smoke_seed0.tex").read_text().count("\\\\") >= 4


@pytest.mark.slow
def test_ablation_table_names_the_variants_it_lacks(tmp_path):
    (tmp_path / "shown.json").write_text(json.dumps(exp_show(exp_entry("base", "base", 18.5, BASE))))
    result = subprocess.run([sys.executable, str(REPO / "stages/make_tables.py"), "--out", "t", "--dvc-exp",
                             "shown.json", "--profile", "smoke", "--variants", "base", "K6"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 2 and "variant(s) K6" in result.stderr and "dvc queue logs" in result.stderr
    assert not (tmp_path / "t").exists()


@pytest.mark.slow
def test_prior_size_table_reads_each_runs_prior_beside_its_evaluation(tmp_path):
    paths = []
    for variant, arch, params in (("base", {"width": 64, "heads": 4, "head_dim": None, "mlp_ratio": 4}, 470999),
                                  ("vit", {"width": 64, "heads": 16, "head_dim": 64, "mlp_ratio": 32}, 4311767)):
        path = write_fixture(tmp_path, "mnist", "quick", variant, BASE)
        prior = {"valid": {"nll_total_nats": 47.6}, "test": {"nll_total_nats": 46.8}, "parameters": params,
                 "history": [{"seconds": 50.0}, {"seconds": 52.0}], "provenance": {"params": {"prior": arch}}}
        (tmp_path / path).with_name("prior.json").write_text(json.dumps(prior))
        paths.append(path)
    result = subprocess.run([sys.executable, str(REPO / "stages/make_tables.py"), "--prior-size", "--out",
                             "results/tables", *paths], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    t = pd.read_csv(tmp_path / "results/tables/prior_size.csv")
    assert list(t.prior) == ["paper text", "authors' ViT"] and list(t.parameters) == [470999, 4311767]
    assert list(t.head_dim) == [16, 64] and list(t.mlp) == [256, 2048] and list(t.prior_seconds_per_epoch) == [51.0, 51.0]
    assert list(t.prior_fastest_epoch_s) == [50.0, 50.0]
    assert list(t.nll) == [162.04, 162.04] and list(t.selected_by) == ["fid (domain features)"] * 2


@pytest.mark.slow
def test_tables_read_the_runs_settings_not_todays_params(tmp_path):
    """K, M, lambda and precision come from each metrics file's provenance: editing params.yaml after
    the runs changes no table, and a metrics file without them is named, not filled from params.yaml."""
    paths = [write_fixture(tmp_path, "mnist", "quick", "base", BASE),
             write_fixture(tmp_path, "mnist", "quick", "pixelvae", PIXELVAE)]
    parse = tmp_path / "results/omniglot/smoke/full/seed0/K6-M10/metrics/parse.json"
    parse.parent.mkdir(parents=True)
    parse.write_text(json.dumps({"psnr_db": 20.0, "test": {"psnr_db": 20.0, "psnr_of_mean_mse_db": 19.0,
                                "draw_rate": 0.3, "images": 100},
                                "provenance": {"params": {"method.patch_size": 6, "method.bank_size": 10}}}))
    psnr = [sys.executable, str(REPO / "stages/psnr_ablation.py"), "--out", "t/psnr.md", "--csv", "t/psnr.csv",
            str(parse.relative_to(tmp_path))]

    def build():
        assert make_tables(tmp_path, *paths).returncode == 0
        assert subprocess.run(psnr, cwd=tmp_path, capture_output=True).returncode == 0
        return [(tmp_path / f).read_bytes() for f in ("results/tables/table1.md", "results/tables/nll.csv",
                                                      "t/psnr.csv")]

    params = (REPO / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(params)
    before = build()
    edited = yaml.safe_load(params)
    edited["method"]["omniglot"].update(patch_size=8, bank_size=200)
    edited["compute"]["precision"] = "fp32"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(edited))
    assert build() == before
    assert pd.read_csv(tmp_path / "t/psnr.csv")[["K", "M"]].values.tolist() == [[6, 10]]
    parse.write_text(json.dumps({"psnr_db": 20.0, "test": {"psnr_db": 20.0}}))
    old = subprocess.run(psnr, cwd=tmp_path, capture_output=True, text=True)
    assert old.returncode == 2 and "records no NP-DRAW settings" in old.stderr and str(parse.name) in old.stderr
