"""The findings campaign (results/findings/): run what is not committed yet, one run at a time, through the
pipeline's own front doors, and commit each finished run's metrics and provenance as it lands.

    python scripts/campaign.py plan                      # every job, committed or not, and the order
    python scripts/campaign.py run                       # run what is missing; commit after each job
    python scripts/campaign.py run --only table2 --max-jobs 2
    python scripts/campaign.py run --commit-to ../npdraw    # run in this clone, commit into the working checkout

Jobs, in order: `card` (each dataset's metric card at the findings profile: Snakemake), `gap`
(scripts/nll_gap.py on the committed reference model), `tune` (the learning-rate grid: each system at each
rate at one low-data point per dataset, trained only), `table2` (the Omniglot ablation, each row and seed
one `dvc exp` experiment: queued, then run by the queue), `quick` (Table 1 at the quick profile:
`snakemake tables`), `lowdata` (Fig. 3: each run one Snakemake target, seed 0 of every point first),
`budget` (part 2, the paper's budget: the `converged` low-data runs as Snakemake targets and the `tenfold`
Table 2 rows as DVC experiments, in the order and at the cost of npdraw.reporting.budget).  A
job is skipped when its results are committed in the target checkout, so a campaign
stopped anywhere (a killed run resumes from its last epoch: Snakemake's `--rerun-incomplete` and the
trainers' resume files; a DVC experiment reruns what its run cache lacks) continues on any machine from
what is committed.  The jobs that compare systems (table2, lowdata, budget) wait for the grid: the
campaign refuses them until every system's grid is committed and params.yaml trains each at the rate
its grid chose (findings.untuned).  After each job the findings page is rebuilt (npdraw.reporting.findings) and
committed with the job's files.  `touch campaign.pause` in the campaign's checkout holds the next job
until the file is removed (the machine free for a benchmark, with no job's time disturbed).

Every stage imports the package of the checkout the campaign runs in (PYTHONPATH), so the code that
produced a number is the commit its provenance names: run the campaign from a clone that does not
change while it runs (`git clone . ../campaign`), and commit into the working checkout.  A checkout whose
tracked files differ from its commit is refused.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import npdraw
from npdraw.artifacts.errors import ParamsError
from npdraw.data.sources import mirror_root
from npdraw.reporting import budget, findings
from npdraw.reporting.dvc_experiments import dvc, iter_experiments, show_experiments
from npdraw.workflow.cli import main
from npdraw.workflow.params import load_params
from npdraw.workflow.paths import REFERENCE_DIR, RUN_DIR, VARIANT_DIR

ROOT = Path(".").resolve()
QUICK_TABLES = "results/tables/quick/full/seed0"
QUICK_RUN = {"dataset": "mnist", "profile": "quick", "split": "full", "seed": 0, "variant": "base"}   # counts it
PAUSE = "campaign.pause"   # while this file exists in the campaign's checkout, no new job starts
METRICS = ("eval", "model", "prior", "parse", "bank")
CARD_DATASETS = ("mnist", "omniglot")   # the datasets whose FIDs the findings judge: their metric cards
TUNED = ("table2", "lowdata", "budget")  # the jobs that compare systems, each at the rate its grid chose


def environment() -> dict:
    """The stages' environment: this checkout's package first (not an editable install elsewhere), the
    data mirror as an absolute path (DVC's queue runs in copies of the repository), this venv's tools."""
    return {**os.environ, "PYTHONPATH": ".", "NPDRAW_DATA": str(mirror_root().resolve()),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def experiment_name(run: dict) -> str:
    return f"{run['dataset']}-{run['profile']}-s{run['seed']}-{run['variant']}"


def jobs(params: dict, target: Path) -> list[dict]:
    """Every job of the campaign, in order, each marked done when its results are committed in `target`."""
    out = [{"kind": "card", "name": f"{d}-card", "dataset": d, "done": findings.card(d, target) is not None}
           for d in CARD_DATASETS]
    out.append({"kind": "gap", "name": "nll_gap", "done": (target / findings.GAP).is_file()})
    out += [{"kind": "tune", "name": VARIANT_DIR.format(**r), "run": r, "done": findings.tuned(r, target)}
            for r in findings.tuning_runs(params, target)]
    out += [{"kind": "table2", "name": experiment_name(r), "run": r, "done": findings.committed(r, target)}
            for r in findings.table2_runs()]
    out.append({"kind": "quick", "name": "table1-quick", "done": findings.committed(QUICK_RUN, target)})
    out += [{"kind": "lowdata", "name": VARIANT_DIR.format(**r), "run": r, "done": findings.committed(r, target)}
            for r in findings.lowdata_runs(params)]
    # A tenfold row runs as a dvc experiment, named as Table 2's are; a low-data point by its run folder.
    out += [{"kind": "budget", "name": experiment_name(r) if r["profile"] == findings.LONG_TABLE2
             else VARIANT_DIR.format(**r), "run": r, "done": findings.committed(r, target)}
            for r in budget.runs(params)]
    return out


def call(*cmd: str) -> None:
    """Run a command of the campaign in this checkout's environment; a failure stops the campaign with the
    command (its own output above says why; the job is retried by the next `run`)."""
    result = subprocess.run(cmd, env=environment())
    if result.returncode:
        raise ParamsError(f"`{' '.join(cmd)}` failed (exit {result.returncode}); nothing of this job was "
                          f"committed, and `python scripts/campaign.py run` retries it")


def copy(src: Path, dest: Path, copied: list[Path]) -> None:
    if src.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest)
        copied.append(dest)


def record(where: Path, job: dict, seconds: float | None, engine: str, copied: list[Path]) -> None:
    """The run's campaign record: its wall seconds (None where this campaign did not time it), when and
    where it finished, and the code that ran it."""
    from npdraw.workflow.provenance import code_version

    where.mkdir(parents=True, exist_ok=True)
    info = {"job": job["name"], "engine": engine, "wall_seconds": None if seconds is None else round(seconds, 1),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"), "host": platform.node(),
            "code": code_version(str(ROOT)), "cpus": os.cpu_count()}
    (where / "campaign.json").write_text(json.dumps(info, indent=1) + "\n")
    copied.append(where / "campaign.json")


def harvest_run(run: dict, target: Path, copied: list[Path]) -> None:
    """A Snakemake run's metrics, its sample grid and its split summary into the findings."""
    variant, split = Path(VARIANT_DIR.format(**run)), Path(RUN_DIR.format(**run))
    dest = findings.run_dir(run, target)
    for name in METRICS:
        copy(ROOT / variant / f"metrics/{name}.json", dest / f"metrics/{name}.json", copied)
    copy(ROOT / variant / "eval/samples.png", dest / "samples.png", copied)
    copy(ROOT / split / "splits.json", dest.parent / "splits.json", copied)


def run_card(job: dict, target: Path) -> list[Path]:
    """The dataset's metric card at the findings profile (Snakemake: the reference statistics and the card),
    into the findings beside the dataset's runs."""
    reference = Path(REFERENCE_DIR.format(dataset=job["dataset"], profile=findings.PROFILE))
    snakemake(str(reference / "card.json"))
    copied: list[Path] = []
    for name in ("card.json", "card.png"):
        copy(ROOT / reference / name, findings.reference_dir(job["dataset"], target) / name, copied)
    return copied


def run_gap(job: dict, target: Path) -> list[Path]:
    out = ROOT / findings.GAP
    call(sys.executable, "scripts/nll_gap.py", "--out", str(out))
    copied: list[Path] = []
    copy(out, target / findings.GAP, copied)
    return copied


def experiment_file(path: str, rev: str) -> bytes | None:
    """A file an experiment's stages wrote, byte for byte (`dvc exp show` leaves the metrics' lists out), read
    through DVC's public API at the experiment's revision; None where the experiment has no such output."""
    import dvc.api
    from dvc.exceptions import PathMissingError

    try:
        return dvc.api.read(path, repo=str(ROOT), rev=rev, mode="rb")
    except (PathMissingError, FileNotFoundError):
        return None


def run_table2(job: dict, target: Path) -> list[Path]:
    """Queue the experiment (unless one of its name finished before), run the queue, and copy its metrics
    files, its sample grid and its split summary into the findings (read through dvc.api at its revision)."""
    run, env, name = job["run"], environment(), job["name"]
    finished = {n for n, _, _ in iter_experiments(show_experiments(env=env))}
    start = time.perf_counter()
    if name not in finished:
        # What a killed campaign left in the queue (its experiment failed or still queued) goes first; the
        # stages it finished come back from DVC's run cache.
        subprocess.run(["dvc", "queue", "remove", "--failed", "--queued"], env=env, capture_output=True)
        choices = [a for k in ("dataset", "profile", "split", "seed", "variant") for a in ("-S", f"{k}={run[k]}")]
        dvc("exp", "run", "--queue", "evaluate", "-n", name, *choices, env=env)
        dvc("exp", "run", "--run-all", "--jobs", "1", stream=True, env=env)
    seconds = time.perf_counter() - start
    rev = next((r for n, r, _ in iter_experiments(show_experiments(env=env)) if n == name), None)
    if rev is None:
        raise ParamsError(f"experiment {name} did not finish: `dvc queue logs {name}` says why")
    copied: list[Path] = []
    dest = findings.run_dir(run, target)
    wanted = {f"{VARIANT_DIR.format(**run)}/metrics/{name}.json": dest / f"metrics/{name}.json" for name in METRICS}
    wanted.update({f"{VARIANT_DIR.format(**run)}/eval/samples.png": dest / "samples.png",
                   f"{RUN_DIR.format(**run)}/splits.json": dest.parent / "splits.json"})
    for path, out in wanted.items():
        data = experiment_file(path, rev)
        if data is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
            copied.append(out)
    if not (dest / "metrics/eval.json").is_file():
        raise ParamsError(f"experiment {name}: its evaluation metrics are not in `dvc exp show`")
    if name not in finished:
        record(dest, job, seconds, f"dvc exp (queued, {name})", copied)
    elif (dest / "campaign.json").is_file():
        copied.append(dest / "campaign.json")   # harvested again: the run's own record stays
    else:   # harvested again with its record lost: the seconds above were the copying's, not the run's
        record(dest, job, None, f"dvc exp (harvested again from DVC's cache, {name})", copied)
    return copied


def snakemake(*args: str) -> None:
    call("snakemake", *args, "--cores", "2", "--rerun-incomplete")


def run_quick(job: dict, target: Path) -> list[Path]:
    call(sys.executable, "-m", "npdraw.workflow.recovery")
    start = time.perf_counter()
    snakemake("tables", "--config", "profile=quick")
    seconds = time.perf_counter() - start
    copied: list[Path] = []
    for table in (ROOT / QUICK_TABLES).iterdir():
        copy(table, target / QUICK_TABLES / table.name, copied)
    for entry in load_params("params.yaml")["tables"]["runs"]:
        dataset, variant = entry.split("/")
        harvest_run({"dataset": dataset, "profile": "quick", "split": "full", "seed": 0, "variant": variant},
                    target, copied)
    record(target / QUICK_TABLES, job, seconds, "snakemake tables", copied)
    return copied


def snakemake_job(job: dict, target: Path, output: str, harvest, engine: str) -> list[Path]:
    """One run as a Snakemake target (`output` under its folder), timed, then `harvest(run, target, copied)`
    and its campaign record."""
    run = job["run"]
    call(sys.executable, "-m", "npdraw.workflow.recovery")
    start = time.perf_counter()
    snakemake(VARIANT_DIR.format(**run) + output)
    seconds = time.perf_counter() - start
    copied: list[Path] = []
    harvest(run, target, copied)
    record(findings.run_dir(run, target), job, seconds, engine, copied)
    return copied


def harvest_training(run: dict, target: Path, copied: list[Path]) -> None:
    copy(ROOT / VARIANT_DIR.format(**run) / "metrics/model.json", findings.run_dir(run, target) / "metrics/model.json",
         copied)


def run_tune(job: dict, target: Path) -> list[Path]:
    """One run of the learning-rate grid: trained (no evaluation: the grid reads its validation FID), its
    training metrics committed.  A run whose training stops on a non-finite loss is a result of the grid, not
    a failure of the campaign: its log line is committed as the run's findings.DIVERGED record."""
    try:
        return snakemake_job(job, target, "/metrics/model.json", harvest_training, "snakemake (training only)")
    except ParamsError:
        line = divergence(job["run"])
        if line is None:
            raise
    dest = findings.run_dir(job["run"], target)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / findings.DIVERGED).write_text(json.dumps({"diverged": line}, indent=1) + "\n")
    copied = [dest / findings.DIVERGED]
    record(dest, job, None, "snakemake (training only; diverged)", copied)
    return copied


def divergence(run: dict) -> str | None:
    """The line of the run's training log (this checkout) that says its loss went non-finite, if one does."""
    for log in sorted((ROOT / VARIANT_DIR.format(**run) / "logs").glob("train_*.log")):
        hit = next((line for line in log.read_text(errors="replace").splitlines() if "non-finite loss" in line), None)
        if hit is not None:
            return hit.strip()
    return None


def run_lowdata(job: dict, target: Path) -> list[Path]:
    return snakemake_job(job, target, "/metrics/eval.json", harvest_run, "snakemake")


def run_budget(job: dict, target: Path) -> list[Path]:
    """A run of part 2 at the paper's budget: a low-data point through Snakemake, a Table 2 row through the
    DVC queue (as their short-budget counterparts)."""
    return (run_table2 if job["run"]["profile"] == findings.LONG_TABLE2 else run_lowdata)(job, target)


def wait_while_paused() -> None:
    """Between jobs, wait while the file PAUSE exists in this checkout: whoever needs the machine for a
    while (a test suite, a benchmark) creates it, and the job after the running one starts when it is
    removed, so that no job's wall time counts another program's work."""
    announced = False
    while (ROOT / PAUSE).exists():
        if not announced:
            print(f"[{datetime.now():%H:%M}] paused: {ROOT / PAUSE} exists", file=sys.stderr, flush=True)
            announced = True
        time.sleep(20)


RUNNERS = {"card": run_card, "gap": run_gap, "tune": run_tune, "table2": run_table2, "quick": run_quick,
           "lowdata": run_lowdata, "budget": run_budget}


def commit(target: Path, paths: list[Path], message: str) -> None:
    """Commit `paths` (and nothing else staged) in `target`, retrying while another git holds its index."""
    rel = [str(p.resolve().relative_to(target.resolve())) for p in paths]
    for _ in range(30):
        add = subprocess.run(["git", "-C", str(target), "add", "--", *rel], capture_output=True, text=True)
        done = add.returncode == 0 and subprocess.run(
            ["git", "-C", str(target), "commit", "-q", "-m", message, "--", *rel], capture_output=True,
            text=True).returncode == 0
        if done:
            return
        time.sleep(10)
    raise ParamsError(f"could not commit {len(rel)} files in {target} (git index busy for 5 minutes?)")


def headline(job: dict, target: Path) -> str:
    if job["kind"] == "tune" and (line := findings.diverged(job["run"], target)) is not None:
        return f"diverged: {line[-120:]}"
    if job["kind"] == "tune":
        m = json.loads((findings.run_dir(job["run"], target) / "metrics/model.json").read_text())
        return f"validation FID {m['selection_score']:.2f}, epoch {m['selected_epoch']}"
    if job["kind"] == "card":
        c = findings.card(job["dataset"], target)
        return f"{'passes' if c['passes'] else 'FAILS'}; floor {c['floor']['fid']:.3f} +- {c['floor']['fid_sd']:.3f}"
    if job["kind"] in ("table2", "lowdata", "budget"):
        e = json.loads((findings.run_dir(job["run"], target) / "metrics/eval.json").read_text())
        fid = e.get("fid_domain")
        return f"NLL {e['nll_nats']:.2f} nats, domain FID {fid:.2f}" if fid is not None else f"NLL {e['nll_nats']:.2f}"
    return "tables and page rebuilt"


def run() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("plan", "run"))
    p.add_argument("--only", nargs="+", choices=tuple(RUNNERS), help="these kinds of job only")
    p.add_argument("--max-jobs", type=int, help="stop after this many jobs")
    p.add_argument("--commit-to", type=Path, default=ROOT, help="the checkout that receives the results and "
                                                                "commits (default: this one)")
    p.add_argument("--no-commit", action="store_true", help="write the results, commit nothing")
    args = p.parse_args()
    params = load_params("params.yaml")
    target = args.commit_to.resolve()
    if not (target / ".git").exists():
        raise ParamsError(f"--commit-to {args.commit_to}: not a git checkout (expected the repository the results "
                          f"are committed to)")
    def planned() -> list[dict]:   # the jobs asked for, as the results committed in the target now plan them
        return [j for j in jobs(params, target) if not args.only or j["kind"] in args.only]

    todo = planned()
    if args.action == "plan":
        projected = {}
        if any(j["kind"] == "budget" for j in todo):   # part 2's runs: their projected minutes beside them
            plan = budget.project(params, budget.measured_rates(ROOT), ROOT)
            projected = {VARIANT_DIR.format(**r): r["minutes"] for r in plan.to_dict("records")}
        for j in todo:
            cost = f"  (projected {projected[j['name']]:.0f} min)" if j["name"] in projected else ""
            print(f"{'done' if j['done'] else 'todo':>4}  {j['kind']:<8} {j['name']}{cost}")
        if any(j["kind"] in TUNED for j in todo):
            for line in findings.untuned(params, target):
                print(f"waits for the grid: {line}")
        print(tally(sum(j["done"] for j in todo), len(todo), target))
        return
    # The comparisons train every system at its tuned rate (method §14): none starts before the grid chose it.
    waiting = findings.untuned(params, target) if any(j["kind"] in TUNED and not j["done"] for j in todo) else []
    if waiting:
        raise ParamsError(f"the {', '.join(TUNED)} jobs train at the learning rates the grid chooses, and "
                          f"{'; '.join(waiting)}. Run `python scripts/campaign.py run --only tune`, then set each "
                          f"system's rate in params.yaml (results/findings/{findings.TUNING}: chosen)")
    refuse_dirty(ROOT)
    ran: set[str] = set()
    # The plan is made again after every job: a tuning run on its grid's edge adds the next rate's runs.
    while (job := next((j for j in planned() if not j["done"] and j["name"] not in ran), None)) is not None:
        if args.max_jobs is not None and len(ran) >= args.max_jobs:
            break
        wait_while_paused()
        print(f"[{datetime.now():%H:%M}] {job['kind']} {job['name']}", file=sys.stderr, flush=True)
        copied = RUNNERS[job["kind"]](job, target)
        page = findings.build(target, ROOT / "params.yaml").written   # the campaign's params, whatever the target's
        if not args.no_commit:
            commit(target, copied + page, f"findings: {job['kind']} {job['name']} ({headline(job, target)})")
        ran.add(job["name"])
    todo = planned()
    print(f"ran {len(ran)} job{'' if len(ran) == 1 else 's'}; {tally(sum(j['done'] for j in todo), len(todo), target)}",
          file=sys.stderr, flush=True)


def tally(done: int, planned: int, target: Path) -> str:
    return f"{done} of {planned} jobs committed in {target}"


def refuse_dirty(checkout: Path) -> None:
    """Stop unless the campaign's checkout is its commit: every stage imports its package, and each run's
    provenance names that commit as the code that made it."""
    changed = subprocess.run(["git", "-C", str(checkout), "diff", "HEAD", "--name-only"], capture_output=True,
                             text=True).stdout.split()
    if changed:
        raise ParamsError(f"{checkout}: tracked files differ from the commit ({', '.join(changed[:5])}"
                          f"{', ...' if len(changed) > 5 else ''}); its runs' provenance would name a commit that "
                          f"did not make them. Commit or stash them, or run the campaign from a clean clone "
                          f"(`git clone . ../campaign`)")
    # An environment shared with another checkout (an editable install) imports that checkout's package,
    # here and in every stage the runners start: its code would make the runs this commit is credited with.
    package = Path(npdraw.__file__).resolve().parent
    if not package.is_relative_to(checkout.resolve()):
        raise ParamsError(f"{checkout}: this Python imports npdraw from {package.parent}, another checkout (an "
                          f"environment installed there in editable mode); give the campaign's clone its own "
                          f"environment, or run it with PYTHONPATH={checkout.resolve()}")


if __name__ == "__main__":
    main(run)
