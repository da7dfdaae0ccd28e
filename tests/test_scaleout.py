"""Scale-out on the CPU: the GPU lease (simulated devices) and data-parallel training with gloo."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO

from npdraw.compute import device as devmod
from npdraw.compute.device import lease

HOLDER = textwrap.dedent("""
    import sys, time
    from npdraw.compute.device import lease
    held = lease(sys.argv[2].split(","), sys.argv[1], poll_s=0.05, timeout_s=float(sys.argv[3]))
    print(held.index, held.gpu_id, flush=True)
    time.sleep(600)
""")


def start_holder(lock_dir, ids, timeout_s=30.0):
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_dir), ",".join(ids), str(timeout_s)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_all(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


@pytest.mark.slow
def test_lease_gives_concurrent_processes_distinct_devices_and_kill_releases(tmp_path):
    ids = [f"GPU-sim{i}" for i in range(4)]
    procs = [start_holder(tmp_path, ids) for _ in range(4)]
    try:
        got = [p.stdout.readline().split() for p in procs]
        assert sorted(g[1] for g in got) == ids, got          # four processes, four different devices
        fifth = start_holder(tmp_path, ids, timeout_s=0.5)    # all taken: waits, then gives up
        assert fifth.wait(timeout=30) != 0 and "stayed leased" in fifth.stderr.read()
        victim = procs[2]
        freed = got[2][1]
        victim.send_signal(signal.SIGKILL)                    # no cleanup runs: the kernel drops the flock
        victim.wait()
        sixth = start_holder(tmp_path, ids)
        procs.append(sixth)
        assert sixth.stdout.readline().split()[1] == freed
    finally:
        kill_all(procs)


def test_lease_respects_a_preset_cuda_visible_devices(tmp_path, monkeypatch):
    """A scheduler exposed physical GPUs 3 and 5: the job picks among them by torch index and never
    rewrites the mask; lock files are named by the devices' identities."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    monkeypatch.setenv("NPDRAW_GPU_LOCKS", str(tmp_path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: object())   # no UUID: use the mask
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d: "simulated")
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: None)
    monkeypatch.setattr(devmod, "_HELD", [])
    assert devmod.visible_gpus() == ["3", "5"]
    other = start_holder(tmp_path, ["3"])                     # another job holds physical GPU 3
    try:
        assert other.stdout.readline().split() == ["0", "3"]
        device = devmod.pick_device("auto")
        assert device == torch.device("cuda", 1)              # torch index 1 = physical GPU 5
        assert devmod._HELD[0].path == tmp_path / "5.lock"
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "3,5"    # untouched
    finally:
        kill_all([other])
        for held in devmod._HELD:
            held.release()


def test_lease_on_a_machine_without_gpus_is_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devmod.visible_gpus() == []
    assert devmod.pick_device("auto") == torch.device("cpu")
    from npdraw.artifacts.errors import MachineError
    with pytest.raises(MachineError, match="no CUDA device is visible.*run where one is"):
        devmod.pick_device("cuda")


def test_several_gpus_requested_without_them_is_refused(monkeypatch):
    from npdraw.artifacts.errors import MachineError
    from npdraw.compute.distributed import relaunch
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(MachineError, match="compute.gpus = 4: only 0 GPU.*set compute.gpus to at most 1"):
        relaunch(4, "auto")
    relaunch(1, "auto")   # one GPU: nothing to relaunch


def test_lease_is_exclusive_within_one_process(tmp_path):
    first = lease(["a", "b"], tmp_path)
    second = lease(["a", "b"], tmp_path)
    assert {first.gpu_id, second.gpu_id} == {"a", "b"}
    with pytest.raises(TimeoutError):
        lease(["a", "b"], tmp_path, poll_s=0.01, timeout_s=0.05)
    first.release()
    assert lease(["a", "b"], tmp_path).gpu_id == first.gpu_id


def prior_inputs(tmp_path, n_train=96, m=8, side=28, k=7):
    """Synthetic parses and bank: enough for the prior's teacher-forced training."""
    rng = np.random.default_rng(0)
    t = (side // k) ** 2
    out = {}
    for split, n in (("train", n_train), ("valid", 24), ("test", 24)):
        out[f"{split}_z_id"] = rng.integers(0, m, (n, t)).astype(np.int16)
        out[f"{split}_z_loc"] = np.tile(np.arange(t), (n, 1)).astype(np.int16)
        out[f"{split}_z_is"] = rng.random((n, t)) < 0.4
    np.savez(tmp_path / "parses.npz", **out)
    np.save(tmp_path / "bank.npy", rng.random((m, 1, k, k)).astype(np.float32))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["method"]["mnist"].update(patch_size=k, bank_size=m)
    params["prior"].update(width=16, layers=2, heads=2, conv_channels=4, head_hidden=16, dropout=0.0,
                           batch_size=32, epochs=3, samples=4)   # 3 epochs x 3 steps of 32 = 16 per rank
    params["profiles"]["smoke"]["prior"] = {}
    params["compute"].update(precision="fp32", channels_last=False)   # the fp32 agreement, to rounding
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))


def train_prior_stage(tmp_path, out, procs):
    launch = [sys.executable] if procs == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}"]
    cmd = launch + [str(REPO / "stages/train_prior.py"), "--params", str(tmp_path / "params.yaml"),
                    "--profile", "smoke", "--device", "cpu", "--parses", str(tmp_path / "parses.npz"),
                    "--bank", str(tmp_path / "bank.npy"), "--out", str(out / "best.pt"),
                    "--samples", str(out / "samples.png"), "--metrics", str(out / "metrics.json"),
                    "--live", str(out / "live")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return torch.load(out / "best.pt", weights_only=True)["state_dict"], result.stderr


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_matches_one_process_with_the_same_global_batch(tmp_path):
    prior_inputs(tmp_path)
    one, _ = train_prior_stage(tmp_path, tmp_path / "one", 1)
    two, log = train_prior_stage(tmp_path, tmp_path / "two", 2)
    assert "rank 1 of 2 on cpu (gloo)" in log
    assert not (tmp_path / "two" / "resume.pt").exists()
    lr, steps = 1e-4, 9
    for name, value in one.items():
        other = two[name]
        if name.endswith("qkv.bias"):
            # The key bias has zero gradient in exact arithmetic (softmax ignores a shift of all scores),
            # so Adam turns rounding noise into steps of +-lr: bounded, not reproducible across reductions.
            inner = value.numel() // 3   # heads x head_dim: q, k, v
            key = slice(inner, 2 * inner)
            assert (other[key] - value[key]).abs().max() <= 2 * lr * steps
            other, value = torch.cat([other[:inner], other[2 * inner:]]), torch.cat([value[:inner], value[2 * inner:]])
        torch.testing.assert_close(other, value, rtol=1e-4, atol=1e-5, msg=lambda m, name=name: f"{name}: {m}")
    curves = [json.loads((tmp_path / run / "metrics.json").read_text())["history"] for run in ("one", "two")]
    for a, b in zip(*curves):   # metrics reduced across ranks: the same curves
        assert a["train_nll_nats"] == pytest.approx(b["train_nll_nats"], rel=1e-5)
        assert a["valid_nll_nats"] == pytest.approx(b["valid_nll_nats"], rel=1e-5)
    assert curves[0][-1]["train_nll_nats"] < curves[0][0]["train_nll_nats"]   # it did train
