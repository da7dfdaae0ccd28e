"""The params schema: params.schema.yaml, with each baseline's section from the systems registry."""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources

import yaml

from npdraw.workflow.systems import sections


@cache
def _schema() -> dict:
    text = resources.files("npdraw.workflow").joinpath("params.schema.yaml").read_text()
    out = yaml.safe_load(text)
    for name, entry in sections().items():
        out["$defs"][name] = {"type": "object", "additionalProperties": False, "properties": entry.schema}
        out["properties"][name] = {"allOf": [{"$ref": f"#/$defs/{name}"}, {"required": list(entry.schema)}]}
        out["required"].append(name)
        out["$defs"]["profile"]["properties"][name] = {"$ref": f"#/$defs/{name}"}
    return out


def schema() -> dict:
    """The params schema (a copy: callers may change it)."""
    return copy.deepcopy(_schema())


def table_keys(table: str) -> tuple[str, ...]:
    """The keys of one entry of the `datasets` or `method` table (`table` 'dataset' or 'method'),
    as the schema lists them."""
    return tuple(_schema()["$defs"][table]["properties"])
