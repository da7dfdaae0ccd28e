"""The stage table: dvc.yaml is what it generates, code dependencies are the import closures,
params are declared once and mapped to params.yaml's keys without a gap."""

import copy
import json
import subprocess
import sys

import pytest

from npdraw.runtime import pipeline
from npdraw.runtime.config import load_params
from tests.conftest import REPO, venv_bin


@pytest.mark.parametrize("name", sorted(pipeline.GENERATED))
def test_committed_engine_files_are_the_ones_the_table_generates(name):
    assert (REPO / name).read_text() == pipeline.GENERATED[name](), \
        f"{name} differs from the stage table: regenerate it with `python -m npdraw.runtime.pipeline --write`"


def test_the_check_command_names_a_stale_file(tmp_path, monkeypatch):
    for name in pipeline.GENERATED:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(pipeline.GENERATED[name]())
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.setattr(pipeline, "REPO", tmp_path)
    with pytest.raises(SystemExit):
        pipeline.main(["--check"])
    pipeline.main(["--write"])
    pipeline.main(["--check"])   # now current
    assert (tmp_path / "dvc.yaml").read_text() == pipeline.dvc_yaml()


IMPORTED = """
import importlib.util, json, sys
found = {}
for script in sys.argv[1:]:
    for name in [m for m in sys.modules if m == "npdraw" or m.startswith("npdraw.")]:
        del sys.modules[name]
    spec = importlib.util.spec_from_file_location("stage_under_test", script)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))   # defines run(); main() is not called
    found[script] = sorted(m.__file__ for n, m in sys.modules.items() if n == "npdraw" or n.startswith("npdraw."))
print(json.dumps(found))
"""


def test_code_closure_covers_every_module_a_stage_imports():
    """What Python really imports when a stage CLI loads is inside its computed closure (which also
    holds what functions import lazily), and the closure holds nothing outside the project."""
    scripts = [s.script for s in pipeline.STAGES.values()] + ["stages/make_tables.py", "stages/lowdata_curve.py"]
    out = subprocess.run([sys.executable, "-c", IMPORTED, *scripts], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    for script, files in json.loads(out.stdout).items():
        imported = {str(__import__("pathlib").Path(f).relative_to(REPO)) for f in files}
        closure = set(pipeline.code_closure(script))
        assert imported <= closure, f"{script}: imported but not in its closure: {sorted(imported - closure)}"
        assert all(p.startswith("npdraw/") for p in closure)
    # The module that binarizes the test images every evaluation scores (fixed_targets) is a dependency
    # of both stages that read them: changing it reruns them.
    for name in ("evaluate", "reference_stats"):
        assert "npdraw/data/binarize.py" in pipeline.code_closure(pipeline.stage(name).script)


def test_every_declared_key_resolves_and_maps_to_params_yaml(params):
    """Each stage's declared params resolve for every dataset, and every params.yaml key whose change
    changes a resolved value is one dvc.yaml lists for that stage (no change goes unseen by DVC)."""
    for s in pipeline.STAGES.values():
        variant = "base" if "npdraw" in s.systems else s.systems[-1]   # a variant of the stage's systems
        for dataset in params["datasets"] if "npdraw" in s.systems else ("mnist", "binarized_mnist", "omniglot"):
            cfg = s.config(params, dataset=dataset, profile="smoke", variant=variant)
            assert set(pipeline.params_block(cfg, s)) == set(s.params)
        listed = pipeline.dvc_params(s)
        base = pipeline.params_block(s.config(params, dataset="mnist", profile="smoke", variant=variant), s)
        for key, edit in EDITS.items():
            changed = copy.deepcopy(params)
            choice = {"variant": variant, **edit(changed)}
            if choice["variant"] != variant and "npdraw" not in s.systems:
                continue   # an NP-DRAW variant: not one of this stage's runs
            after = pipeline.params_block(s.config(changed, **{"dataset": "mnist", "profile": "smoke", **choice}), s)
            if after != base:   # dvc.yaml must list the key or a section holding it
                assert any(key == k or key.startswith(k + ".") for k in listed), \
                    f"{s.name}: changing {key} changes its params but dvc.yaml lists neither it nor its section"


def _set(path, value):
    def edit(p):
        *head, last = path.split(".")
        for part in head:
            p = p[part]
        p[last] = value
        return {}
    return edit


# One edit per kind of params.yaml key a stage can read (the key, ${...} for the run's choices -> edit).
EDITS = {
    "datasets.${dataset}.n_valid": _set("datasets.mnist.n_valid", 999),
    "method.${dataset}.lambda_reg": _set("method.mnist.lambda_reg", 7.0),
    "method.${dataset}.patch_size": _set("method.mnist.patch_size", 4),
    "profiles.${profile}.evaluate.nll_samples": _set("profiles.smoke.evaluate.nll_samples", 7),
    "data.max_test_images": _set("data.max_test_images", 77),
    "bank.max_iter": _set("bank.max_iter", 5),
    "parse.epsilon": _set("parse.epsilon", 0.2),
    "prior.layers": _set("prior.layers", 3),
    "model.head_hidden": _set("model.head_hidden", 17),
    "evaluate.fid_images": _set("evaluate.fid_images", 123),
    "evaluate.nll_samples": _set("evaluate.nll_samples", 9),
    "classifier.width": _set("classifier.width", 9),
    "vae.latent": _set("vae.latent", 9),
    "training.select_every": _set("training.select_every", 9),
    "compute.precision": _set("compute.precision", "fp32"),
    "compute.gpus": _set("compute.gpus", 3),
    "variant": lambda p: {"variant": "lam1"},
}


def test_changing_lambda_reruns_the_model_onwards_not_the_parts():
    """lambda is read by the model and what follows: the data, bank, parses and prior keep their params."""
    params = load_params(REPO / "params.yaml")
    changed = copy.deepcopy(params)
    changed["method"]["mnist"]["lambda_reg"] = 7.0
    moved = {name for name, s in pipeline.STAGES.items() if
             pipeline.params_block(s.config(params, dataset="mnist"), s)
             != pipeline.params_block(s.config(changed, dataset="mnist"), s)}
    assert moved == {"train_model", "edit_latents", "evaluate"}
    dvc = {name for name, s in pipeline.STAGES.items() if "method.${dataset}" in pipeline.dvc_params(s)}
    assert dvc == moved


def test_scoped_stages_ignore_the_choices_they_are_not_named_by(params):
    """The splits do not depend on the variant, nor the domain classifier on the split and seed."""
    splits, classifier = pipeline.stage("make_splits"), pipeline.stage("train_classifier")
    assert splits.config(params, variant="K6").variant == "base"
    ref = classifier.config(params, split="sample-0.1", seed=3, variant="K6")
    assert (ref.split, ref.seed, ref.variant) == ("full", 0, "base")
    assert "variant" not in pipeline.dvc_params(splits) and "variant" in pipeline.dvc_params(pipeline.stage("parse"))


def test_an_np_draw_stage_refuses_the_pixelvae_variant(tmp_path):
    """What `dvc exp run -S variant=pixelvae` would do: NP-DRAW's stages refuse it with one message
    naming the engine that builds it, before reading any input."""
    out = subprocess.run([venv_bin("python"), "stages/build_bank.py", "--variant", "pixelvae", "--data", "nowhere",
                          "--splits", "nowhere.npz", "--out", str(tmp_path / "b.npy"), "--picture",
                          str(tmp_path / "b.png"), "--metrics", str(tmp_path / "b.json")],
                         cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 2 and "snakemake --cores all --config variant=pixelvae" in out.stderr, out.stderr
    assert not list(tmp_path.iterdir())


def test_adding_a_stage_is_one_table_entry(monkeypatch):
    """A new per-run stage appears in both engines from its entry alone (the CLI aside)."""
    extra = pipeline.Stage("score_parts", "variant", inputs={"bank": pipeline.VARIANT_DIR + "/bank.npy"},
                           outputs={"out": pipeline.Output(pipeline.VARIANT_DIR + "/parts.json", "metrics")},
                           params=("method.bank_size",))
    choice = {"dataset": "omniglot", "profile": "smoke", "split": "character-0.1", "seed": 2, "variant": "K6"}
    assert extra.paths(choice) == ({"bank": "results/omniglot/smoke/character-0.1/seed2/K6/bank.npy"},
                                   {"out": "results/omniglot/smoke/character-0.1/seed2/K6/parts.json"})
    cmd = pipeline.command(extra, "python", lambda kind, flag, p: p or flag)
    assert cmd.startswith("python stages/score_parts.py --params params.yaml --dataset dataset")
    assert pipeline.dvc_params(extra) == ["variant", "method.${dataset}.bank_size"]
    assert extra.log() == pipeline.VARIANT_DIR + "/logs/score_parts.log"
    monkeypatch.setitem(pipeline.STAGES, "score_parts", extra)
    monkeypatch.setattr(pipeline, "code_closure", lambda script, systems=None: ())   # its CLI is not written here
    assert "rule score_parts:" in pipeline.snakemake_rules() and "\n  score_parts:\n" in pipeline.dvc_yaml()


@pytest.mark.parametrize("key", ["nonsense", "ds.patch_size"])
def test_an_undeclarable_key_is_refused(key):
    with pytest.raises(KeyError, match=key):
        pipeline.params_yaml_keys(key)


def test_every_engine_command_parses_with_its_stage_cli():
    """The command both engines run is what the stage's own parser accepts: its flags come from the
    same entry (npdraw.runtime.cli.stage_parser), so a stage and its rule cannot disagree."""
    from npdraw.runtime.cli import stage_parser

    choice = {"dataset": "mnist", "profile": "smoke", "split": "full", "seed": "0", "variant": "base"}
    for s in pipeline.STAGES.values():
        words = pipeline.command(s, "python", lambda kind, flag, p, s=s: choice[flag] if kind == "choice"
                                 else p.format(**choice)).split()[2:]
        args = stage_parser(s.name, "").parse_args(words)
        assert args.stage == s.name and args.dataset == "mnist"
        inputs, outputs = s.paths(choice)
        assert {f: getattr(args, f) for f in inputs} == inputs and {f: getattr(args, f) for f in outputs} == outputs
