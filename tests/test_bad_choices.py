"""The bad-input matrix, run choices and params: a malformed seed, split, variant, dataset or profile,
a non-finite number or an impossible combination of keys is refused at every front door (a stage
CLI, `snakemake --config`, `dvc exp run -S`) with one `error:` paragraph, exit 2, no traceback from
Python or from inside a Snakemake rule file, and before any job does work.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import needs_mirror, stage_env, venv_bin
from tests.stage_runs import RUN, prepared, refused, run_stage, world  # noqa: F401 (fixture)

# Every test here runs a stage's command line (in-process): the slow tier, not make test-fast.
pytestmark = pytest.mark.slow

# (choice, value, words of the message) for every front door
BAD_CHOICES = [
    ("seed", "-1", "expected a whole number from 0 to 2147483647"),
    ("seed", "99999999999", "2147483647"),
    ("split", "sample-0", "0 < F <= 1"),
    ("split", "sample-nan", "0 < F <= 1"),
    ("split", "sample-1.5", "0 < F <= 1"),
    ("split", "digit-0.35", "multiples of 0.1"),
    ("variant", "K0", "K must be at least 1"),
    ("variant", "M0", "M must be at least 1"),
    ("variant", "K6-K8", "sets patch_size a second time"),
    ("variant", "lam1.2.3", "needs a decimal after lam"),
    ("variant", "M999999", "expected at most bank.n_patches"),
    ("variant", "K5_M10", "is not K<int>"),
    ("dataset", "imagenet", "expected one of"),
    ("profile", "huge", "expected one of"),
]
IDS = [f"{c}={v}" for c, v, _ in BAD_CHOICES]


@pytest.mark.parametrize("choice, value, words", BAD_CHOICES, ids=IDS)
def test_stage_cli_refuses_a_bad_run_choice(world, choice, value, words):
    data = prepared(world)
    args = dict(zip(RUN[::2], RUN[1::2]), **{"--variant": "base"})
    args[f"--{choice}"] = value
    out = world.root / "bank.npy"   # a stage named by every choice, the variant too
    refused(*run_stage("build_bank", *[x for kv in args.items() for x in kv], "--data", data, "--splits",
                       world.root / "splits.npz", "--out", out, "--picture", world.root / "bank.png",
                       "--metrics", world.root / "bank.json"),
            choice, value, words, absent=[out])


def test_stage_cli_refuses_a_seed_that_is_not_a_number(world):
    refused(*run_stage("make_splits", *RUN[:-1], "1.5", "--data", "d", "--out", "s.npz", "--summary", "s.json"),
            "argument --seed: invalid int value: '1.5'", absent=["s.npz"])


def snakemake_refuses(repo, *config: str) -> str:
    """`snakemake -n --config ...` must stop before any job, with one error paragraph and exit 2."""
    result = subprocess.run([venv_bin("snakemake"), "-n", "--config", *config], cwd=repo, capture_output=True,
                            text=True, env=stage_env())
    out = result.stdout + result.stderr
    assert result.returncode == 2, out[-3000:]
    assert "Traceback" not in out and 'File "' not in out and "Error in rule" not in out, out[-3000:]
    assert out.count("error: ") == 1 and "Job stats" not in out, out[-3000:]
    return out[out.index("error: "):]


# A sample of the same cases at Snakemake's front door (each call parses the Snakefile: ~2 s).
SNAKEMAKE_CASES = [c for c in BAD_CHOICES if c[1] in ("-1", "sample-0", "digit-0.35", "K0", "K6-K8", "imagenet")]


@pytest.mark.slow
@pytest.mark.parametrize("choice, value, words", SNAKEMAKE_CASES, ids=[f"{c}={v}" for c, v, _ in SNAKEMAKE_CASES])
def test_snakemake_config_refuses_a_bad_run_choice(repo_copy, choice, value, words):
    message = snakemake_refuses(repo_copy, f"{choice}={value}")
    assert words in message and f"'{choice}'" in message and value in message, message


@pytest.mark.slow
@needs_mirror("mnist")
def test_dvc_exp_run_refuses_a_bad_run_choice(repo_copy):
    """dvc exp run -S: the first stage DVC starts refuses before doing any work, with the same message."""
    env = stage_env()
    git = lambda *a: subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *a],  # noqa: E731
                                    cwd=repo_copy, env=env, check=True, capture_output=True)
    git("init", "-q")
    git("add", "-A")
    git("commit", "-qm", "front doors")
    committed = {p for top in ("data", "results") for p in (repo_copy / top).rglob("*") if p.is_file()}
    for choice, value, words in [c for c in BAD_CHOICES if c[1] in ("-1", "sample-nan", "M0")]:
        result = subprocess.run([venv_bin("dvc"), "exp", "run", "-S", f"{choice}={value}"], cwd=repo_copy, env=env,
                                capture_output=True, text=True)
        out = result.stdout + result.stderr
        assert result.returncode != 0, out[-3000:]
        assert "Traceback" not in out and out.count("error: ") == 1, out[-3000:]
        message = out[out.index("error: "):]
        assert f"'{choice}'" in message and value in message and words in message, message
        written = [p for top in ("data", "results") for p in (repo_copy / top).rglob("*")
                   if p.is_file() and p not in committed]
        assert not written, f"a stage did work before refusing: {written}"   # (DVC makes empty out folders)
        git("checkout", "-q", "--", "params.yaml")
    # A variant DVC cannot build (the PixelVAE baseline: its trainer is Snakemake's) is refused by the
    # first stage, before any work, naming the engine that builds it.
    result = subprocess.run([venv_bin("dvc"), "exp", "run", "-S", "variant=pixelvae"], cwd=repo_copy, env=env,
                            capture_output=True, text=True)
    out = result.stdout + result.stderr
    assert result.returncode != 0 and out.count("error: ") == 1 and "Traceback" not in out, out[-3000:]
    assert "variant 'pixelvae'" in out and "snakemake --cores all --config variant=pixelvae" in out, out[-3000:]
    assert not [p for top in ("data", "results") for p in (repo_copy / top).rglob("*")
                if p.is_file() and p not in committed]


# --- params: non-finite numbers and impossible combinations --------------------------------------------

@pytest.mark.parametrize("edit, words", [
    (lambda p: p["model"].update(lr=float("nan")), "key 'model.lr' = nan: expected a finite number"),
    (lambda p: p["parse"].update(epsilon=float("inf")), "key 'parse.epsilon' = inf: expected a finite number"),
    (lambda p: p["profiles"]["smoke"].update(model={"tau_end": float("-inf")}), "profiles.smoke.model.tau_end"),
    (lambda p: p["method"]["mnist"].update(output="logistic_mixture"),
     "key 'datasets.mnist.binarize' = 'dynamic': binarized targets need output 'bernoulli'"),
    (lambda p: p["datasets"]["mnist"].update(labels="alphabets"),
     "key 'datasets.mnist.labels' = 'alphabets': source 'mnist_idx' has no such labels"),
    (lambda p: p["tables"].update(runs=["mnist/base", "cifar10/pcnn"]),
     "key 'tables.runs.1' = 'cifar10/pcnn'"),
    (lambda p: p["lowdata"].update(curves=[{"dataset": "omniglot", "kind": "digit", "proportions": [0.5]}]),
     "key 'lowdata.curves.0' (omniglot, digit, proportion 0.5)"),
], ids=["nan", "inf", "-inf-in-a-profile", "binarized-colour-output", "labels-the-source-lacks",
        "table-run-that-cannot-be-built", "lowdata-curve-that-cannot-be-built"])
def test_bad_params_are_refused_before_any_work(world, edit, words):
    edit(world.params)
    world.write_params()
    out = world.root / "prepared"
    refused(*run_stage("prepare_data", "--dataset", "mnist", "--out", out), "params.yaml", words, absent=[out])
