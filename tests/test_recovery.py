"""npdraw.workflow.recovery: what dead processes left is cleared; nothing is touched while one is alive."""

import json
import subprocess
import sys

import pytest

from npdraw.workflow.recovery import main, recover


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def crashed(tmp_path):
    """A project as a SIGKILLed `snakemake` + `dvc repro` + stage leave it."""
    root = tmp_path / "project"
    (root / ".snakemake/locks").mkdir(parents=True)
    (root / ".snakemake/locks/0.input.lock").write_text("data/prepared/mnist\n")
    (root / ".snakemake/locks/0.output.lock").write_text("results/x/bank.npy\n")
    (root / ".dvc/tmp").mkdir(parents=True)
    pid = dead_pid()
    holder = {"pid": pid, "cmd": "dvc repro"}
    (root / ".dvc/tmp/rwlock").write_text(json.dumps({"write": {"results/x/bank.npy": holder},
                                                      "read": {"data/prepared/mnist": [holder]}}))
    run = root / "results/mnist/smoke/full/seed0/base"
    (run / "prior").mkdir(parents=True)
    (run / "bank.npy").write_bytes(b"finished")
    (run / ".parses.npz.k2j4.tmp").write_bytes(b"half")                    # a file being written
    (run / "prior/.live.a8d1.tmp/plots").mkdir(parents=True)               # a folder being written
    (run / "prior/resume.pt").write_bytes(b"state")
    return root, run


def test_stale_locks_and_temporaries_are_removed_finished_outputs_kept(crashed, capsys):
    root, run = crashed
    assert main([str(root), "--dry-run"]) == 0
    assert "would remove 2 Snakemake lock(s)" in capsys.readouterr().err
    assert (root / ".dvc/tmp/rwlock").exists() and (run / ".parses.npz.k2j4.tmp").exists()

    assert main([str(root)]) == 0
    err = capsys.readouterr().err
    assert "removed 2 Snakemake lock(s)" in err and "removed the stale DVC lock" in err
    assert "removed 2 temporary output(s)" in err and f"training will resume from {run / 'prior/resume.pt'}" in err
    assert not list((root / ".snakemake/locks").iterdir()) and not (root / ".dvc/tmp/rwlock").exists()
    assert sorted(p.name for p in run.rglob("*")) == ["bank.npy", "prior", "resume.pt"]
    assert main([str(root)]) == 0 and "nothing to recover" not in capsys.readouterr().err  # resume still named


def test_nothing_is_touched_while_a_stage_of_the_project_runs(crashed, capsys):
    root, run = crashed
    (root / "stages").mkdir()
    (root / "stages/slow.py").write_text("import time\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "stages/slow.py"], cwd=root)
    try:
        assert main([str(root)]) == 1
        err = capsys.readouterr().err
        assert f"{proc.pid}: " in err and "stages/slow.py" in err and "left as is" in err
        assert (root / ".snakemake/locks/0.input.lock").exists() and (run / ".parses.npz.k2j4.tmp").exists()
    finally:
        proc.kill()
        proc.wait()
    assert main([str(root)]) == 0


def test_a_live_dvc_holding_the_lock_keeps_it(crashed, tmp_path):
    """A dvc elsewhere (another working directory) that still holds the project's rwlock is seen by PID."""
    root, _ = crashed
    fake = tmp_path / "bin/dvc"
    fake.parent.mkdir()
    fake.write_text("import time\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, str(fake), "repro"], cwd=tmp_path)
    try:
        (root / ".dvc/tmp/rwlock").write_text(json.dumps({"write": {"a": {"pid": proc.pid, "cmd": "dvc repro"}}}))
        rec = recover(root)
        assert rec.live == [f"{proc.pid}: dvc (holds {root / '.dvc/tmp/rwlock'})"]
        assert (root / ".dvc/tmp/rwlock").exists()
    finally:
        proc.kill()
        proc.wait()
    assert recover(root).dvc_rwlock == root / ".dvc/tmp/rwlock"   # owner gone: the lock is stale
