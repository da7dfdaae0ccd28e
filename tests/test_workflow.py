"""Snakefile and dvc.yaml describe the same stages; the workflow runs end to end."""

import contextlib
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.browser import require_chromium, snakemake_report
from tests.conftest import REPO, needs_mirror, stage_env, venv_bin

# Rules that exist only in Snakemake: `all`, aggregations that DVC does with `dvc exp`, and the
# curves picture for the report (DVC draws the curves with `dvc plots show`).
SNAKEMAKE_ONLY = {"all", "psnr_ablation", "plot_curves"}
GPU_STAGES = {"train_prior", "train_model", "evaluate"}
CHOICES = [
    dict(dataset="mnist", profile="quick", split="full", seed=0, variant="base"),
    dict(dataset="omniglot", profile="smoke", split="alphabet-0.2", seed=2, variant="K6-M10"),
]


def snakemake_jobs(cwd: Path, choice: dict) -> dict:
    """rule -> {cmd, inputs, outputs} from a forced dry run with printed shell commands."""
    config = [f"{k}={v}" for k, v in choice.items()]
    out = subprocess.run([venv_bin("snakemake"), "-n", "-p", "--forceall", "--config", *config],
                         cwd=cwd, capture_output=True, text=True, check=True).stdout
    jobs = {}
    for block in re.split(r"\n(?=\[\w{3} \w{3})", out):
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        if not rule or rule.group(1) in SNAKEMAKE_ONLY:
            continue
        field = lambda name, block=block: re.search(rf"^\s+{name}: (.*)$", block, re.M)  # noqa: E731
        cmd = re.search(r"^Shell command: (.*)$", block, re.M).group(1)
        jobs[rule.group(1)] = {
            "cmd": normalise(cmd),
            "deps": set(field("input").group(1).split(", ")),
            "outs": set(field("output").group(1).split(", ")),
            "resources": field("resources").group(1),
        }
    return jobs


def normalise(cmd: str) -> list[str]:
    """Drop the interpreter and Snakemake's log redirection: the rest must match dvc's cmd."""
    words = shlex.split(re.sub(r"\s+2>\s*\S+$", "", cmd))
    assert Path(words[0]).name.startswith("python"), cmd
    return words[1:]


def dvc_stages(cwd: Path, choice: dict) -> dict:
    from dvc.repo import Repo

    subprocess.run(["git", "init", "-q"], cwd=cwd, check=True)
    params = yaml.safe_load((cwd / "params.yaml").read_text())
    params.update(choice)
    (cwd / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stages = {}
    for stage in Repo(str(cwd)).index.stages:
        stages[stage.name] = {
            "cmd": normalise(stage.cmd),
            "deps": {d.def_path for d in stage.deps} - {"params.yaml"},
            "outs": {o.def_path for o in stage.outs},
            "params": {p for d in stage.deps if d.def_path == "params.yaml" for p in d.params},
        }
    return stages


@pytest.mark.slow
@pytest.mark.parametrize("choice", CHOICES, ids=lambda c: f"{c['dataset']}-{c['profile']}")
def test_snakefile_and_dvc_yaml_agree(repo_copy, choice):
    smk, dvc = snakemake_jobs(repo_copy, choice), dvc_stages(repo_copy, choice)
    assert set(smk) == set(dvc), "stage sets differ"
    for name in dvc:
        for key in ("cmd", "deps", "outs"):
            assert smk[name][key] == dvc[name][key], f"{name}: {key} differs between Snakefile and dvc.yaml"
        # Heavy stages ask Snakemake for a GPU, so --resources gpu=N caps them.
        assert ("gpu=1" in smk[name]["resources"]) == (name in GPU_STAGES), (name, smk[name]["resources"])
        # Every stage depends on the dataset settings it reads, through dvc's params.
        if name != "prepare_data":
            assert f"datasets.{choice['dataset']}" in dvc[name]["params"]
            assert f"profiles.{choice['profile']}" in dvc[name]["params"]


@pytest.mark.slow
def test_snakemake_lint_is_clean():
    result = subprocess.run([venv_bin("snakemake"), "--lint"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


@pytest.mark.slow
def test_bad_config_is_refused_before_any_job(repo_copy):
    result = subprocess.run([venv_bin("snakemake"), "-n", "--config", "profile=huge"],
                            cwd=repo_copy, capture_output=True, text=True)
    assert result.returncode != 0 and "key 'profile' = 'huge'" in result.stdout + result.stderr
    result = subprocess.run([venv_bin("snakemake"), "-n", "--config", "bank=1"],
                            cwd=repo_copy, capture_output=True, text=True)
    assert result.returncode != 0 and "bank" in result.stdout + result.stderr


@pytest.mark.slow
@needs_mirror("mnist")
def test_the_lowdata_grid_with_snakemake(repo_copy):
    """The tiny low-data grid (smoke: MNIST 0.5% / 1% of the images x seeds 0, 1), scored like every other run,
    drawn as one curve per system, and in the report.  A test of its own, in its own copy: the smoke
    pipeline's test is the suite's longest, and the grid needs none of its runs."""
    cmd = [venv_bin("snakemake"), "--cores", "2", "lowdata", "--config", "profile=smoke"]
    subprocess.run(cmd, cwd=repo_copy, env=stage_env(), check=True, capture_output=True)
    curve = pd.read_csv(repo_copy / "results/lowdata/smoke/mnist-sample.csv")
    assert list(zip(curve.model, curve.proportion)) == [("NP-DRAW", 0.25), ("NP-DRAW", 0.5), ("VAE", 0.25),
                                                         ("VAE", 0.5)]   # every system on the same axes
    assert list(curve.fid_domain_count) == [2, 2, 2, 2]
    assert list(curve.train_images_mean) == [250, 500, 250, 500]   # 25 % / 50 % of the 1,000 capped images
    assert (curve.fid_domain_mean > 0).all() and (curve.nll_mean > 0).all()
    points = pd.read_csv(repo_copy / "results/lowdata/smoke/mnist-sample-points.csv")
    assert sorted(points.seed) == [0, 0, 0, 0, 1, 1, 1, 1]
    subsets = [np.load(repo_copy / f"results/mnist/smoke/sample-0.5/seed{s}/splits.npz")["train"] for s in (0, 1)]
    assert not np.array_equal(*subsets)   # each seed draws its own subset
    assert (repo_copy / "results/lowdata/smoke/mnist-sample.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = repo_copy / "results/report.html"
    result = subprocess.run([venv_bin("snakemake"), "--report", str(report), "lowdata", "--config", "profile=smoke"],
                            cwd=repo_copy, env=stage_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    require_chromium()
    shown = snakemake_report(report)
    assert "6. Low-data curves" in shown["categories"] and not shown["errors"], shown["errors"]
    curves = [i for i in shown["images"] if Path(i["path"]).name == "mnist-sample.png"]
    assert curves and curves[0]["width"] > 0 and curves[0]["caption"], shown["images"]


@pytest.mark.slow
@needs_mirror("mnist")
def test_smoke_pipeline_with_snakemake(smoke_run):
    """The whole pipeline as it stands, smoke profile, MNIST; then a rerun has nothing to do.
    The run's ten stages are the session's uninterrupted smoke run (conftest `smoke_run`)."""
    repo_copy = smoke_run[0]
    cmd = [venv_bin("snakemake"), "--cores", "2", "--config", "profile=smoke"]
    subprocess.run(cmd, cwd=repo_copy, env=stage_env(), check=True, capture_output=True)
    run = repo_copy / "results/mnist/smoke/full/seed0"
    splits = np.load(run / "splits.npz")
    assert [len(splits[k]) for k in ("train", "valid", "test")] == [1000, 200, 200]
    assert np.load(run / "base/bank.npy").shape == (50, 1, 5, 5)
    parse = json.loads((run / "base/metrics/parse.json").read_text())
    assert 12.0 < parse["psnr_db"] < 40.0 and parse["steps"] == 36
    parses = np.load(run / "base/parses.npz")
    assert parses["train_z_id"].shape == (1000, 36) and parses["test_z_is"].dtype == bool
    for picture in ("base/bank.png", "base/parse.png", "base/prior/samples.png", "base/model/reconstructions.png",
                    "base/figures/latent_edit.png"):
        assert (run / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    prior = json.loads((run / "base/metrics/prior.json").read_text())
    assert prior["epochs"] == 2 and prior["nll_nats"] < prior["uniform_bound_nats"]
    assert set(prior["test"]) == {"nll_total_nats", "nll_id_nats", "nll_loc_nats", "nll_is_nats"}
    assert not (run / "base/prior/resume.pt").exists()  # a finished run leaves nothing to resume
    assert list((run / "base/prior/live/plots/metrics").rglob("*.tsv"))  # DVCLive curves
    from npdraw.models.prior import load_prior

    assert load_prior(run / "base/prior/best.pt").cfg.steps == 36
    model = json.loads((run / "base/metrics/model.json").read_text())
    assert model["epochs"] == 2 and model["elbo_nats"] == pytest.approx(-model["bce_nats"] - model["kl_nats"])
    assert 0 < model["bce_nats"] < 784 * np.log(2) and model["kl_nats"] >= 0
    assert not (run / "base/model/resume.pt").exists()
    ev = json.loads((run / "base/metrics/eval.json").read_text())
    assert ev["nll_images"] == 100 and ev["nll_samples"] == 5 and ev["nll_subset"] is True
    assert ev["elbo_nats"] <= -ev["nll_nats"] + 1e-6          # the IWAE bound is at least the ELBO
    assert ev["fid_domain"] > 0 and "skipped" in ev["inception"]
    # Beside it, the floor (as many real held-out images: a perfect model's score, far below) and its spread,
    # precision and recall, and the committed network the features came from.
    assert ev["real_images"] == 200 and 0 < ev["fid_domain_floor"] < ev["fid_domain"] / 2 and ev["fid"] is None
    assert ev["fid_domain_floor_sd"] > 0 and ev["fid_domain_below_floor"] is False
    assert 0 <= ev["precision_domain"] <= 1 and 0 <= ev["recall_domain"] <= 1
    assert ev["feature_network"]["sha256"] == json.loads((REPO / "features/mnist.json").read_text())["sha256"]
    card = json.loads((run.parents[1] / "reference/card.json").read_text())
    assert {c["family"] for c in card["cases"]} >= {"pixel flips", "blur", "mode dropping", "collapsed"}
    assert card["floor"]["fid"] == ev["fid_domain_floor"] and isinstance(card["passes"], bool)
    assert ev["provenance"]["params"]["evaluate"]["nll_samples"] == 5 and ev["provenance"]["run"]["variant"] == "base"
    assert ev["provenance"]["libraries"]["torch"].startswith("2.13.0")
    assert ev["static_binarized_test"]["images"] == 100 and ev["static_binarized_test"]["nll_nats"] > 0
    samples = np.load(run / "base/eval/samples.npz")
    assert samples["images"].shape == (200, 1, 28, 28) and set(np.unique(samples["images"])) <= {0, 255}
    for picture in ("base/eval/samples.png", "base/figures/canvases_and_samples.png"):
        assert (run / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = subprocess.run([*cmd, "-n"], cwd=repo_copy, env=stage_env(), capture_output=True, text=True, check=True)
    assert "Nothing to be done" in again.stdout + again.stderr
    # Code dependencies are import closures: changing a module only the model stages import plans
    # evaluate again (and not the parser); its content back, nothing is left to do (Snakemake, like
    # DVC, compares a newer input's checksum with the one it recorded).
    with commented(repo_copy / closure_only("evaluate", "parse")):
        planned = subprocess.run([*cmd, "-n"], cwd=repo_copy, env=stage_env(), capture_output=True, text=True,
                                 check=True)
    assert re.search(r"^rule evaluate:", planned.stdout, re.M) and not re.search(r"^rule parse:", planned.stdout, re.M)
    again = subprocess.run([*cmd, "-n"], cwd=repo_copy, env=stage_env(), capture_output=True, text=True, check=True)
    assert "Nothing to be done" in again.stdout + again.stderr
    # Both ways: the stage table's text is no stage's code (a help string edited reruns nothing); drawing
    # code reruns the stages that draw and none of the others.
    assert planned_after_editing(repo_copy, "npdraw/workflow/stages.py", cmd) == set()
    assert planned_after_editing(repo_copy, "npdraw/parts/canvas.py", cmd) == {
        "build_bank", "parse", "train_prior", "train_model", "edit_latents", "evaluate", "metric_card"}
    # The summary printed at the end of `make run` points at these files.
    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    (repo_copy / "smoke.yaml").write_text(yaml.safe_dump({**params, "profile": "smoke"}))
    text = subprocess.run([sys.executable, "-m", "npdraw.reporting.summary", "smoke.yaml"], cwd=repo_copy,
                          capture_output=True, text=True, check=True).stdout
    assert "results/mnist/smoke/full/seed0/base/parse.png" in text and f"{parse['psnr_db']:.2f} dB" in text
    assert "results/tables/smoke/full/seed0/table1.md   (not built: `snakemake --cores all tables`)" in text
    # The baselines and tables: PixelVAE and NP-DRAW with a PixelCNN decoder, same splits, same evaluation.
    subprocess.run([venv_bin("snakemake"), "--cores", "2", "tables", "--config", "profile=smoke"], cwd=repo_copy,
                   env=stage_env(), check=True, capture_output=True)
    table = pd.read_csv(repo_copy / "results/tables/smoke/full/seed0/table1.csv")
    assert list(table.model) == ["DRAW", "NP-DRAW", "NP-DRAW + PixelCNN decoder", "PixelVAE", "VAE"]
    assert table.fid_domain.iloc[1] == pytest.approx(ev["fid_domain"]) and (table.nll > 0).all()
    pixelvae = json.loads((run / "pixelvae/metrics/eval.json").read_text())
    assert pixelvae["system"] == "pixelvae" and pixelvae["nll_nats"] <= -pixelvae["elbo_nats"] + 1e-6
    assert "canvases" not in np.load(run / "pixelvae/eval/samples.npz")
    assert not (run / "pixelvae/bank.npy").exists()          # the baseline needs no bank, parses or prior
    pcnn = json.loads((run / "pcnn/metrics/model.json").read_text())
    assert pcnn["epochs"] == 2 and np.isfinite(pcnn["elbo_nats"])
    # The report: one HTML file with every picture and table, rendered in headless Chromium (the low-data
    # curves' part of it: test_the_lowdata_grid_with_snakemake, on the other worker).
    report = repo_copy / "results/report.html"
    result = subprocess.run([venv_bin("snakemake"), "--report", str(report), "all", "tables", "--config",
                             "profile=smoke"], cwd=repo_copy, env=stage_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    check_report(report, ev)
    # Data-parallel: the model and evaluation stages on 2 CPU processes (gloo) from the same inputs.
    ddp = repo_copy / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    common = ["--params", "params.yaml", "--profile", "smoke", "--device", "cpu", "--data", "data/prepared/mnist",
              "--splits", str(run / "splits.npz")]
    env = {**stage_env(), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([*torchrun, "stages/train_model.py", *common, "--parses", str(run / "base/parses.npz"),
                             "--prior", str(run / "base/prior/best.pt"), "--out", str(ddp / "best.pt"),
                             "--reconstructions", str(ddp / "rec.png"), "--metrics", str(ddp / "model.json"),
                             "--live", str(ddp / "live"), "--milestones", str(ddp / "milestones.pt"),
                             "--classifier", str(repo_copy / "features/mnist.json")],
                            cwd=repo_copy, env=env, capture_output=True, text=True)
    assert result.returncode == 0 and "rank 1 of 2" in result.stderr, result.stderr[-3000:]
    ddp_model = json.loads((ddp / "model.json").read_text())
    assert ddp_model["epochs"] == 2 and abs(ddp_model["elbo_nats"] - model["elbo_nats"]) < 0.2 * abs(model["elbo_nats"])
    result = subprocess.run([*torchrun, "stages/evaluate.py", *common, "--model", str(ddp / "best.pt"),
                             "--milestones", str(ddp / "milestones.pt"),
                             "--classifier", str(repo_copy / "features/mnist.json"),
                             "--reference", str(repo_copy / "results/mnist/smoke/reference/stats.pt"),
                             "--metrics", str(ddp / "eval.json"),
                             "--samples", str(ddp / "samples.npz"), "--grid", str(ddp / "grid.png"),
                             "--figure", str(ddp / "fig.png")], cwd=repo_copy, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    ddp_eval = json.loads((ddp / "eval.json").read_text())
    assert ddp_eval["nll_images"] == 100 and np.load(ddp / "samples.npz")["images"].shape == (200, 1, 28, 28)


@contextlib.contextmanager
def commented(path: Path):
    """`path` with a comment appended for the duration of the block, its text put back after (also when
    the block fails, so that a failed check leaves the copy as it found it)."""
    source = path.read_text()
    path.write_text(source + "\n# edited: a comment\n")
    try:
        yield
    finally:
        path.write_text(source)


def planned_after_editing(repo: Path, module: str, cmd: list[str]) -> set[str]:
    """The rules `snakemake -n` plans once `module` (a path in `repo`) has an edited comment."""
    with commented(repo / module):
        out = subprocess.run([*cmd, "-n"], cwd=repo, env=stage_env(), capture_output=True, text=True, check=True).stdout
    return {m.group(1) for m in re.finditer(r"^rule (\w+):", out, re.M)} - {"all", "plot_curves"}


def closure_only(stage: str, other: str) -> str:
    """A module in the import closure of `stage`'s CLI and not in `other`'s."""
    from npdraw.workflow import closure

    only = set(closure.code_closure(f"stages/{stage}.py")) - set(closure.code_closure(f"stages/{other}.py"))
    return sorted(only)[0]


def check_report(report: Path, ev: dict) -> None:
    require_chromium()
    shown = snakemake_report(report, view=("1. Parts and parses", "mnist · smoke · full · seed 0 · base", "bank.png"))
    assert "Loading Snakemake Report" not in shown["app_text"] and not shown["errors"], shown["errors"]
    # The landing page opens on the run's headline numbers and its canvases-and-samples figure.
    assert "NP-DRAW: mnist · smoke · full · seed 0 · base" in shown["app_text"]
    assert f"test NLL\t{ev['nll_nats']:.2f} nats" in shown["app_text"], shown["app_text"][:2000]
    assert f"real images: {ev['fid_domain_floor']:.2f}" in shown["app_text"] and "precision\tbf16" in shown["app_text"]
    assert max(shown["landing_images"]) > 300, shown["landing_images"]   # the figure decoded, full width
    assert {"1. Parts and parses", "2. Prior", "3. Model", "4. Samples", "5. Tables"} <= set(shown["categories"])
    images = {Path(i["path"]).name: i for i in shown["images"]}
    for name in ("bank.png", "parse.png", "samples.png", "reconstructions.png", "latent_edit.png",
                 "training_curves.png", "canvases_and_samples.png"):
        assert name in images, f"{name} not in the report: {sorted(images)}"
    assert all(i["width"] > 0 and i["height"] > 0 for i in shown["images"]), shown["images"]   # every image decodes
    assert all(i["caption"] for i in shown["images"])
    assert any(p.endswith("table1.csv") for p in shown["results"])
    assert shown["viewed_width"] > 0   # a reader's clicks open the part bank picture


@pytest.mark.slow
@needs_mirror("omniglot")
def test_ablation_with_snakemake_and_dvc_agree(repo_copy):
    """The Omniglot K x M ablation through Snakemake wildcards (table in results/tables), then
    `dvc repro`, `dvc plots show`, and the ablation through the dvc queue: the same variant gives
    the same PSNR both ways."""
    env = stage_env()
    subprocess.run([venv_bin("snakemake"), "--cores", "2", "psnr_ablation", "--config", "dataset=omniglot",
                    "profile=smoke"], cwd=repo_copy, env=env, check=True, capture_output=True)
    table = pd.read_csv(repo_copy / "results/tables/ablation_psnr_smoke_seed0.csv")
    assert sorted(zip(table.K, table.M)) == [(k, m) for k in (5, 6, 8) for m in (10, 50, 200)]
    assert (table.psnr_db > 5).all() and (table.psnr_db < 60).all()
    assert (repo_copy / "results/tables/ablation_psnr_smoke_seed0.md").read_text().startswith("Part-bank ablation")

    git = lambda *a: subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *a],  # noqa: E731
                                    cwd=repo_copy, env=env, check=True, capture_output=True)
    dvc = lambda *a: subprocess.run([venv_bin("dvc"), *a], cwd=repo_copy, env=env, check=True,  # noqa: E731
                                    capture_output=True, text=True)
    params = yaml.safe_load((repo_copy / "params.yaml").read_text())
    params.update(dataset="omniglot", profile="smoke")
    (repo_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "smoke")
    dvc("repro")
    assert "didn't change" in dvc("repro", "--dry").stdout
    with commented(repo_copy / closure_only("evaluate", "parse")):   # dvc hashes content: change it, then undo
        status = dvc("status").stdout
    assert "evaluate:" in status and "parse:" not in status, status
    assert "didn't change" in dvc("repro", "--dry").stdout
    with commented(repo_copy / "npdraw/workflow/stages.py"):   # the stage table's text is no stage's code
        assert "didn't change" in dvc("repro", "--dry").stdout
    run = Path("results/omniglot/smoke/full/seed0")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_copy, capture_output=True, text=True).stdout.strip()
    code = json.loads((repo_copy / run / "base/metrics/eval.json").read_text())["provenance"]["code"]
    assert code == {"git_commit": head, "git_dirty": False}   # the metrics name the commit that made them
    plots = dvc("plots", "show", "-o", "dvc_plots")   # the DVCLive training curves of the run
    html = (repo_copy / "dvc_plots/index.html").read_text()
    assert "nll_nats" in html and "elbo_nats" in html, plots.stdout
    git("add", "-A")
    git("commit", "-qm", "baseline results")   # queued experiments start from HEAD's dvc.lock
    # Artifacts survive the machine: push to the default remote (a folder beside the repository),
    # pull into a fresh clone, and that clone has every artifact and nothing to rerun.
    dvc("push")
    assert (repo_copy.parent / "npdraw-dvc-store/files/md5").is_dir()
    clone = repo_copy.parent / "clone"
    subprocess.run(["git", "clone", "-q", str(repo_copy), str(clone)], check=True)
    pulled = subprocess.run([venv_bin("dvc"), "pull"], cwd=clone, env=env, capture_output=True, text=True)
    assert pulled.returncode == 0, pulled.stderr[-2000:]
    for artifact in ("base/model/best.pt", "base/metrics/eval.json", "base/eval/samples.npz", "base/bank.npy"):
        assert (clone / run / artifact).read_bytes() == (repo_copy / run / artifact).read_bytes(), artifact
    status = subprocess.run([venv_bin("dvc"), "repro", "--dry"], cwd=clone, env=env, capture_output=True, text=True)
    assert status.returncode == 0 and "didn't change" in status.stdout and "Running stage" not in status.stdout
    # The ablation through the dvc queue (two variants at smoke), tabulated by make_tables --dvc-exp.
    ablate = [sys.executable, "scripts/dvc_ablation.py", "--profile", "smoke", "--variants", "base", "K8-M10"]
    result = subprocess.run(ablate, cwd=repo_copy, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    ablation = pd.read_csv(repo_copy / "results/tables/ablation_omniglot_smoke_seed0.csv")
    assert list(ablation.variant) == ["base", "K8-M10"] and list(ablation.M) == [50, 10]
    assert list(ablation.experiment) == ["omniglot-smoke-s0-base", "omniglot-smoke-s0-K8-M10"]
    snakemake_psnr = table[(table.K == 8) & (table.M == 10)].psnr_db.item()
    assert ablation.psnr_db[1] == pytest.approx(snakemake_psnr, abs=1e-9)   # DVC and Snakemake agree
    workspace = json.loads((repo_copy / "results/omniglot/smoke/full/seed0/base/metrics/eval.json").read_text())
    assert ablation.fid_domain[0] == pytest.approx(workspace["fid_domain"])
    assert ablation.nll[0] == pytest.approx(workspace["nll_nats"])
    assert (ablation[["fid_domain", "nll", "bce_nats", "kl_nats"]] > 0).all().all()
    again = subprocess.run(ablate, cwd=repo_copy, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and again.stderr.count("finished experiment exists, reused") == 2, again.stderr


@pytest.mark.slow
def test_slurm_profile_dry_run_requests_gpus_for_the_training_jobs(repo_copy):
    result = subprocess.run([venv_bin("snakemake"), "--profile", "profiles/slurm", "-n", "--forceall",
                             "--default-resources", "slurm_account=acct", "slurm_partition=gpu"],
                            cwd=repo_copy, capture_output=True, text=True)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    jobs = {block.split("\n", 1)[0].strip(": "): block for block in out.split("\nrule ")[1:]}
    for name in GPU_STAGES:
        assert "gpu=1" in jobs[name] and "slurm_partition=gpu" in jobs[name], jobs[name]
    assert "gpu=" not in jobs["parse"]
