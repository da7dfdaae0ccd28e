"""The code a stage depends on, computed from its imports: changing a module a stage imports, directly
or not, reruns it in both engines; nothing else does.

The closure of a stage's CLI within the project follows every import (lazy ones in functions too), and
where a module loads a system's model by the name in the registry (a loader: found from the code, every
module that calls the registry's loader `model_class`), the model modules of the systems the stage runs
for and each one's registry entry (workflow/systems/<name>.json, generated from npdraw/workflow/systems.py:
what of a system changes numbers, its model class, random stream, params section and data).  It leaves out
the modules that only define or generate the workflow (DEFINITION: the stage table, the path scheme, the
generators, this scanner, the Snakefile's helpers, and the registry itself, whose labels, descriptions and
the papers' numbers no stage computes with; and USE, the package of the `npdraw` command, which no stage
runs): their effect is each stage's command, inputs, outputs, declared params and systems' entries, which
the engines already see, so editing a help string in the stage table, a label or a paper's number in the
registry reruns nothing, and editing one system's entry reruns that system's stages alone.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from npdraw.workflow.systems import SYSTEMS

REPO = Path(__file__).resolve().parents[2]   # npdraw/workflow/closure.py -> the repository
PACKAGE = "npdraw"
# Modules that define or generate the workflow, and no stage's numbers: never a code dependency.
DEFINITION = frozenset({"npdraw/workflow/stages.py", "npdraw/workflow/paths.py", "npdraw/workflow/generate.py",
                        "npdraw/workflow/closure.py", "npdraw/workflow/snakemake.py", "npdraw/workflow/systems.py"})
# What of a system a stage's numbers depend on: the registry fields its entry file holds.
ENTRY_FIELDS = ("name", "model", "salt", "section", "parts", "binary_only", "image_sizes")
ENTRY = "workflow/systems/{name}.json"
# The package that uses trained models (the npdraw command, npdraw.load, the editor): no stage runs it,
# though `npdraw.load` in the package's __init__ imports it when called.
USE = "npdraw/app/"

def _module_file(module: str) -> Path | None:
    """The project file of a dotted module name (a package's __init__.py), or None if not ours."""
    if module != PACKAGE and not module.startswith(PACKAGE + "."):
        return None
    base = REPO.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    """Dotted names a file imports (anywhere in it: functions import lazily too), with each package
    on the way (importing a.b.c runs a/__init__ and a/b/__init__) and `from a import b` as a.b."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in found:
            parts = name.split(".")
            names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return names


LOADER = "model_class"   # the registry's loader: imports a system's model module by its entry's 'module:Class'


@cache
def loaders() -> frozenset[str]:
    """The project modules that define or call the registry's loader (LOADER), which no import statement
    shows the model modules of: a stage whose closure holds one depends on its systems' model modules."""
    found = set()
    for path in (REPO / PACKAGE).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            called = isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == LOADER
            if called or (isinstance(node, ast.FunctionDef) and node.name == LOADER):
                found.add(_relative(path))
                break
    return frozenset(found)


def _relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _closure(start: list[Path]) -> set[Path]:
    """The project modules `start` import, directly or not, the workflow's definition left out."""
    seen: set[Path] = set()
    todo = list(start)
    while todo:
        for name in _imports(todo.pop()):
            found = _module_file(name)
            if (found is not None and found not in seen and _relative(found) not in DEFINITION
                    and not _relative(found).startswith(USE)):
                seen.add(found)
                todo.append(found)
    return seen


@cache
def code_closure(script: str, systems: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The project's modules `script` (a path relative to the repository) imports, directly or
    through other project modules, as sorted repository-relative paths (the script and DEFINITION
    excluded); where it loads a system's model by name (loaders()), the model modules and the registry
    entries of `systems` (None: every system)."""
    seen = _closure([REPO / script])
    entries = []
    if loaders() & {_relative(p) for p in seen}:
        names = systems or tuple(SYSTEMS)
        models = {_module_file(SYSTEMS[name].model.partition(":")[0]) for name in names}
        seen |= models | _closure(sorted(models))
        entries = [ENTRY.format(name=name) for name in names]
    return tuple(sorted([*(_relative(p) for p in seen), *entries]))


def entry(name: str) -> str:
    """A system's registry entry file's text: the fields of its npdraw.workflow.systems entry a stage's
    numbers depend on (ENTRY_FIELDS), as JSON."""
    import json

    record = {f: getattr(SYSTEMS[name], f) for f in ENTRY_FIELDS}
    return json.dumps(record, indent=2) + "\n"


def code_deps(script: str, systems: tuple[str, ...] | None = None) -> list[str]:
    """What a rule or stage running `script` depends on as code: the script and its closure."""
    return [script, *code_closure(script, systems)]

