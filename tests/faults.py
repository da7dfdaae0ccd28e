"""Kill-and-rerun harness (tests/test_faults.py): SIGKILL stages at random moments, rerun, compare.

A chain drives one runner (Snakemake, or `dvc repro`) over the ten stages of one smoke run until
the run is complete, killing each stage `kills` times on the way.  The harness starts the runner,
waits for a stage's process (`python stages/<stage>.py`), draws a random moment in that attempt's
expected lifetime and SIGKILLs either the stage alone (what the OOM killer does: the runner sees
the job fail) or the runner with every process it started (a lost machine).  Then it does what the
README says to do after a crash -- `python -m npdraw.workflow.recovery`, then the same runner command --
and goes on.  The i-th kill of a stage falls in the i-th of `kills` equal slices of the attempt's
expected lifetime, so early (start-up), middle and late (writing outputs) moments are all tried;
the last kill of a training stage of several epochs falls in the epoch after its first saved one.

After every kill it checks that no file under a final name is unfinished: every output present
equals the uninterrupted run's (DVCLive folders, which are written live while training runs and
are replaced when the stage reruns, and logs are not outputs).  After the next attempt of a
training stage it checks, from that attempt's log, that training resumed at the epoch the resume
file held at the kill (or started at epoch 1 when none had been saved).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import torch
import yaml

from npdraw.workflow.recovery import recover
from tests.conftest import copy_worktree, stage_env, venv_bin

RUN = "results/mnist/smoke/full/seed0/base"
STAGES = ("prepare_data", "make_splits", "build_bank", "parse", "train_prior", "train_model", "edit_latents",
          "reference_stats", "metric_card", "evaluate")
# Training stages: their resume file, the metrics that give their epochs, Snakemake's log of the rule.
TRAINING = {
    "train_prior": (f"{RUN}/prior/resume.pt", f"{RUN}/metrics/prior.json", f"{RUN}/logs/train_prior.log"),
    "train_model": (f"{RUN}/model/resume.pt", f"{RUN}/metrics/model.json", f"{RUN}/logs/train_model.log"),
}
# What the Snakemake chain builds: the run's evaluation (which needs every stage but the card) and edits,
# and the profile's metric card.
TARGETS = (f"{RUN}/metrics/eval.json", f"{RUN}/figures/latent_edit.png", "results/mnist/smoke/reference/card.json")
OUTPUT_ROOTS = ("data/prepared", "results")
TIME_KEY = re.compile(r"seconds|_per_s$")   # measured durations and throughputs: differ run to run
START_UP_S = 3.0                            # a stage's imports and data loading, before any epoch


@dataclass
class Kill:
    runner: str
    stage: str
    attempt: int                 # 1..kills
    planned_s: float             # the random moment, seconds after the stage process started
    at_s: float | None           # when it was killed; None: the attempt finished before the moment
    whole: bool                  # the runner and all its processes (True) or the stage alone
    resume_epoch: int | None = None    # epochs saved in the stage's resume file after the kill
    resumed: str = ""            # what the next attempt's log says ("epoch k", "from the start")
    temporaries: int = 0         # temporaries of unfinished outputs the kill left (cleared by recovery)


@dataclass
class Chain:
    """One runner, driven to completion through kills (see module docstring)."""

    runner: str                  # "snakemake" or "dvc"
    root: Path                   # the project (a git repository with the smoke params)
    env: dict
    durations: dict[str, float]  # stage -> seconds in the uninterrupted run
    epochs: dict[str, int]       # training stage -> epochs
    reference: Path              # the project that made the uninterrupted run
    kills: int = 3
    rng: object = None
    log_dir: Path = None
    label: str = ""              # names the invocation logs (default: the runner)
    done: dict = field(default_factory=dict)   # stage -> kills so far
    record: list = field(default_factory=list)
    invocations: int = 0
    pending: dict = field(default_factory=dict)  # training stage -> epoch its next attempt must resume at

    def command(self, force: str | None = None) -> list[str]:
        if self.runner == "snakemake":
            return [venv_bin("snakemake"), "--cores", "1", "--rerun-incomplete",
                    # `--forcerun=S`, not `--forcerun S`: the option takes any number of values, so
                    # the targets after it would be forced too and the default target (all) built.
                    *([f"--forcerun={force}"] if force else []),
                    *TARGETS]
        return [venv_bin("dvc"), "repro", *(["--force", "--single-item", force] if force else [])]

    def dry_run(self, force: str | None = None) -> subprocess.CompletedProcess:
        """What `snakemake -n` says the command (with `force`) would run."""
        cmd = self.command(force)
        return subprocess.run([*cmd[:-len(TARGETS)], "-n", *TARGETS], cwd=self.root, env=self.env, capture_output=True,
                              text=True)

    # -- one runner invocation -------------------------------------------------------------
    def invoke(self, force: str | None = None, kill: bool = True) -> tuple[int, Kill | None, str, dict]:
        """Run the runner once, killing one stage attempt if one is due.  Returns (exit code, the kill,
        the invocation's output, {stage: seconds from start to end} of the attempts that ended)."""
        self.invocations += 1
        out_path = self.log_dir / f"{self.label or self.runner}-{self.invocations:03d}.log"
        with open(out_path, "w") as out:
            proc = subprocess.Popen(self.command(force), cwd=self.root, env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
            killed, victim, seen, alive, lifetimes = None, None, set(), {}, {}
            while proc.poll() is None:
                for stage, p in stage_processes(proc.pid):
                    if p.pid in seen or stage not in STAGES:   # a rule outside the ten (none expected)
                        continue
                    seen.add(p.pid)
                    alive[p.pid] = (stage, time.time())   # first seen (create_time has a 1 s offset)
                    if kill and victim is None and killed is None and self.done.get(stage, 0) < self.kills:
                        victim = (stage, p, self.moment(stage))
                for pid, (stage, t0) in list(alive.items()):
                    if _gone(pid):
                        if killed is None or killed.stage != stage:
                            lifetimes[stage] = time.time() - t0
                        del alive[pid]
                if victim is not None:
                    stage, p, planned = victim
                    attempt = self.done.get(stage, 0) + 1
                    elapsed = time.time() - alive[p.pid][1] if p.pid in alive else None
                    if planned is None and elapsed is not None and (self.root / TRAINING[stage][0]).exists():
                        # An epoch is saved now: the moment falls in the next one.  This attempt's own first
                        # epoch bounds it: the run's mean epoch also counts the work after the last epoch
                        # (test scoring, pictures), and a moment past the last epoch finds nothing to resume.
                        epoch = min(self.epoch_seconds(stage), max(0.5, elapsed - START_UP_S))
                        planned = elapsed + self.rng.uniform(0, 0.6) * epoch
                        victim = (stage, p, planned)
                    if elapsed is None:   # it finished before its moment: no kill this attempt
                        self.record.append(Kill(self.runner, stage, attempt, planned, None, False))
                        victim = None
                    elif planned is not None and elapsed >= planned:
                        whole = self.whole(stage, attempt)
                        kill_now(proc, p, whole)
                        killed, victim = Kill(self.runner, stage, attempt, planned, elapsed, whole), None
                        self.done[stage] = attempt
                time.sleep(0.02)
            code = proc.wait()
        return code, killed, out_path.read_text(), lifetimes

    def whole(self, stage: str, attempt: int) -> bool:
        """Kill the runner too?  Stages alternate on the first two kills (so both kinds hit every stage
        from two kills on, and half the stages with one); later kills toss a coin."""
        if attempt > 2:
            return self.rng.random() < 0.5
        return (STAGES.index(stage) + attempt) % 2 == 0

    def epoch_seconds(self, stage: str) -> float:
        return (self.durations[stage] - START_UP_S) / self.epochs[stage]

    def moment(self, stage: str) -> float | None:
        """A random moment in the i-th slice of this attempt's expected lifetime.  None: the last
        kill of a training stage of several epochs with nothing saved yet -- it waits for the attempt's
        first saved epoch and falls at a random moment of the next, so every chain checks a resume
        from a saved epoch, whatever the machine's speed."""
        i, expected = self.done.get(stage, 0), self.durations[stage]
        if stage in TRAINING:
            saved = resume_epoch(self.root, stage) or 0
            total = self.epochs[stage]
            if i == self.kills - 1 and total >= 2 and not saved:
                return None
            expected = START_UP_S + (expected - START_UP_S) * (total - saved) / total
        lo, hi = i / self.kills, (i + 1) / self.kills
        return self.rng.uniform(lo, hi) * 0.9 * expected

    # -- the chain -------------------------------------------------------------------------
    def run(self) -> list[Kill]:
        force = None
        for _ in range(20 * self.kills * len(STAGES)):
            code, killed, output, lifetimes = self.invoke(force)
            for stage, seconds in lifetimes.items():   # whole attempts of untrained stages: learn the fastest
                if stage not in TRAINING:
                    self.durations[stage] = min(self.durations[stage], seconds)
            self.check_resumes(output)
            if killed is None:
                assert code == 0, f"{self.runner} failed without a kill:\n{output[-3000:]}"
                if force:   # the forced stage ran to the end: back to the plain command, which must finish
                    force = None
                    continue
                short = [s for s in STAGES if self.done.get(s, 0) < self.kills]
                if not short:
                    return self.record
                force = short[0]   # an attempt finished before its moment: run that stage again
                continue
            # A kill during a forced rerun: force it again (the plain command would not rebuild an
            # intermediate whose downstream outputs are up to date).
            self.after_kill(killed)
            self.record.append(killed)
        raise AssertionError(f"{self.runner}: chain did not finish: {self.done}")

    def after_kill(self, killed: Kill) -> None:
        unfinished = [p for p in outputs(self.root) if not same_output(p, self.reference / p.relative_to(self.root))]
        assert not unfinished, f"after {killed}: unfinished files under final names: {unfinished}"
        recovered = recover(self.root)   # `python -m npdraw.workflow.recovery`, in this process
        assert not recovered.live, recovered.summary()
        killed.temporaries = len(recovered.temporaries)
        if killed.stage in TRAINING:
            killed.resume_epoch = resume_epoch(self.root, killed.stage)
            if killed.stage in self.pending:   # the attempt after the last kill died before reading its file
                self.pending[killed.stage][0].resumed = f"not read: attempt {killed.attempt} was killed first"
            self.pending[killed.stage] = (killed, killed.resume_epoch, time.time())

    def check_resumes(self, output: str) -> None:
        """The next attempt of a killed training stage resumed where its resume file said."""
        for stage, (killed, epoch, when) in list(self.pending.items()):
            path, _, log = TRAINING[stage]
            log = self.root / log   # Snakemake's log of the rule's last attempt
            if self.runner == "dvc":
                text = output
            elif log.exists() and log.stat().st_mtime > when:
                text = log.read_text()
            else:
                continue   # no attempt since the kill
            resumed = re.search(rf"resuming from {re.escape(path)} at epoch (\d+)", text)
            fresh = f"no resume file {path}: training starts at epoch 1" in text
            if not (resumed or fresh):
                continue   # that attempt was killed before it reached its resume file: check the next
            if epoch:
                assert resumed and int(resumed.group(1)) == epoch, (
                    f"{stage} killed with {epoch} epoch(s) saved, but the next attempt says: "
                    f"{resumed.group(0) if resumed else 'training starts at epoch 1'}")
                killed.resumed = f"epoch {epoch}"
            else:
                assert fresh, f"{stage}: no epoch was saved, yet the next attempt resumed: {resumed.group(0)}"
                killed.resumed = "from the start (nothing saved yet)"
            del self.pending[stage]


def stage_processes(runner_pid: int):
    """(stage, process) of the `python stages/<stage>.py` processes under the runner."""
    try:
        children = psutil.Process(runner_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for p in children:
        try:
            cmd = p.cmdline()
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue
        if len(cmd) > 1 and Path(cmd[0]).name.startswith("python") and cmd[1].startswith("stages/"):
            found.append((Path(cmd[1]).stem, p))
    return found


def kill_now(runner: subprocess.Popen, stage: psutil.Process, whole: bool) -> None:
    if not whole:
        stage.send_signal(signal.SIGKILL)
        return
    try:
        family = psutil.Process(runner.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    os.killpg(runner.pid, signal.SIGKILL)
    for p in family + [stage]:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def planned_jobs(output: str) -> set[str]:
    """The rules in the "Job stats" table of a Snakemake (dry) run's output."""
    table = output.split("Job stats:", 1)[1].split("total", 1)[0] if "Job stats:" in output else ""
    return {line.split()[0] for line in table.splitlines()[3:] if line.strip()}


def resume_epoch(root: Path, stage: str) -> int | None:
    path = root / TRAINING[stage][0]
    if not path.exists():
        return None
    return int(torch.load(path, map_location="cpu", weights_only=False)["state"]["epoch"])


def outputs(root: Path) -> list[Path]:
    """Files under final output names (not logs, resume files, DVCLive folders or temporaries)."""
    found = []
    for top in OUTPUT_ROOTS:
        for p in sorted((root / top).rglob("*")) if (root / top).exists() else []:
            rel = p.relative_to(root).parts
            if (p.is_file() and "logs" not in rel and "live" not in rel and p.name != "resume.pt"
                    and not any(part.startswith(".") for part in rel) and p.name != "README.md"):
                found.append(p)
    return found


def without_times(obj):
    if isinstance(obj, dict):
        return {k: without_times(v) for k, v in obj.items() if not TIME_KEY.search(k)}
    if isinstance(obj, list):
        return [without_times(v) for v in obj]
    return obj


def same_output(path: Path, reference: Path) -> bool:
    """Byte-identical; for JSON, identical once measured durations and throughputs are dropped."""
    if not reference.is_file():
        return False
    a, b = path.read_bytes(), reference.read_bytes()
    if a == b:
        return True
    if path.suffix == ".json":
        try:
            return without_times(json.loads(a)) == without_times(json.loads(b))
        except json.JSONDecodeError:
            return False
    return False


def live_curves(root: Path) -> dict[str, str]:
    """The DVCLive curves (tsv) and final metrics of the training stages."""
    return {str(p.relative_to(root)): p.read_text()
            for folder in ("prior", "model") for p in sorted((root / RUN / folder / "live").rglob("*"))
            if p.is_file() and p.suffix in (".tsv", ".json")}


# The same commit in every copy (same files, author and dates), so the provenance blocks agree.
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z"}


def env() -> dict:
    """One thread per job everywhere: CPU float results are bit-identical only for the same thread
    count, and Snakemake `--cores 1` gives its jobs OMP_NUM_THREADS=1 (dvc runs get it from here)."""
    return {**stage_env(), "DVC_NO_ANALYTICS": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}


def project(dest: Path) -> Path:
    """A git repository of the project with the MNIST smoke run selected in params.yaml."""
    root = copy_worktree(dest)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params.update(dataset="mnist", profile="smoke", split="full", seed=0, variant="base")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "fault suite"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env={**stage_env(), **GIT_ENV})
    return root


def clone(project_root: Path, dest: Path) -> Path:
    """Another copy of a project() at the same commit, without its outputs."""
    subprocess.run(["git", "clone", "-q", str(project_root), str(dest)], check=True, capture_output=True)
    return dest


def uninterrupted(base: Path) -> tuple[Path, Path, dict[str, float]]:
    """The smoke run made without a kill: (its project, a copy of its outputs, stage -> seconds)."""
    root = project(base / "repo")
    (base / "logs").mkdir()
    chain = Chain("snakemake", root, env(), {}, {}, root, log_dir=base / "logs", label="uninterrupted")
    code, _, output, lifetimes = chain.invoke(kill=False)
    assert code == 0, output[-3000:]
    for top in OUTPUT_ROOTS:
        shutil.copytree(root / top, base / "outputs" / top, symlinks=True)
    return root, base / "outputs", lifetimes
