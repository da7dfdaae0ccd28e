import copy

import pytest
import yaml

from npdraw.artifacts.errors import ParamsError
from npdraw.workflow.params import load_params, validate_params
from npdraw.workflow.resolve import parse_split, parse_variant, resolve
from tests.conftest import REPO


def edited(params, path, value):
    p = copy.deepcopy(params)
    *parents, last = path.split(".")
    node = p
    for key in parents:
        node = node[key]
    node[last] = value
    return p


def test_repository_params_are_valid(params):
    validate_params(params)
    for dataset in params["datasets"]:
        for profile in params["profiles"]:
            resolve(params, dataset=dataset, profile=profile)


@pytest.mark.parametrize("path, value, expected", [
    ("bank.n_clusters", 3, "unknown key 'bank.n_clusters'"),
    ("colour", "red", "unknown key 'colour'"),
    ("bank.n_patches", "many", "key 'bank.n_patches' = 'many'"),
    ("bank.n_patches", -5, "less than the minimum"),
    ("method.mnist.lambda_reg", -1.0, "key 'method.mnist.lambda_reg' = -1.0"),
    ("method.mnist.patch_size", 0, "key 'method.mnist.patch_size' = 0"),
    ("bank.method", "kmeans", "'kmeans' is not one of"),
    ("profiles.smoke.bank.speed", 1, "unknown key 'profiles.smoke.bank.speed'"),
    ("dataset", "imagenet", "key 'dataset' = 'imagenet': expected one of"),
    ("split", "digits-0.5", "key 'split' = 'digits-0.5'"),
    ("variant", "K5_M10", "key 'variant' = 'K5_M10'"),
])
def test_schema_errors_name_the_key(params, path, value, expected):
    with pytest.raises(ParamsError) as err:
        validate_params(edited(params, path, value), "params.yaml")
    assert expected in str(err.value)
    assert str(err.value).startswith("params.yaml: invalid parameters")


def test_every_problem_is_reported_at_once(params):
    p = edited(edited(params, "bank.n_patches", 0), "parse.epsilon", "small")
    message = str(pytest.raises(ParamsError, validate_params, p).value)
    assert "bank.n_patches" in message and "parse.epsilon" in message


def test_load_params_names_the_file(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: [unclosed\n")
    with pytest.raises(ParamsError, match="bad.yaml: not valid YAML"):
        load_params(bad)


def test_profiles_change_sizes_only(params):
    smoke, paper = resolve(params, profile="smoke"), resolve(params, profile="paper")
    assert smoke.ds == paper.ds and smoke.parse == paper.parse
    assert smoke.bank.method == paper.bank.method
    assert smoke.bank.n_patches < paper.bank.n_patches
    assert smoke.data.max_train_images == 1000 and paper.data.max_train_images is None


def test_variants_and_splits():
    assert parse_variant("base") == {}
    assert parse_variant("K6-M10-lam0.5") == {"patch_size": 6, "bank_size": 10, "lambda_reg": 0.5}
    assert parse_split("full") == ("full", 1.0)
    assert parse_split("alphabet-0.03") == ("alphabet", 0.03)
    for bad in ("digit-0", "sample-1.5", "half-0.5", "sample-x"):
        with pytest.raises(ParamsError):
            parse_split(bad)
    with pytest.raises(ParamsError, match="token"):
        parse_variant("K6-Z3")


def test_variant_is_applied(params):
    cfg = resolve(params, dataset="omniglot", variant="K8-M200")
    assert (cfg.ds.patch_size, cfg.ds.bank_size) == (8, 200)   # a grid of 4 x 4 cells of 8 on 28 pixels


@pytest.mark.parametrize("kwargs, expected", [
    (dict(dataset="omniglot", variant="K40"), "expected at most canvas_size = 28"),
    (dict(dataset="mnist", variant="M5000", profile="smoke"), "expected at most bank.n_patches = 2000"),
    (dict(dataset="omniglot", split="digit-0.3"), "this digit split needs digit labels"),
    (dict(dataset="mnist", split="alphabet-0.1"), "this alphabet split needs alphabet labels"),
    (dict(dataset="mnist", split="digit-0.25"), "multiples of 0.1"),
    (dict(dataset="mnist", profile="huge"), "profile 'huge'"),
])
def test_impossible_combinations_are_refused(params, kwargs, expected):
    with pytest.raises(ParamsError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        resolve(params, **kwargs)


def test_every_params_key_is_commented():
    """params.yaml documents each key (meaning / unit) on its line or in a comment block above."""
    lines = (REPO / "params.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or ":" not in stripped:
            continue
        key, _, value = stripped.partition(":")
        if "#" in line or lines[i - 1].strip().startswith("#") or value.strip() == "" or "{" in value:
            continue
        if stripped.startswith("- {"):   # an item of a list documented at its key
            continue
        # Rows of a per-dataset table may rely on the first dataset's comments.
        first = yaml.safe_load((REPO / "params.yaml").read_text())
        assert key in {**first["datasets"]["mnist"], **first["method"]["mnist"]}, \
            f"params.yaml line {i + 1}: key {key!r} has no comment"


def test_every_random_stream_has_its_own_salt():
    """The stages' streams (npdraw.compute.seeds.SALTS) and every system's training stream (its registry
    entry's salt) are distinct: a new baseline with a salt already taken fails here."""
    from npdraw.compute.seeds import SALTS
    from npdraw.workflow.systems import SYSTEMS

    salts = [*SALTS.values(), *(s.salt for s in SYSTEMS.values())]
    assert len(salts) == len(set(salts)), sorted(salts)



def test_no_absolute_machine_paths_in_the_repository():
    """Nothing tracked names a folder of one machine (a home, a work tree, a test's scratch folder): an
    example path in a docstring or a record would be wrong on every other machine."""
    import re
    import subprocess

    from tests.conftest import REPO

    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    machine = re.compile(r"(?<![\w.])/(?:work|root|home|Users)/|/tmp/" + "pytest-")   # split: not itself a match
    found = []
    for name in files:
        path = REPO / name
        if path.suffix in (".pt", ".png", ".npz", ".npy", ".gz") or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        found += [f"{name}: {m.group(0)}" for m in machine.finditer(text)]
    assert not found, found[:10]
