"""A run's configuration: params.yaml plus a choice of (dataset, profile, split, seed, variant), resolved.

`resolve()` turns the params into the configuration one run uses: paper-scale sections, overridden by
the profile's sizes, with the dataset's facts (`datasets.<name>`) and NP-DRAW's settings for it
(`method.<name>`) together under `ds`, and the ablation variant applied.  The same merge rules, read
backwards, say which params.yaml keys a resolved key is made of (`params_yaml_keys`: what DVC must
track) and how a declared key reads in a resolved configuration (`resolved_value`).  Every error names
the key, the value and what was expected, and is raised before any expensive work starts.
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

from npdraw.artifacts.bounds import SEED_MAX
from npdraw.artifacts.errors import ParamsError
from npdraw.workflow.schema import table_keys
from npdraw.workflow.systems import BASELINES, SYSTEMS, sections, system

# The sections a profile may override: the pipeline's, then each baseline's (npdraw.workflow.systems).
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
LABEL_SOURCES = {"labels": {"mnist_idx", "cifar10_python"}, "alphabets": {"omniglot"}, "characters": {"omniglot"}}
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
# `lr<decimal>`: the learning rate of the run's system (its section's `lr`; NP-DRAW: the encoder's), the one
# token a baseline takes (`vae-lr0.003`): the learning-rate grid every system is tuned on (method §14).
LR_TOKEN = "lr[0-9.]+"
VARIANT_TOKEN = "|".join([*(f"{letter}[0-9.]+" for letter in VARIANT_KEYS), LR_TOKEN, *MODEL_TOKENS, *PRIOR_TOKENS])
VARIANT_PATTERN = rf"base|({'|'.join(BASELINES)})(-{LR_TOKEN})?|({VARIANT_TOKEN})(-({VARIANT_TOKEN}))*"



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
    {'prior': {...}} (the prior's sizes, PRIOR_TOKENS); 'lr0.003' -> {'lr': 0.003} (the system's learning
    rate); a baseline's name (npdraw.workflow.systems), alone or with a learning rate, e.g. 'vae' ->
    {'system': 'vae'}, 'vae-lr0.003' -> {'system': 'vae', 'lr': 0.003}.  K and M are whole numbers >= 1,
    lambda a finite decimal >= 0, lr a decimal > 0, each token at most once."""
    name = str(name)
    if name == "base":
        return {}
    head, _, rest = name.partition("-")
    if head in BASELINES:
        if rest and not re.fullmatch(LR_TOKEN, rest):
            raise ParamsError(f"variant {name!r}: a baseline takes one token, lr<decimal> (e.g. {head}-lr0.003); "
                              f"found {rest!r}")
        return {"system": head, **({"lr": _learning_rate(name, rest)} if rest else {})}
    overrides: dict[str, Any] = {}
    for token in name.split("-"):
        m = re.fullmatch(rf"({'|'.join(VARIANT_KEYS)})([0-9.]+)", token)
        field = (MODEL_TOKENS[token][0] if token in MODEL_TOKENS else "prior" if token in PRIOR_TOKENS
                 else "lr" if re.fullmatch(LR_TOKEN, token) else VARIANT_KEYS[m.group(1)][0] if m else None)
        if field is None:
            raise ParamsError(f"variant {name!r}: token {token!r} is not K<int>, M<int>, lam<float>, lr<float>, pcnn, "
                              f"warm, vit or slim, joined by '-' (or the whole variant `base`, or a baseline: "
                              f"{', '.join(BASELINES)}, optionally with -lr<float>)")
        if field in overrides:
            raise ParamsError(f"variant {name!r}: {token!r} sets {field} a second time; give each of K, M, lam, lr, "
                              "pcnn, warm, vit at most once")
        if token in MODEL_TOKENS:
            overrides[field] = MODEL_TOKENS[token][1]
            continue
        if token in PRIOR_TOKENS:
            overrides[field] = dict(PRIOR_TOKENS[token])
            continue
        if field == "lr":
            overrides[field] = _learning_rate(name, token)
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


def _learning_rate(name: str, token: str) -> float:
    try:
        value = float(token[2:])
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ParamsError(f"variant {name!r}: {token!r} needs a decimal learning rate above 0 after lr (e.g. lr0.003)")
    return value


# Seeds feed numpy's SeedSequence and torch.Generator.manual_seed (which takes at most 64 bits, and
# DDP adds the rank): 0 <= seed <= SEED_MAX everywhere a seed is accepted (npdraw.artifacts.bounds).


def system_of(variant: str) -> str:
    """The system a variant trains (npdraw.workflow.systems): a baseline's name, or 'npdraw'."""
    return parse_variant(variant).get("system", "npdraw")


def check_choices(params: dict, choice: dict, as_keys: bool = False) -> None:
    """The run choices (dataset, profile, split, seed, variant) name something that exists and parse;
    one ParamsError naming the choice and what was expected (`as_keys`: worded as params.yaml's keys)."""
    for field, value in choice.items():
        problem = choice_problem(params, field, value)
        if problem:
            raise ParamsError(f"key '{field}' = {value!r}: {problem}" if as_keys else f"{field} {value!r}: {problem}")


def choice_problem(params: dict, field: str, value: Any) -> str | None:
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
    cfg["system"] = overrides.pop("system", "npdraw")   # npdraw, or a baseline (npdraw.workflow.systems)
    if "lr" in overrides:   # the system's learning rate (NP-DRAW: the encoder's; the decoder's follows by its scale)
        cfg[system(cfg["system"]).section]["lr"] = overrides.pop("lr")
    for key, _ in MODEL_TOKENS.values():
        if key in overrides:
            cfg["model"][key] = overrides.pop(key)
    cfg["prior"].update(overrides.pop("prior", {}))
    ds.update(overrides)
    cfg["ds"] = ds
    cfg["split_kind"], cfg["split_fraction"] = parse_split(choice["split"])
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



# --- the merge rules, read backwards ---------------------------------------------------------

# A declared key that stands for the params section of the run's system (npdraw.workflow.systems): a
# baseline's trainer reads its own section only, so that changing another's reruns nothing.
SYSTEM_SECTION = "system"


def params_yaml_keys(key: str, scope: str = "variant") -> list[str]:
    """The params.yaml keys (as dvc.yaml names them, ${...} for the run's choices) that the declared
    key `key` is made of (npdraw.workflow.resolve.resolve): `datasets` is the dataset's entry of the data table,
    `method` its entry of NP-DRAW's settings, a section key comes from the section and the profile's
    overrides, and the variant (for a stage of variant scope) changes method, model and prior keys."""
    head, _, rest = key.partition(".")
    sub = "." + rest if rest else ""
    by_variant = {"method": {k for k, _ in VARIANT_KEYS.values()},
                  "model": {k for k, _ in MODEL_TOKENS.values()},
                  "prior": {k for token in PRIOR_TOKENS.values() for k in token}}
    variant = ["variant"] if scope == "variant" and head in by_variant and (
        not rest or rest in by_variant[head]) else []
    if head in ("datasets", "method"):
        return [f"{head}.${{dataset}}{sub}", *variant]
    if head == "compute":
        return [key]
    if key == SYSTEM_SECTION:   # whichever baseline's section the variant selects
        return [*(s.section for s in SYSTEMS.values() if not s.parts), "profiles.${profile}", "variant"]
    if head in SECTIONS:
        return [key, "profiles.${profile}", *variant]
    raise KeyError(f"{key}: not a declarable key (datasets, method, compute or one of {', '.join(SECTIONS)})")


def resolved_value(cfg, key: str):
    """The value of a declared key in a resolved configuration: cfg['compute']['precision'] for
    'compute.precision'; `datasets` and `method` are the two halves of cfg['ds'] (variant applied);
    SYSTEM_SECTION the section of the run's system."""
    if key == SYSTEM_SECTION:
        return cfg[system(cfg["system"]).section]
    head, _, rest = key.partition(".")
    if head in ("datasets", "method"):
        table = {k: cfg["ds"][k] for k in table_keys("dataset" if head == "datasets" else "method")}
        return table[rest] if rest else table
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


