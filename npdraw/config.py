"""params.yaml: loading, validation against the one schema, and resolution.

`resolve()` turns the file plus a choice of (dataset, profile, split, seed,
variant) into the configuration one run uses: paper-scale sections, overridden
by the profile's sizes, with the dataset's settings under `ds` and the
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

import jsonschema
import yaml

SECTIONS = ("data", "bank", "parse", "prior", "model", "pixelvae", "evaluate", "classifier", "lowdata")  # sections a profile may override
SPLIT_KINDS = ("full", "digit", "sample", "character", "alphabet")
# Which dataset sources carry the labels a low-data split selects on.
SPLIT_SOURCES = {
    "digit": {"mnist_idx"},
    "character": {"omniglot"},
    "alphabet": {"omniglot"},
}
VARIANT_KEYS = {"K": ("patch_size", int), "M": ("bank_size", int), "lam": ("lambda_reg", float)}


class ParamsError(ValueError):
    """params.yaml (or a choice made on the command line) is not usable."""


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


def schema() -> dict:
    text = resources.files("npdraw").joinpath("params.schema.yaml").read_text()
    return yaml.safe_load(text)


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
    validator = jsonschema.Draft202012Validator(schema())
    problems = []
    for err in sorted(validator.iter_errors(params), key=lambda e: list(map(str, e.absolute_path))):
        key = _key(err.absolute_path)
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
    for field, table in (("dataset", "datasets"), ("profile", "profiles")):
        value = params.get(field)
        if isinstance(value, str) and isinstance(params.get(table), dict) and value not in params[table]:
            problems.append(f"key '{field}' = {value!r}: expected one of {sorted(params[table])}")
    runs = params.get("tables", {}).get("runs") if isinstance(params.get("tables"), dict) else None
    for i, entry in enumerate(runs if isinstance(runs, list) else []):
        dataset = str(entry).split("/")[0]
        if isinstance(params.get("datasets"), dict) and dataset not in params["datasets"]:
            problems.append(f"key 'tables.runs.{i}' = {entry!r}: dataset {dataset!r} is not one of "
                            f"{sorted(params['datasets'])}")
    if problems:
        raise ParamsError(f"{source}: invalid parameters:\n  - " + "\n  - ".join(problems))


def parse_split(name: str) -> tuple[str, float]:
    """'full' -> ('full', 1.0); 'digit-0.3' -> ('digit', 0.3)."""
    if name == "full":
        return "full", 1.0
    kind, _, frac = name.partition("-")
    try:
        fraction = float(frac)
    except ValueError:
        fraction = math.nan
    if kind not in SPLIT_KINDS[1:] or not 0.0 < fraction <= 1.0:
        raise ParamsError(
            f"split {name!r}: expected 'full' or KIND-F with KIND in "
            f"{', '.join(SPLIT_KINDS[1:])} and 0 < F <= 1 (e.g. digit-0.3, sample-0.01)"
        )
    return kind, fraction


def parse_variant(name: str) -> dict[str, Any]:
    """'K6-M10-lam1' -> {'patch_size': 6, 'bank_size': 10, 'lambda_reg': 1.0}: dataset settings;
    'pcnn' -> {'decoder': 'pixelcnn'} (a model setting); 'pixelvae' -> {'system': 'pixelvae'}."""
    if name == "base":
        return {}
    if name == "pixelvae":
        return {"system": "pixelvae"}
    overrides = {}
    for token in name.split("-"):
        if token == "pcnn":
            overrides["decoder"] = "pixelcnn"
            continue
        m = re.fullmatch(r"(K|M|lam)([0-9.]+)", token)
        if not m:
            raise ParamsError(f"variant {name!r}: token {token!r} is not K<int>, M<int>, lam<float> or pcnn "
                              "(or the whole variant `pixelvae`)")
        field, kind = VARIANT_KEYS[m.group(1)]
        try:
            overrides[field] = kind(m.group(2))
        except ValueError:
            raise ParamsError(f"variant {name!r}: {token!r} needs a {kind.__name__} after {m.group(1)}") from None
    return overrides


def grid_geometry(side: int, patch: int) -> dict[str, int]:
    """Grid of KxK cells over a side-S canvas, zero padding split evenly (SPEC 3)."""
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
        "seed": params["seed"] if seed is None else int(seed),
        "variant": params["variant"] if variant is None else variant,
    }
    if choice["dataset"] not in params["datasets"]:
        raise ParamsError(f"dataset {choice['dataset']!r}: expected one of {sorted(params['datasets'])}")
    if choice["profile"] not in params["profiles"]:
        raise ParamsError(f"profile {choice['profile']!r}: expected one of {sorted(params['profiles'])}")
    cfg = dict(choice)
    for section in SECTIONS:
        merged = copy.deepcopy(params[section])
        merged.update(params["profiles"][choice["profile"]].get(section, {}))
        cfg[section] = merged
    cfg["compute"] = copy.deepcopy(params["compute"])
    ds = copy.deepcopy(params["datasets"][choice["dataset"]])
    overrides = parse_variant(choice["variant"])
    cfg["system"] = overrides.pop("system", "npdraw")   # npdraw, or the pixelvae baseline
    if "decoder" in overrides:
        cfg["model"]["decoder"] = overrides.pop("decoder")
    ds.update(overrides)
    cfg["ds"] = ds
    cfg["split_kind"], cfg["split_fraction"] = parse_split(choice["split"])
    cfg["grid"] = grid_geometry(ds["canvas_size"], ds["patch_size"])
    _check_consistency(cfg)
    return Cfg.wrap(cfg)


def _check_consistency(cfg: dict) -> None:
    """Checks that span several keys (the schema checks one key at a time)."""
    ds, name = cfg["ds"], cfg["dataset"]
    where = f"datasets.{name}"
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
            f"{where}.bank_size = {ds['bank_size']}: expected at most bank.n_patches = "
            f"{cfg['bank']['n_patches']} (profile {cfg['profile']!r}), the number of patches clustered"
        )
    if cfg["bank"]["init"] == "k-medoids++" and cfg["bank"]["method"] == "fasterpam":
        raise ParamsError("bank.init = 'k-medoids++': only with bank.method alternate or pam; fasterpam takes random or build")
    if cfg["prior"]["width"] % cfg["prior"]["heads"]:
        raise ParamsError(f"prior.width = {cfg['prior']['width']}: expected a multiple of prior.heads = "
                          f"{cfg['prior']['heads']}")
    binary_gray = ds["output"] == "bernoulli" and ds["channels"] == 1
    if cfg["model"]["decoder"] == "pixelcnn" and not binary_gray:
        raise ParamsError(f"model.decoder = 'pixelcnn' (variant {cfg['variant']!r}): binary single-channel data "
                          f"only (output bernoulli, channels 1); dataset {name!r} has output {ds['output']}, "
                          f"channels {ds['channels']}")
    if cfg["system"] == "pixelvae" and not (binary_gray and ds["image_size"] == 28):
        raise ParamsError(f"variant 'pixelvae': the MNIST architecture of SPEC 12 needs 28x28 binary images; "
                          f"dataset {name!r} has {ds['channels']}x{ds['image_size']}x{ds['image_size']}, "
                          f"output {ds['output']}")
    kind, frac = cfg["split_kind"], cfg["split_fraction"]
    if kind in SPLIT_SOURCES and ds["source"] not in SPLIT_SOURCES[kind]:
        raise ParamsError(
            f"split {cfg['split']!r}: this {kind} split needs {kind} labels; dataset {name!r} "
            f"(source {ds['source']}) has none. Use sample-F or full."
        )
    if kind == "digit" and abs(frac * 10 - round(frac * 10)) > 1e-9:
        raise ParamsError(f"split {cfg['split']!r}: digit fractions are multiples of 0.1 (digits 0..10F-1)")
