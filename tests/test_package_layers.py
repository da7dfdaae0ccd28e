"""The library's packages form layers: a module imports only from its own package or the ones below
it, and no modules import each other in a cycle."""

import ast
from pathlib import Path

from tests.conftest import REPO

# Bottom to top (npdraw/<package>/): each may use the ones before it.
LAYERS = ["artifacts", "compute", "workflow", "data", "parts", "models", "evaluation", "training", "reporting", "app"]


def imports_of(path: Path) -> set[str]:
    """The project modules a file imports (dotted), anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("npdraw."):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names
                         if (REPO / node.module.replace(".", "/") / f"{a.name}.py").is_file())
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("npdraw."))
    return {m for m in found if (REPO / (m.replace(".", "/") + ".py")).is_file()}


def module_graph() -> dict[str, set[str]]:
    return {".".join(p.relative_to(REPO).with_suffix("").parts): imports_of(p)
            for p in (REPO / "npdraw").rglob("*.py") if p.name != "__init__.py"}


def test_every_module_lives_in_a_layer():
    assert {m.split(".")[1] for m in module_graph()} == set(LAYERS)


def test_nothing_imports_upward():
    upward = [f"{m} imports {d}" for m, deps in module_graph().items() for d in deps
              if LAYERS.index(d.split(".")[1]) > LAYERS.index(m.split(".")[1])]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    graph = module_graph()
    state: dict[str, int] = {}   # 1: on the current path, 2: done

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(d):] + [d]))
            if d not in state:
                visit(d, path + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
