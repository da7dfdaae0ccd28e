"""Kill and rerun: every stage SIGKILLed at random moments under Snakemake and under `dvc repro`.

The smoke run of MNIST (ten stages) is made once uninterrupted (the session fixture `smoke_run`,
tests/conftest.py), then from nothing by each runner
in its own copy of the project while tests/faults.py kills every stage `--fault-kills` times
(default 3) at random moments (`--fault-seed`); the two chains run side by side.  Each chain must
finish; no unfinished file may ever stand under a final name; killed training must resume from its
last saved epoch; and the outputs must equal the uninterrupted run's: byte for byte, except metrics
JSON, which must be equal once measured durations and throughputs are dropped.  Every job runs on
one thread (Snakemake `--cores 1` sets OMP_NUM_THREADS=1; the DVC chain sets it), since CPU float
results are bit-identical only for the same thread count.  The test run ends with a summary of
every kill (tests/conftest.py).
"""

import random
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from tests import faults
from tests.conftest import needs_mirror, venv_bin

pytestmark = [pytest.mark.fault, pytest.mark.slow, needs_mirror("mnist")]
RUNNERS = ("snakemake", "dvc")


def test_every_stage_killed_and_rerun_gives_the_uninterrupted_outputs(smoke_run, tmp_path, request):
    kills, seed = request.config.getoption("--fault-kills"), request.config.getoption("--fault-seed")
    project, reference, lifetimes = smoke_run
    assert set(lifetimes) == set(faults.STAGES), lifetimes
    epochs = {stage: yaml.safe_load((reference / metrics).read_text())["epochs"]
              for stage, (_, metrics, _) in faults.TRAINING.items()}
    assert epochs["train_prior"] >= 2 and epochs["train_model"] >= 2   # a later kill has an epoch to resume
    logs = tmp_path / "logs"
    logs.mkdir()
    chains = [faults.Chain(r, faults.clone(project, tmp_path / r), faults.env(), dict(lifetimes), epochs, reference,
                           kills=kills, rng=random.Random(f"{seed}-{r}"), log_dir=logs) for r in RUNNERS]
    with ThreadPoolExecutor(len(chains)) as pool:
        records = list(pool.map(lambda chain: chain.run(), chains))
    # For the summary at the end of the test run (tests/conftest.py).
    request.node.user_properties.append(("fault_kills", [vars(k) for record in records for k in record]))
    request.node.user_properties.append(("fault_lifetimes", lifetimes))
    for chain, record in zip(chains, records):
        check_chain(chain, record, reference, kills)


def check_chain(chain, record, reference, kills):
    root, runner = chain.root, chain.runner
    done = [k for k in record if k.at_s is not None]
    assert {s: sum(k.stage == s for k in done) for s in faults.STAGES} == {s: kills for s in faults.STAGES}
    assert any(k.whole for k in done) and any(not k.whole for k in done)

    # Finished: nothing left to run, and the outputs are the uninterrupted run's.
    if runner == "snakemake":
        again = chain.dry_run()
        assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
        # The chain's forced top-up reruns the stage and what depends on it, nothing outside the run.
        plan = chain.dry_run(force="parse")
        assert faults.planned_jobs(plan.stdout + plan.stderr) == {
            "parse", "train_prior", "train_model", "evaluate", "edit_latents"}, plan.stdout[-3000:]
    else:
        again = subprocess.run([venv_bin("dvc"), "status"], cwd=root, env=chain.env, capture_output=True, text=True)
        assert again.returncode == 0 and "up to date" in again.stdout, again.stdout
    ours, theirs = faults.outputs(root), faults.outputs(reference)
    assert [p.relative_to(root) for p in ours] == [p.relative_to(reference) for p in theirs], runner
    differ = [p for p in ours if not faults.same_output(p, reference / p.relative_to(root))]
    assert not differ, f"{runner}: {differ}"
    assert faults.live_curves(root) == faults.live_curves(reference), runner   # curves restart whole
    assert not list(root.rglob("resume.pt")), runner   # finished training leaves nothing to resume

    # Killed training resumed at the epoch its resume file held (or started over when none was saved).
    assert not chain.pending, f"{runner}: never checked: {chain.pending}"
    trained = [k for k in done if k.stage in faults.TRAINING]
    assert all(k.resumed for k in trained), [vars(k) for k in trained if not k.resumed]
    for stage in ("train_prior", "train_model"):   # several epochs: each resumed from a saved one at least once
        assert any(k.resume_epoch and k.resumed == f"epoch {k.resume_epoch}" for k in trained if k.stage == stage), (
            f"{runner}: {stage} never resumed from a saved epoch")
