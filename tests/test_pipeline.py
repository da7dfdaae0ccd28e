"""The stage table: dvc.yaml is what it generates, code dependencies are the import closures,
params are declared once and mapped to params.yaml's keys without a gap."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from npdraw.workflow import closure, generate, paths, resolve
from npdraw.workflow import stages as stage_table
from npdraw.workflow.params import load_params
from tests.conftest import REPO, venv_bin


@pytest.mark.parametrize("name", sorted(generate.GENERATED))
def test_committed_engine_files_are_the_ones_the_table_generates(name):
    assert (REPO / name).read_text() == generate.GENERATED[name](), \
        f"{name} differs from the stage table: regenerate it with `python -m npdraw.workflow.generate --write`"


def test_the_check_command_names_a_stale_file(tmp_path, monkeypatch):
    for name in generate.GENERATED:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(generate.GENERATED[name]())
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.setattr(generate, "REPO", tmp_path)
    with pytest.raises(SystemExit):
        generate.main(["--check"])
    generate.main(["--write"])
    generate.main(["--check"])   # now current
    assert (tmp_path / "dvc.yaml").read_text() == generate.dvc_yaml()


IMPORTED = """
import importlib.util, json, sys
found = {}
for job in sys.argv[1:]:
    script, _, system = job.partition(":")
    for name in [m for m in sys.modules if m == "npdraw" or m.startswith("npdraw.")]:
        del sys.modules[name]
    spec = importlib.util.spec_from_file_location("stage_under_test", script)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))   # defines run(); main() is not called
    if "npdraw.models.interface" in sys.modules:                     # as the stage loads its system's model
        sys.modules["npdraw.models.interface"].model_class(system)
    found[job] = sorted(m.__file__ for n, m in sys.modules.items() if n == "npdraw" or n.startswith("npdraw."))
print(json.dumps(found))
"""


def imported_by(jobs: list[str]) -> dict[str, set[str]]:
    """{'script:system': the project modules Python really imports when the stage CLI loads and loads
    that system's model}."""
    out = subprocess.run([sys.executable, "-c", IMPORTED, *jobs], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    return {job: {str(Path(f).relative_to(REPO)) for f in files} for job, files in json.loads(out.stdout).items()}


@pytest.mark.slow
def test_code_closure_covers_every_module_a_stage_imports():
    """What Python really imports when a stage CLI loads, and loads the model of a system it runs for,
    is inside its computed closure for that system (which also holds what functions import lazily), but
    for the modules that only define the workflow; the closure holds nothing outside the project's
    package but the system's registry entry."""
    jobs = [f"{s.script}:{system}" for s in stage_table.STAGES.values() for system in s.systems]
    jobs += ["stages/make_tables.py:npdraw", "stages/lowdata_curve.py:npdraw"]
    for job, imported in imported_by(jobs).items():
        script, _, system = job.partition(":")
        deps = set(closure.code_closure(script, (system,)))
        missing = imported - deps - closure.DEFINITION
        assert not missing, f"{job}: imported but not in its closure: {sorted(missing)}"
        entry = closure.ENTRY.format(name=system)     # the system's registry entry: data, not code
        assert all(p.startswith("npdraw/") for p in deps - {entry}) and not deps & closure.DEFINITION
    # The module that binarizes the test images every evaluation scores (fixed_targets) is a dependency
    # of both stages that read them: changing it reruns them.
    for name in ("evaluate", "reference_stats"):
        assert "npdraw/data/binarize.py" in closure.code_closure(stage_table.stage(name).script)


def test_code_dependencies_are_tight():
    """The stage table and the generators are no stage's code dependency (editing a help string reruns
    nothing); drawing code is a dependency of the stages that draw and of no other; a baseline's run
    depends on its own model module, not on NP-DRAW's or another baseline's."""
    scripts = {name: s.script for name, s in stage_table.STAGES.items()}
    for name, script in scripts.items():
        deps = closure.code_closure(script)
        assert not set(deps) & {"npdraw/workflow/stages.py", "npdraw/workflow/generate.py",
                                "npdraw/workflow/paths.py"}, name
    drawing = "npdraw/parts/canvas.py"
    draws = {name for name, s in stage_table.STAGES.items()
             if drawing in closure.code_closure(s.script, (s.systems[0],))}   # NP-DRAW's, or a baseline's
    assert draws == {"build_bank", "parse", "train_prior", "train_model", "edit_latents", "evaluate", "metric_card"}
    vae = set(closure.code_closure("stages/evaluate.py", ("vae",)))
    assert "npdraw/models/vae.py" in vae and not vae & {"npdraw/models/npdraw.py", "npdraw/models/draw.py", drawing}
    assert "npdraw/models/draw.py" in closure.code_closure("stages/train_baseline.py", ("draw",))


def test_every_declared_key_resolves_and_maps_to_params_yaml(params):
    """Each stage's declared params resolve for every dataset, and every params.yaml key whose change
    changes a resolved value is one dvc.yaml lists for that stage (no change goes unseen by DVC)."""
    for s in stage_table.STAGES.values():
        variant = "base" if "npdraw" in s.systems else s.systems[-1]   # a variant of the stage's systems
        for dataset in params["datasets"] if "npdraw" in s.systems else ("mnist", "binarized_mnist", "omniglot"):
            cfg = s.config(params, dataset=dataset, profile="smoke", variant=variant)
            assert set(stage_table.params_block(cfg, s)) == set(s.params)
        listed = generate.dvc_params(s)
        base = stage_table.params_block(s.config(params, dataset="mnist", profile="smoke", variant=variant), s)
        for key, edit in EDITS.items():
            changed = copy.deepcopy(params)
            choice = {"variant": variant, **edit(changed)}
            if choice["variant"] != variant and "npdraw" not in s.systems:
                continue   # an NP-DRAW variant: not one of this stage's runs
            after = stage_table.params_block(s.config(changed, **{"dataset": "mnist", "profile": "smoke", **choice}), s)
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
    moved = {name for name, s in stage_table.STAGES.items() if
             stage_table.params_block(s.config(params, dataset="mnist"), s)
             != stage_table.params_block(s.config(changed, dataset="mnist"), s)}
    assert moved == {"train_model", "edit_latents", "evaluate"}
    dvc = {name for name, s in stage_table.STAGES.items() if "method.${dataset}" in generate.dvc_params(s)}
    assert dvc == moved


def test_scoped_stages_ignore_the_choices_they_are_not_named_by(params):
    """The splits do not depend on the variant, nor the reference statistics on the split and seed."""
    splits, classifier = stage_table.stage("make_splits"), stage_table.stage("reference_stats")
    assert splits.config(params, variant="K6").variant == "base"
    ref = classifier.config(params, split="sample-0.1", seed=3, variant="K6")
    assert (ref.split, ref.seed, ref.variant) == ("full", 0, "base")
    assert "variant" not in generate.dvc_params(splits) and "variant" in generate.dvc_params(stage_table.stage("parse"))


@pytest.mark.slow
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
    extra = stage_table.Stage("score_parts", "variant", inputs={"bank": paths.VARIANT_DIR + "/bank.npy"},
                           outputs={"out": stage_table.Output(paths.VARIANT_DIR + "/parts.json", "metrics")},
                           params=("method.bank_size",))
    choice = {"dataset": "omniglot", "profile": "smoke", "split": "character-0.1", "seed": 2, "variant": "K6"}
    assert extra.paths(choice) == ({"bank": "results/omniglot/smoke/character-0.1/seed2/K6/bank.npy"},
                                   {"out": "results/omniglot/smoke/character-0.1/seed2/K6/parts.json"})
    cmd = generate.command(extra, "python", lambda kind, flag, p: p or flag)
    assert cmd.startswith("python stages/score_parts.py --params params.yaml --dataset dataset")
    assert generate.dvc_params(extra) == ["variant", "method.${dataset}.bank_size"]
    assert extra.log() == paths.VARIANT_DIR + "/logs/score_parts.log"
    monkeypatch.setitem(stage_table.STAGES, "score_parts", extra)
    monkeypatch.setattr(generate, "code_deps", lambda script, systems=None: [script])   # its CLI is not written
    assert "rule score_parts:" in generate.snakemake_rules() and "\n  score_parts:\n" in generate.dvc_yaml()


@pytest.mark.parametrize("key", ["nonsense", "ds.patch_size"])
def test_an_undeclarable_key_is_refused(key):
    with pytest.raises(KeyError, match=key):
        resolve.params_yaml_keys(key)


def test_every_engine_command_parses_with_its_stage_cli():
    """The command both engines run is what the stage's own parser accepts: its flags come from the
    same entry (npdraw.workflow.cli.stage_parser), so a stage and its rule cannot disagree."""
    from npdraw.workflow.cli import stage_parser

    choice = {"dataset": "mnist", "profile": "smoke", "split": "full", "seed": "0", "variant": "base"}
    for s in stage_table.STAGES.values():
        words = generate.command(s, "python", lambda kind, flag, p, s=s: choice[flag] if kind == "choice"
                                 else p.format(**choice)).split()[2:]
        args = stage_parser(s.name, "").parse_args(words)
        assert args.stage == s.name and args.dataset == "mnist"
        inputs, outputs = s.paths(choice)
        assert {f: getattr(args, f) for f in inputs} == inputs and {f: getattr(args, f) for f in outputs} == outputs


def test_a_label_or_paper_number_in_the_registry_reruns_nothing_and_an_entry_reruns_its_system_alone(monkeypatch):
    """The registry (npdraw/workflow/systems.py) is no stage's code dependency; a stage that loads a system's
    model depends on that system's entry file (workflow/systems/<name>.json), which holds what changes numbers
    (the model class, the random stream, the params section, the data it takes), not labels or the papers'
    numbers: editing those changes no entry, editing a system's class changes its entry alone."""
    import dataclasses

    from npdraw.workflow.systems import SYSTEMS

    for s in stage_table.STAGES.values():
        for name in s.systems:
            assert "npdraw/workflow/systems.py" not in closure.code_deps(s.script, (name,)), s.name
    for name in ("prepare_data", "make_splits", "build_bank", "parse"):
        assert not [d for d in closure.code_deps(stage_table.stage(name).script) if "systems" in d], name
    before = {name: closure.entry(name) for name in SYSTEMS}
    relabelled = {n: dataclasses.replace(s, label=s.label + "!", describe="x", paper={"mnist": {"nll": "1"}},
                                         autoregressive=not s.autoregressive) for n, s in SYSTEMS.items()}
    monkeypatch.setattr(closure, "SYSTEMS", relabelled)
    assert {name: closure.entry(name) for name in SYSTEMS} == before
    moved = dict(relabelled, vae=dataclasses.replace(SYSTEMS["vae"], model="npdraw.models.vae:OtherVAE"))
    monkeypatch.setattr(closure, "SYSTEMS", moved)
    assert [n for n in SYSTEMS if closure.entry(n) != before[n]] == ["vae"]
    vae = closure.code_deps("stages/train_baseline.py", ("vae",))
    assert "workflow/systems/vae.json" in vae and "workflow/systems/draw.json" not in vae


def test_every_module_that_loads_a_model_by_registry_name_is_found():
    """A loader imports a model module no import statement names: the closure finds every module that defines or
    calls the registry's loader; any other dynamic import in the package would be missed, so there is none."""
    import ast

    assert closure.loaders() >= {"npdraw/models/interface.py", "npdraw/models/checkpoints.py"}
    dynamic = set()
    for path in (REPO / "npdraw").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("import_module", "__import__"):
                dynamic.add(path.relative_to(REPO).as_posix())
    assert dynamic <= {"npdraw/models/interface.py"}, dynamic
