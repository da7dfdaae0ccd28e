"""benchmarks/gpu_check.sh: its CPU fallback (--device cpu --tiny) end to end, in a Python where the
packages the GPU machine lacks cannot be imported, as there."""

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

# Importing any of these fails in the child process: the GPU machine has none of them.
ABSENT = ("snakemake", "dvc", "dvclive", "kmedoids", "sklearn_extra", "jsonschema")
BLOCKER = f"""
import importlib.abc, runpy, sys
class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in {ABSENT!r}:
            raise ImportError(f'{{name}} is not installed on the GPU machine')
sys.meta_path.insert(0, Absent())
sys.argv = ['gpu_check'] + sys.argv[1:]
runpy.run_module('benchmarks.gpu_check', run_name='__main__')
"""


@pytest.mark.slow
def test_gpu_check_cpu_fallback_runs_without_the_pipeline_tools(tmp_path):
    bundle = tmp_path / "bundle"
    prepared = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--prepare", "--tiny",
                               "--bundle", str(bundle)], cwd=REPO, capture_output=True, text=True)
    assert prepared.returncode == 0, prepared.stderr
    assert (bundle / "bank.npy").is_file() and len(list((bundle / "data" / "mnist").glob("*.gz"))) == 4
    env = {**os.environ, "TQDM_DISABLE": "1"}
    out = subprocess.run([sys.executable, "-c", BLOCKER, "--device", "cpu", "--tiny", "--bundle", str(bundle)],
                         cwd=REPO, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    for path in ("prior training", "model training", "NLL, S = 5", "sampling"):
        for precision in ("fp32", "bf16"):   # every path timed eagerly in both precisions, at a positive rate
            row = re.search(rf"^{re.escape(path)}\s+{precision}\s+no\s+([0-9.]+) ", text, re.M)
            assert row and float(row.group(1)) > 0, (path, precision, text)
    curve = re.findall(r"^\s+(\d+)\s+[0-9.]+\s+\d+\s+(-?[0-9.]+)\s+([0-9.]+)$", text, re.M)
    assert curve, text   # the validation curve: epoch, ELBO, NLL per epoch
    for _, elbo, nll in curve:
        assert float(nll) > 0 and float(elbo) < 0
    assert "GPU check done" in text


@pytest.mark.slow
def test_gpu_check_without_a_bundle_says_how_to_make_one(tmp_path):
    out = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--tiny", "--bundle", str(tmp_path / "none")],
                         cwd=REPO, capture_output=True, text=True)
    assert out.returncode != 0
    assert "bank.npy not found" in out.stderr and "--prepare --tiny" in out.stderr
