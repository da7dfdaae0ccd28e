"""The findings at the paper's budget (results/findings/, part 2): the runs of the `converged` profile (the
low-data points at 500 epochs of the split) and of the `tenfold` profile (Table 2's lambda rows at ten times
the short budget), their order, and their projected cost.

The projection is measured, not guessed: each system's training rate (images per second), the seconds of
one checkpoint check (samples against the validation images), the prior's rate (sequences per second) and
the rest of a run (data, parts, parses, validation passes, the test evaluation) come from the committed
short-budget runs of the retired campaign, each timed alone on the 2-core CPU (campaign.json beside its
metrics).  A run's projected cost is then its whole budget trained (no early stop: an upper bound) plus one
check per round plus its prior's budget plus that rest; the rest holds ten validation passes where a long
run makes one per round, and the record says so.

    python -m npdraw.reporting.budget          # writes results/findings/budget/projection.{md,csv}
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from npdraw.reporting.findings import (
    FINDINGS,
    LONG_LOWDATA,
    LONG_SEEDS,
    LONG_TABLE2,
    RETIRED,
    TABLE2_DATASET,
    TENFOLD_ROWS,
    run_dir,
)
from npdraw.reporting.lowdata import curves
from npdraw.workflow.cli import main
from npdraw.workflow.params import load_params
from npdraw.workflow.resolve import resolve, system_of

OUT = FINDINGS / "budget"
# Where the projection exceeds the CPU budget the issue sets, this point's last seed waits for the rest.
LAST = ("mnist", "sample-0.05")
CPU_HOURS = 15


def runs(params: dict) -> list[dict]:
    """Every run of part 2 in the order a campaign takes them: seed 0 of every point and row, then seed 1,
    then seed 2 (MNIST's 5 % last of all: the projection's largest), so that a verdict on two seeds exists
    early."""
    out = []
    for seed in LONG_SEEDS:
        for c in curves(params, LONG_LOWDATA):
            out += [{"dataset": c["dataset"], "profile": LONG_LOWDATA, "split": split, "seed": seed,
                     "variant": variant} for split in c["splits"] for variant in c["variants"]]
        out += [{"dataset": TABLE2_DATASET, "profile": LONG_TABLE2, "split": "full", "seed": seed, "variant": v}
                for v in TENFOLD_ROWS]
    last = [r for r in out if r["seed"] == LONG_SEEDS[-1] and (r["dataset"], r["split"]) == LAST]
    return [r for r in out if r not in last] + last


@dataclass(frozen=True)
class Rates:
    """A system's measured costs on one dataset (means over the committed short runs)."""
    train_images_per_s: float
    check_seconds: float            # one checkpoint score (samples against the validation images)
    prior_sequences_per_s: float | None
    rest_seconds: float             # everything else of a run (see the module docstring)
    runs: int


def measured_rates(root: Path = Path(".")) -> dict[tuple[str, str], Rates]:
    """{(dataset, system): Rates} from the retired campaign's timed runs."""
    found: dict[tuple[str, str], list[tuple]] = {}
    for record in sorted((root / RETIRED.runs).glob("*/findings/*/seed*/*/campaign.json")):
        where = record.parent
        camp = json.loads(record.read_text())
        if camp.get("wall_seconds") is None or not (where / "metrics/model.json").is_file():
            continue
        history = json.loads((where / "metrics/model.json").read_text())["history"]
        train = sum(h["seconds"] for h in history)
        checks = [h["select_seconds"] for h in history if "select_seconds" in h]
        prior_s, prior_rate = 0.0, None
        if (where / "metrics/prior.json").is_file():
            prior = json.loads((where / "metrics/prior.json").read_text())
            prior_s = sum(h["seconds"] for h in prior["history"])
            prior_rate = prior["train_sequences_per_s"]
        images = sum(h["images_per_s"] * h["seconds"] for h in history)
        key = (where.relative_to(root / RETIRED.runs).parts[0], system_of(where.name))
        found.setdefault(key, []).append((images / train, statistics.mean(checks) if checks else 0.0, prior_rate,
                                          camp["wall_seconds"] - train - sum(checks) - prior_s))
    return {key: Rates(statistics.mean(r[0] for r in rows), statistics.mean(r[1] for r in rows),
                       None if rows[0][2] is None else statistics.mean(r[2] for r in rows),
                       statistics.mean(r[3] for r in rows), len(rows))
            for key, rows in found.items()}


def split_size(run: dict, root: Path = Path(".")) -> int:
    """Training images of the run's split: the committed short-budget run of the same split and seed (the
    long profiles keep the findings profile's data caps, so the split is the same)."""
    path = run_dir({**run, "profile": "findings", "variant": "base"}, root, RETIRED.runs).parent / "splits.json"
    if not path.is_file():
        seed0 = run_dir({**run, "profile": "findings", "variant": "base", "seed": 0}, root, RETIRED.runs).parent
        path = seed0 / "splits.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no committed split summary for {run['dataset']} {run['split']}; the "
                                f"projection reads the split's size from the short campaign's runs")
    return json.loads(path.read_text())["counts"]["train"]


def project(params: dict, rates: dict[tuple[str, str], Rates], root: Path = Path(".")) -> pd.DataFrame:
    """One row per run of part 2 (runs()): its budget (image updates, rounds, checks, prior sequences) and
    projected minutes, an upper bound (the whole budget, no early stop)."""
    rows = []
    for run in runs(params):
        cfg = resolve(params, **run)
        n, system = split_size(run, root), cfg["system"]
        rate = rates[(run["dataset"], system)]
        tr = cfg["training"]
        updates = tr["image_updates"] or tr["split_epochs"] * n
        rounds = math.ceil(updates / tr["round_images"])
        prior = (cfg["prior"]["updates"] or (cfg["prior"]["split_epochs"] or 0) * n) if system == "npdraw" else 0
        seconds = (rounds * tr["round_images"] / rate.train_images_per_s + rounds * rate.check_seconds
                   + (prior / rate.prior_sequences_per_s if prior else 0.0) + rate.rest_seconds)
        rows.append({**run, "system": system, "train_images": n, "image_updates": rounds * tr["round_images"],
                     "rounds": rounds, "prior_sequences": prior, "minutes": seconds / 60})
    out = pd.DataFrame(rows)
    out["cumulative_hours"] = out["minutes"].cumsum() / 60
    return out


def page(plan: pd.DataFrame, rates: dict[tuple[str, str], Rates]) -> str:
    """The projection as markdown: the measured rates, the total per point and seed, and what waits."""
    measured = pd.DataFrame([{"dataset": d, "system": s, "runs timed": r.runs,
                              "train images/s": round(r.train_images_per_s), "check s": round(r.check_seconds, 1),
                              "prior seq/s": None if r.prior_sequences_per_s is None else
                              round(r.prior_sequences_per_s), "rest s": round(r.rest_seconds)}
                             for (d, s), r in sorted(rates.items())])
    plan = plan.assign(point=plan["dataset"] + " " + plan["profile"] + " " + plan["split"])
    per_point = plan.pivot_table(index="point", columns="seed", values="minutes", aggfunc="sum").round(0)
    total = plan["minutes"].sum() / 60
    within = plan[plan["cumulative_hours"] <= CPU_HOURS]
    waits = plan[plan["cumulative_hours"] > CPU_HOURS]
    waiting = sorted({f"{r.dataset} {r.split} seed {r.seed}" for r in waits.itertuples()})
    lines = [
        "# Part 2 of the findings: the projected cost", "",
        "Generated by `python -m npdraw.reporting.budget` from params.yaml (profiles `converged` and "
        "`tenfold`) and the committed short-budget runs of the retired campaign (each timed alone on the 2-core "
        "CPU). Every run is projected at its whole budget, without the early stop that may end it sooner: an "
        "upper bound. A run's rest holds the short run's ten validation passes where a long run makes one per "
        "round (each a forward pass over the 1,000 validation images).", "",
        "## Measured costs per system", "", measured.to_markdown(index=False, missingval="-"), "",
        "## Projected minutes per point and seed", "", per_point.to_markdown(), "",
        f"**Total: {total:.1f} CPU-hours** for {len(plan)} runs, in the campaign's order (seed 0 of every point "
        f"and row, then seed 1, then seed 2). {len(within)} runs fit the first {CPU_HOURS} hours"
        + (f"; the runs after them wait: {', '.join(waiting)}." if waiting else "."), "",
        "## Every run, in order", "",
        plan.drop(columns=["point"]).round({"minutes": 1, "cumulative_hours": 2}).to_markdown(index=False), ""]
    return "\n".join(lines)


def write(root: Path = Path("."), params_path: str | Path = "params.yaml") -> list[Path]:
    """Write the projection's page and table under results/findings/budget/; return the paths."""
    params = load_params(root / params_path)
    rates = measured_rates(root)
    plan = project(params, rates, root)
    out = root / OUT
    out.mkdir(parents=True, exist_ok=True)
    (out / "projection.csv").write_text(plan.round({"minutes": 2, "cumulative_hours": 3}).to_csv(index=False))
    (out / "projection.md").write_text(page(plan, rates))
    return [out / "projection.csv", out / "projection.md"]


def run() -> None:
    for path in write():
        print(f"wrote {path}")


if __name__ == "__main__":
    main(run)
