"""The progress watcher `make run` runs beside Snakemake: what it reads from a stage's log."""

import io
import subprocess
import sys
import time

from npdraw.reporting.progress import stage_of, status, watch

BAR = ("model epoch 4/6:  31%|###       | 41/134 [00:40<01:43,  1.11s/it]\r"
       "model epoch 4/6:  35%|###5      | 47/134 [00:49<01:48,  1.25s/it]")


def test_the_last_progress_bar_of_a_log_is_read():
    text = "12:01:02 npdraw.training.trainer: epoch 3: train loss 900.1, valid ELBO -130.0\n" + BAR
    assert status(text) == "model epoch 4/6  35%  47/134  1.25 s/step  elapsed 00:49  ETA 01:48"
    fast = "prior epoch 1/3:  86%|########5 | 269/313 [02:16<00:22,  2.00it/s]"
    assert status(fast) == "prior epoch 1/3  86%  269/313  2.00 steps/s  elapsed 02:16  ETA 00:22"


def test_without_a_bar_the_last_epoch_line_is_shown():
    text = ("12:01:02 npdraw.training.prior: epoch 1: train 50.1, valid 49.0 nats/sequence (390 seq/s)\n"
            "12:03:40 npdraw.training.prior: epoch 2: train 47.2, valid 46.9 nats/sequence (401 seq/s)\n")
    assert status(text) == "epoch 2: train 47.2, valid 46.9 nats/sequence (401 seq/s)"
    assert status("nothing to report\n") is None


def test_a_log_path_names_its_stage_and_run(tmp_path):
    assert stage_of(tmp_path / "results/mnist/quick/full/seed0/base/logs/train_model.log") == (
        "train_model", "mnist/quick/full/seed0/base")
    assert stage_of(tmp_path / "results/mnist/quick/reference/logs/metric_card.log") == (
        "metric_card", "mnist/quick/reference")
    assert stage_of(tmp_path / "logs/prepare_data/mnist.log") == ("prepare_data", "mnist")


def test_the_watcher_prints_running_stages_until_the_process_ends(tmp_path):
    log = tmp_path / "results/mnist/quick/full/seed0/base/logs/train_model.log"
    log.parent.mkdir(parents=True)
    log.write_text(BAR)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
    out = io.StringIO()
    start = time.time()
    watch(child.pid, [tmp_path / "results", tmp_path / "missing"], interval=0.5, out=out)
    child.wait()
    lines = out.getvalue().splitlines()
    assert time.time() - start < 10 and len(lines) == 1   # printed once: the bar did not move again
    assert "train_model" in lines[0] and "mnist/quick/full/seed0/base" in lines[0] and "ETA 01:48" in lines[0]
