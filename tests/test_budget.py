"""A run's budget (training.image_updates / split_epochs, rounds of round_images), early stopping after
`patience` checks, and the checkpoints kept at `training.milestones` with the learning curve evaluate
scores from them."""

import json

import pytest
import torch

from npdraw.artifacts.errors import ParamsError
from npdraw.evaluation.curve import SCORE_KEYS, curve, milestone_samples
from npdraw.models.checkpoints import load_model, read_milestones
from npdraw.training.loop import plan
from npdraw.training.select import Selector, training_record
from npdraw.training.trainer import train
from tests.conftest import REPO
from tests.stage_runs import evaluate_args, full_run, run_stage, world  # noqa: F401 (fixture)

ROUNDS = {"rounds": 10, "round_images": None}


def test_a_budget_is_epochs_of_the_split_or_a_count_cut_into_rounds():
    assert plan(ROUNDS, 300, 4, None).epochs == 4 and plan(ROUNDS, 300, 4, None).per_epoch is None
    fixed = plan(ROUNDS, 300, 4, 60000)
    assert (fixed.epochs, fixed.per_epoch, fixed.items) == (10, 6000, 60000)
    # 500 epochs of a 210-image alphabet in rounds of 20,000: 105,000 updates, rounded up to 6 rounds.
    paper = plan({**ROUNDS, "round_images": 20000}, 210, 4, None, split_epochs=500)
    assert (paper.epochs, paper.per_epoch, paper.items) == (6, 20000, 120000)
    assert paper.seen(3, 210) == 60000 and "500 epochs of 210" in paper.rule
    with pytest.raises(ParamsError, match="set one of"):
        plan(ROUNDS, 300, 4, 60000, split_epochs=500)


def test_milestones_fall_on_rounds_and_a_smaller_budget_leaves_the_larger_out():
    paper = plan({**ROUNDS, "round_images": 20000}, 210, 4, None, split_epochs=500)
    assert paper.milestones([60000, 240000], 210) == {3: 60000}
    with pytest.raises(ParamsError, match="70,000 image updates do not end a round of 20,000"):
        paper.milestones([70000], 210)
    with pytest.raises(ParamsError, match="60,000 image updates end round 3, which is not a check"):
        paper.milestones([60000], 210, every=2)


def tiny_vae(make_cfg, **training):
    cfg = make_cfg(profile="smoke", variant="vae", vae={"epochs": 1, "latent": 4, "batch_size": 20},
                   training={"select": "elbo", "select_every": 1, "image_updates": None, "split_epochs": None,
                             "rounds": 10, "round_images": 40, "patience": None, "milestones": [], **training})
    g = torch.Generator().manual_seed(0)
    images = {s: (torch.rand(n, 1, 28, 28, generator=g) * 255).to(torch.uint8) for s, n in
              (("train", 40), ("valid", 20))}
    return cfg, images


def plateau(improving: int) -> Selector:
    """A checkpoint rule whose score improves at each of its first `improving` calls, then never again."""
    calls = []

    def score(model) -> float:
        calls.append(1)
        return -len(calls) if len(calls) <= improving else 0.0
    return Selector("plateau", "valid_plateau", score)


def test_patience_stops_a_run_and_its_record_says_where_and_why(make_cfg, tmp_path):
    cfg, images = tiny_vae(make_cfg, image_updates=400, patience=2, milestones=[80, 320])
    state = train(cfg, images, tmp_path / "best.pt", tmp_path / "resume.pt", torch.device("cpu"),
                  select=plateau(3), milestones_path=tmp_path / "milestones.pt")
    # Checks 1-3 improve; 4 and 5 do not: stopped after round 5 of 10, with round 3 kept.
    budget = state["budget"]
    assert (budget["stopped_after_epoch"], budget["stopped_by"], budget["updates"]) == (5, "patience", 200)
    assert budget["planned_updates"] == 400 and state["best_epoch"] == 3
    at_80, at_320 = state["milestones"]
    assert at_80 == {"image_updates": 80, "reached": True, "selected_epoch": 2, "selection_score": -2}
    assert not at_320["reached"] and "patience after 200" in at_320["why"] and at_320["selected_epoch"] == 3
    record = training_record(state, plateau(3))
    assert record["budget"]["stopped_by"] == "patience" and record["epochs"] == 5
    kept = read_milestones(tmp_path / "milestones.pt", load_model(tmp_path / "best.pt"))
    # Weights only where they differ from the selected checkpoint's.
    assert "state_dict" in kept[0] and "state_dict" not in kept[1]


def test_a_resumed_run_stops_where_the_uninterrupted_one_did(make_cfg, tmp_path):
    cfg, images = tiny_vae(make_cfg, image_updates=400, patience=2, milestones=[80])
    whole = train(cfg, images, tmp_path / "a.pt", tmp_path / "a.r", torch.device("cpu"), select=plateau(3))

    class Kill(Exception):
        pass

    class KillAfter:
        def __init__(self, n):
            self.left = n

        def log_metric(self, *args):
            pass

        def next_step(self):
            self.left -= 1
            if self.left < 0:
                raise Kill

    with pytest.raises(Kill):
        train(cfg, images, tmp_path / "b.pt", tmp_path / "b.r", torch.device("cpu"), live=KillAfter(3),
              select=plateau(3))
    # Killed in round 4, resumed after round 3 (the best): the rounds after it do not improve, as uninterrupted.
    resumed = train(cfg, images, tmp_path / "b.pt", tmp_path / "b.r", torch.device("cpu"), select=plateau(0))
    assert resumed["budget"]["stopped_after_epoch"] == whole["budget"]["stopped_after_epoch"] == 5
    assert resumed["milestones"] == whole["milestones"]


def test_a_run_without_patience_trains_its_whole_budget(make_cfg, tmp_path):
    cfg, images = tiny_vae(make_cfg, split_epochs=3, milestones=[40, 400])
    state = train(cfg, images, tmp_path / "best.pt", tmp_path / "r.pt", torch.device("cpu"),
                  milestones_path=tmp_path / "m.pt")
    assert (state["budget"]["stopped_by"], state["budget"]["updates"], len(state["history"])) == ("budget", 120, 3)
    assert [m["reached"] for m in state["milestones"]] == [True, False]
    assert "beyond the run's budget of 120" in state["milestones"][1]["why"]


def test_the_curve_scores_each_kept_checkpoint_and_reuses_the_selected_ones_scores():
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.fill_(1.0)
    selected = {k: v.clone() for k, v in model.state_dict().items()}
    early = {k: torch.zeros_like(v) for k, v in selected.items()}
    milestones = [{"image_updates": 60000, "reached": True, "selected_epoch": 3, "selection_score": 9.0,
                   "state_dict": early},
                  {"image_updates": 240000, "reached": True, "selected_epoch": 12, "selection_score": 4.0}]
    images = milestone_samples(model, milestones, lambda: {"images": model.weight.detach().clone()})
    assert images[1] is None and torch.equal(images[0], torch.zeros(1, 2))
    assert torch.equal(model.weight, selected["weight"])    # the selected weights are back
    points = curve(milestones, images, {"fid_domain": 5.0, "recall_domain": 0.5, "fid_domain_floor": 0.1},
                   lambda x: {"fid_domain": 10.0 + float(x.sum()), "feature_network": "n"})
    assert points[0]["fid_domain"] == 10.0 and points[1]["fid_domain"] == 5.0
    assert all("state_dict" not in p and "fid_domain_floor" not in p and "feature_network" not in p
               for p in points)
    assert {"fid_domain", "precision_domain", "recall_domain", "kid_domain_std", "fid_domain_below_floor"} <= SCORE_KEYS


@pytest.mark.slow
def test_evaluate_scores_every_milestone_into_the_curve(world):
    """A stage-level run: a model trained with a milestone before its last round; evaluate's eval.json gives
    the curve, the milestone's own samples scored and the selected checkpoint's scores reused."""
    # The fixture's 32 training images: two rounds of 32, the validation FID scored after each.
    world.params["training"].update(select_every=1, image_updates=64, round_images=32, milestones=[32, 64])
    world.write_params()
    paths = full_run(world)
    model = json.loads((world.root / "model.json").read_text())
    assert model["budget"]["planned_updates"] == 64 and [m["image_updates"] for m in model["milestones"]] == [32, 64]
    code, err = run_stage("evaluate", *evaluate_args(world))
    assert code == 0, err
    points = json.loads((world.root / "eval/eval.json").read_text())["curve"]
    assert [p["image_updates"] for p in points] == [32, 64] and all(p["reached"] for p in points)
    final = json.loads((world.root / "eval/eval.json").read_text())
    assert points[1]["fid_domain"] == final["fid_domain"]    # at 64 updates: the selected checkpoint
    kept = read_milestones(paths["milestones"], load_model(paths["model"]))
    assert ("state_dict" in kept[0]) == (points[0]["selected_epoch"] != model["selected_epoch"])


# --- the projection of part 2 (npdraw/reporting/budget.py) ------------------------------------------

def test_part_two_runs_seed_by_seed_with_the_largest_point_last():
    from npdraw.reporting import budget
    from npdraw.workflow.params import load_params

    order = budget.runs(load_params(REPO / "params.yaml"))
    seeds = [r["seed"] for r in order]
    last = [r for r in order if (r["dataset"], r["split"]) == budget.LAST and r["seed"] == 2]
    assert order[-len(last):] == last and len(last) == 4          # MNIST 5 %'s third seed: every system, last
    rest = seeds[:-len(last)]
    assert rest == sorted(rest) and set(seeds) == set(budget.LONG_SEEDS)
    assert {r["profile"] for r in order} == {"converged", "tenfold"}
    assert {r["variant"] for r in order if r["profile"] == "tenfold"} == {"lam0", "lam1", "base"}


def test_a_projection_is_the_whole_budget_at_the_measured_rates():
    """One alphabet (210 training images, seed 0): 500 epochs are 105,000 images, six rounds of 20,000;
    the prior's 200 epochs are 42,000 sequences; at 1,000 images and sequences a second, 2 s a check and
    60 s of the rest, NP-DRAW's run is 120 + 12 + 42 + 60 s."""
    from npdraw.reporting import budget
    from npdraw.workflow.params import load_params

    rates = {key: budget.Rates(1000.0, 2.0, 1000.0 if key[1] == "npdraw" else None, 60.0, 1)
             for key in [(d, s) for d in ("mnist", "omniglot") for s in ("npdraw", "vae", "draw", "pixelvae")]}
    plan = budget.project(load_params(REPO / "params.yaml"), rates, REPO)
    row = plan.iloc[0]
    assert (row["dataset"], row["split"], row["seed"], row["system"]) == ("omniglot", "alphabet-0.03", 0, "npdraw")
    assert (row["train_images"], row["image_updates"], row["rounds"], row["prior_sequences"]) == (210, 120000, 6,
                                                                                                  42000)
    assert row["minutes"] == pytest.approx((120 + 12 + 42 + 60) / 60)
    assert plan["cumulative_hours"].iloc[-1] == pytest.approx(plan["minutes"].sum() / 60)


def test_the_committed_projection_is_what_the_module_writes(tmp_path):
    from npdraw.reporting import budget
    from npdraw.workflow.params import load_params

    rates = budget.measured_rates(REPO)
    text = budget.page(budget.project(load_params(REPO / "params.yaml"), rates, REPO), rates)
    assert text == (REPO / budget.OUT / "projection.md").read_text()
