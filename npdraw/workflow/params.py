"""params.yaml: loading, and validation against the one schema and across keys, before any work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from npdraw.artifacts.contracts import non_finite
from npdraw.artifacts.errors import ParamsError
from npdraw.workflow.resolve import CHOICE_KEYS, LABEL_SOURCES, choice_problem, resolve
from npdraw.workflow.schema import schema


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
    choice_problems = {k: choice_problem(params, k, params[k]) for k in CHOICE_KEYS if k in params and tables_ok}
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


