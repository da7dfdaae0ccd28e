"""params.yaml: loading, validation against the one schema, and resolution.

`resolve()` turns the file plus a choice of (dataset, profile, split, seed,
variant) into the configuration one run uses: paper-scale sections, overridden
by the profile's sizes, with the dataset's facts (`datasets.<name>`) and
NP-DRAW's settings for it (`method.<name>`) together under `ds`, and the
ablation variant applied.  Every error names the file, the key, the value and
what was expected, and is raised before any expensive work starts.
"""

from __future__ import annotations

import copy
import math
import re
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from npdraw.runtime.contracts import non_finite
from npdraw.runtime.errors import ParamsError
from npdraw.runtime.systems import BASELINES, SYSTEMS, sections

# The sections a profile may override: the pipeline's, then each baseline's (npdraw.runtime.systems).
SECTIONS = ("data", "bank", "parse", "prior", "model", "training", "evaluate", "classifier", "lowdata",
            *sections())
SPLIT_KINDS = ("full", "digit", "sample", "character", "alphabet")
CHOICE_KEYS = ("dataset", "profile", "split", "seed", "variant")   # a run's choices, top-level keys of params
# Which dataset sources carry the labels a low-data split selects on.
SPLIT_SOURCES = {
    "digit": {"mnist_idx"},
    "character": {"omniglot"},
    "alphabet": {"omniglot"},
}
# Which dataset sources carry the labels the domain FID classifier learns (datasets.<name>.labels).
LABEL_SOURCES = {"labels": {"mnist_idx", "cifar10_python"}, "alphabets": {"omniglot"}}
VARIANT_KEYS = {"K": ("patch_size", int), "M": ("bank_size", int), "lam": ("lambda_reg", float)}
# Variant tokens that set a model setting: token -> (key of the `model` section, value).
MODEL_TOKENS = {"pcnn": ("decoder", "pixelcnn"), "warm": ("warmup", True)}
# Variant tokens that set the prior's sizes: token -> settings of the `prior` section.  `vit`: the
# authors' ViT (vit-pytorch's defaults as their code uses them: 16 heads of 64, MLP 2048 = 32 x the
# width 64, learned position embedding; their CLS token has no counterpart in this causal prior, where
# output t reads tokens 1..t and token 1, the empty canvas, is the start).
PRIOR_TOKENS = {"vit": {"heads": 16, "head_dim": 64, "mlp_ratio": 32, "position": "learned"},
                # The paper's "eight layer ViT, hidden size 64" read literally: 4 heads of 16, MLP 256.
                "slim": {"heads": 4, "head_dim": None, "mlp_ratio": 4, "position": "sinusoidal"}}
# The variant grammar as a regular expression (Snakemake's wildcard); parse_variant reads the same tables
# and says what is wrong with a name that does not match.
VARIANT_TOKEN = "|".join([*(f"{letter}[0-9.]+" for letter in VARIANT_KEYS), *MODEL_TOKENS, *PRIOR_TOKENS])
VARIANT_PATTERN = rf"base|{'|'.join(BASELINES)}|({VARIANT_TOKEN})(-({VARIANT_TOKEN}))*"


class Cfg(dict):
    """A dict whose keys also read as attributes: ``cfg.bank.n_patches``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @classmethod
    def wrap(cls, obj: Any) -> Any:
        if isinstance(obj, dict):
            return cls({k: cls.wrap(v) for k, v in obj.items()})
        return obj


# The compute settings that can change the numbers a run produces (compute.gpus does not: data-parallel
# training reproduces the one-process run, tests/test_scaleout.py): training resumes and metrics'
# provenance record them, and the engines rerun a training or evaluation stage when they change.
NUMERIC_KEYS = ("precision", "channels_last", "compile")


def numerics(compute) -> dict:
    """The run's numeric settings, from its `compute` section."""
    return {k: compute[k] for k in NUMERIC_KEYS}


def schema() -> dict:
    """The params schema: params.schema.yaml, with each baseline's section from its registry entry."""
    text = resources.files("npdraw.runtime").joinpath("params.schema.yaml").read_text()
    out = yaml.safe_load(text)
    for name, entry in sections().items():
        out["$defs"][name] = {"type": "object", "additionalProperties": False, "properties": entry.schema}
        out["properties"][name] = {"allOf": [{"$ref": f"#/$defs/{name}"}, {"required": list(entry.schema)}]}
        out["required"].append(name)
        out["$defs"]["profile"]["properties"][name] = {"$ref": f"#/$defs/{name}"}
    return out


def table_keys(table: str) -> tuple[str, ...]:
    """The keys of one entry of the `datasets` or `method` table (`table` 'dataset' or 'method'),
    as the schema lists them."""
    return tuple(schema()["$defs"][table]["properties"])


def load_params(path: str | Path) -> dict:
    """Read and validate params.yaml; raise ParamsError naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: parameters file not found (expected a params.yaml like the repository's)")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from None
    validate_params(params, source=str(path))
    return params


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def validate_params(params: Any, source: str = "params.yaml") -> None:
    """Check params against the schema; collect every violation in one message."""
    if not isinstance(params, dict):
        raise ParamsError(f"{source}: expected a mapping of keys at the top level, got {type(params).__name__}")
    import jsonschema  # here, not at the top: resolve() and the GPU check run where it is not installed

    validator = jsonschema.Draft202012Validator(schema())
    # The run choices get the words every front door uses for them (check_choices), not the schema's.
    tables_ok = all(isinstance(params.get(t), dict) for t in ("datasets", "profiles"))
    choice_problems = {k: _choice_problem(params, k, params[k]) for k in CHOICE_KEYS if k in params and tables_ok}
    problems = [f"key '{k}' = {params[k]!r}: {problem}" for k, problem in choice_problems.items() if problem]
    for err in sorted(validator.iter_errors(params), key=lambda e: list(map(str, e.absolute_path))):
        key = _key(err.absolute_path)
        if len(err.absolute_path) == 1 and choice_problems.get(key):
            continue   # said above
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = sorted(err.schema.get("properties", {}))
            extra = sorted(set(err.instance) - set(allowed))
            for name in extra:
                where = f"{key}.{name}" if err.absolute_path else name
                problems.append(f"unknown key '{where}' (allowed here: {', '.join(allowed)})")
        elif err.validator == "required":
            problems.append(f"key '{key}': {err.message}")
        else:
            problems.append(f"key '{key}' = {err.instance!r}: {err.message}")
    problems += [f"key '{key}' = {value}: expected a finite number" for key, value in non_finite(params)]
    if not problems:   # the checks below read keys the schema has vouched for
        problems += _cross_key_problems(params)
    if problems:
        raise ParamsError(f"{source}: invalid parameters:\n  - " + "\n  - ".join(problems))


def _cross_key_problems(params: dict) -> list[str]:
    """Combinations of keys that cannot work, found before any job starts (the schema checks one key
    at a time): the run the choices make; each dataset's output, binarization and labels against its source;
    every run of `tables.runs` and every point of the low-data grid buildable for its dataset."""
    problems = []
    choice = {k: params[k] for k in CHOICE_KEYS}
    data_names, method_names = set(params["datasets"]), set(params["method"])
    for name in sorted(data_names ^ method_names):
        has, lacks = ("datasets", "method") if name in data_names else ("method", "datasets")
        problems.append(f"key '{has}.{name}': dataset {name!r} has no entry under '{lacks}' (every dataset needs "
                        f"both: its data facts under datasets, NP-DRAW's settings for it under method)")
    if data_names != method_names:
        return problems
    for name, data in params["datasets"].items():
        ds = {**data, **params["method"][name]}
        if ds["binarize"] != "none" and ds["output"] != "bernoulli":
            problems.append(f"key 'datasets.{name}.binarize' = {ds['binarize']!r}: binarized targets need "
                            f"output 'bernoulli', not {ds['output']!r}")
        if ds["validation"] == "spread" and ds["labels"] == "none":
            problems.append(f"key 'datasets.{name}.validation' = 'spread': draws the validation images across the "
                            f"label groups, and labels is 'none' (expected 'tail', or labels to spread over)")
        if ds["labels"] != "none" and ds["source"] not in LABEL_SOURCES[ds["labels"]]:
            problems.append(f"key 'datasets.{name}.labels' = {ds['labels']!r}: source {ds['source']!r} has no "
                            f"such labels (expected one of {sorted(LABEL_SOURCES[ds['labels']])}, or 'none')")
    try:   # each choice alone was checked by validate_params; here, the run they make together
        resolve(params, **choice)
    except ParamsError as err:
        problems.append(str(err))
    for key, runs in params["tables"].items():
        for i, entry in enumerate(runs):
            dataset, variant = entry.split("/")
            if dataset not in params["datasets"]:
                problems.append(f"key 'tables.{key}.{i}' = {entry!r}: dataset {dataset!r} is not one of "
                                f"{sorted(params['datasets'])}")
                continue
            try:   # the variant must be buildable for the dataset (the table's split is chosen when it is built)
                resolve(params, dataset=dataset, variant=variant, split="full")
            except ParamsError as err:
                problems.append(f"key 'tables.{key}.{i}' = {entry!r}: {err}")
    low = params["lowdata"]
    for i, curve in enumerate(low["curves"]):
        if curve["dataset"] not in params["datasets"]:
            problems.append(f"key 'lowdata.curves.{i}.dataset' = {curve['dataset']!r}: expected one of "
                            f"{sorted(params['datasets'])}")
            continue
        for fraction in curve["proportions"]:
            try:
                for variant in low["variants"]:
                    resolve(params, dataset=curve["dataset"], split=f"{curve['kind']}-{fraction}",
                            variant=variant, seed=low["seeds"][0])
            except ParamsError as err:
                problems.append(f"key 'lowdata.curves.{i}' ({curve['dataset']}, {curve['kind']}, proportion "
                                f"{fraction}): {err}")
                break
    return problems


def parse_split(name: str) -> tuple[str, float]:
    """'full' -> ('full', 1.0); 'digit-0.3' -> ('digit', 0.3).  F is a plain decimal in (0, 1]."""
    if name == "full":
        return "full", 1.0
    kind, _, frac = str(name).partition("-")
    fraction = float(frac) if re.fullmatch(r"[0-9]*\.?[0-9]+", frac) else math.nan
    if kind not in SPLIT_KINDS[1:] or not 0.0 < fraction <= 1.0:
        raise ParamsError(
            f"split {name!r}: expected 'full' or KIND-F with KIND in "
            f"{', '.join(SPLIT_KINDS[1:])} and F a decimal number, 0 < F <= 1 (e.g. digit-0.3, sample-0.01)"
        )
    if kind == "digit" and abs(fraction * 10 - round(fraction * 10)) > 1e-9:
        raise ParamsError(f"split {name!r}: digit fractions are multiples of 0.1 (digits 0..10F-1)")
    return kind, fraction


def parse_variant(name: str) -> dict[str, Any]:
    """'K6-M10-lam1' -> {'patch_size': 6, 'bank_size': 10, 'lambda_reg': 1.0}: dataset settings;
    'pcnn' -> {'decoder': 'pixelcnn'} and 'warm' -> {'warmup': True} (model settings); 'vit' ->
    {'prior': {...}} (the prior's sizes, PRIOR_TOKENS); a baseline's name (npdraw.runtime.systems), e.g.
    'vae' -> {'system': 'vae'}.  K and M are whole numbers >= 1, lambda a finite decimal >= 0, each token at
    most once."""
    name = str(name)
    if name == "base":
        return {}
    if name in BASELINES:
        return {"system": name}
    overrides: dict[str, Any] = {}
    for token in name.split("-"):
        m = re.fullmatch(rf"({'|'.join(VARIANT_KEYS)})([0-9.]+)", token)
        field = (MODEL_TOKENS[token][0] if token in MODEL_TOKENS else "prior" if token in PRIOR_TOKENS
                 else VARIANT_KEYS[m.group(1)][0] if m else None)
        if field is None:
            raise ParamsError(f"variant {name!r}: token {token!r} is not K<int>, M<int>, lam<float>, pcnn, warm, "
                              f"vit or slim, joined by '-' (or the whole variant `base`, or a baseline: "
                              f"{', '.join(BASELINES)})")
        if field in overrides:
            raise ParamsError(f"variant {name!r}: {token!r} sets {field} a second time; give each of K, M, lam, "
                              "pcnn, warm, vit at most once")
        if token in MODEL_TOKENS:
            overrides[field] = MODEL_TOKENS[token][1]
            continue
        if token in PRIOR_TOKENS:
            overrides[field] = dict(PRIOR_TOKENS[token])
            continue
        letter, digits = m.groups()
        kind = VARIANT_KEYS[letter][1]
        try:
            value = kind(digits)
        except ValueError:
            raise ParamsError(f"variant {name!r}: {token!r} needs a {'whole number' if kind is int else 'decimal'} "
                              f"after {letter}") from None
        if kind is int and value < 1:
            raise ParamsError(f"variant {name!r}: {token!r}: {letter} must be at least 1")
        overrides[field] = value
    return overrides


# Seeds feed numpy's SeedSequence and torch.Generator.manual_seed (which takes at most 64 bits, and
# DDP adds the rank): 0 <= seed <= SEED_MAX everywhere a seed is accepted.
SEED_MAX = 2**31 - 1


def system_of(variant: str) -> str:
    """The system a variant trains (npdraw.runtime.systems): a baseline's name, or 'npdraw'."""
    return parse_variant(variant).get("system", "npdraw")


def check_choices(params: dict, choice: dict, as_keys: bool = False) -> None:
    """The run choices (dataset, profile, split, seed, variant) name something that exists and parse;
    one ParamsError naming the choice and what was expected (`as_keys`: worded as params.yaml's keys)."""
    for field, value in choice.items():
        problem = _choice_problem(params, field, value)
        if problem:
            raise ParamsError(f"key '{field}' = {value!r}: {problem}" if as_keys else f"{field} {value!r}: {problem}")


def _choice_problem(params: dict, field: str, value: Any) -> str | None:
    if field in ("dataset", "profile"):
        table = params[f"{field}s"]
        return None if value in table else f"expected one of {sorted(table)}"
    if field == "seed":
        ok = not isinstance(value, bool) and isinstance(value, int) and 0 <= value <= SEED_MAX
        return None if ok else f"expected a whole number from 0 to {SEED_MAX}"
    try:
        (parse_split if field == "split" else parse_variant)(value)
    except ParamsError as err:
        return str(err).removeprefix(f"{field} {value!r}: ")
    return None


def _whole(value: Any, name: str) -> int:
    """A run choice given as text (a wildcard, a --config value) as a whole number."""
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ParamsError(f"{name} {value!r}: expected a whole number from 0 to {SEED_MAX}") from None


def grid_geometry(side: int, patch: int) -> dict[str, int]:
    """Grid of KxK cells over a side-S canvas, zero padding split evenly (method §3)."""
    n = math.ceil(side / patch)
    pad_total = n * patch - side
    return {"n": n, "steps": n * n, "pad_before": pad_total // 2, "pad_after": pad_total - pad_total // 2}


def resolve(
    params: dict,
    dataset: str | None = None,
    profile: str | None = None,
    split: str | None = None,
    seed: int | None = None,
    variant: str | None = None,
) -> Cfg:
    """The configuration of one run; choices default to params' top-level keys."""
    choice = {
        "dataset": params["dataset"] if dataset is None else dataset,
        "profile": params["profile"] if profile is None else profile,
        "split": params["split"] if split is None else split,
        "seed": params["seed"] if seed is None else _whole(seed, "seed"),
        "variant": params["variant"] if variant is None else variant,
    }
    check_choices(params, choice)
    cfg = dict(choice)
    for section in SECTIONS:
        merged = copy.deepcopy(params[section])
        merged.update(params["profiles"][choice["profile"]].get(section, {}))
        cfg[section] = merged
    cfg["compute"] = copy.deepcopy(params["compute"])
    ds = copy.deepcopy({**params["datasets"][choice["dataset"]], **params["method"][choice["dataset"]]})
    overrides = parse_variant(choice["variant"])
    cfg["system"] = overrides.pop("system", "npdraw")   # npdraw, or a baseline (npdraw.runtime.systems)
    for key, _ in MODEL_TOKENS.values():
        if key in overrides:
            cfg["model"][key] = overrides.pop(key)
    cfg["prior"].update(overrides.pop("prior", {}))
    ds.update(overrides)
    cfg["ds"] = ds
    cfg["split_kind"], cfg["split_fraction"] = parse_split(choice["split"])
    cfg["grid"] = grid_geometry(ds["canvas_size"], ds["patch_size"])
    _check_consistency(cfg)
    return Cfg.wrap(cfg)


def _check_consistency(cfg: dict) -> None:
    """Checks that span several keys (the schema checks one key at a time)."""
    ds, name = cfg["ds"], cfg["dataset"]
    where = f"method.{name}"
    if ds["canvas_size"] > ds["image_size"] or ds["image_size"] % ds["canvas_size"]:
        raise ParamsError(
            f"{where}.canvas_size = {ds['canvas_size']}: expected a divisor of image_size = {ds['image_size']}"
        )
    if ds["patch_size"] > ds["canvas_size"]:
        raise ParamsError(
            f"{where}.patch_size = {ds['patch_size']} (variant {cfg['variant']!r}): "
            f"expected at most canvas_size = {ds['canvas_size']}"
        )
    if ds["bank_size"] > cfg["bank"]["n_patches"]:
        raise ParamsError(
            f"{where}.bank_size = {ds['bank_size']} (variant {cfg['variant']!r}): expected at most bank.n_patches = "
            f"{cfg['bank']['n_patches']} (profile {cfg['profile']!r}), the number of patches clustered"
        )
    if cfg["bank"]["init"] == "k-medoids++" and cfg["bank"]["method"] == "fasterpam":
        raise ParamsError("bank.init = 'k-medoids++': only with bank.method alternate or pam; "
                          "fasterpam takes random or build")
    if cfg["prior"]["head_dim"] is None and cfg["prior"]["width"] % cfg["prior"]["heads"]:
        raise ParamsError(f"prior.width = {cfg['prior']['width']}: expected a multiple of prior.heads = "
                          f"{cfg['prior']['heads']} (or set prior.head_dim)")
    binary_gray = ds["output"] == "bernoulli" and ds["channels"] == 1
    if cfg["model"]["decoder"] == "pixelcnn" and not binary_gray:
        raise ParamsError(f"model.decoder = 'pixelcnn' (variant {cfg['variant']!r}): binary single-channel data "
                          f"only (output bernoulli, channels 1); dataset {name!r} has output {ds['output']}, "
                          f"channels {ds['channels']}")
    refusal = SYSTEMS[cfg["system"]].refusal(ds, name)
    if refusal:
        raise ParamsError(refusal)
    kind = cfg["split_kind"]
    if kind in SPLIT_SOURCES and ds["source"] not in SPLIT_SOURCES[kind]:
        raise ParamsError(
            f"split {cfg['split']!r}: this {kind} split needs {kind} labels; dataset {name!r} "
            f"(source {ds['source']}) has none. Use sample-F or full."
        )

