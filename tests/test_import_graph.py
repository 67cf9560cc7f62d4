"""No import cycle among toksuite's modules, and every module imports on its own.

A cycle among module-level imports works only while the import order happens to suit it, and hides
two modules that are one idea split in two (the manifest once was: written in the encoder base
class, read in the registry, which imported its constants back). Imports inside a function are
deliberate lazy imports (a plugin's hook, a heavy dependency) and are not edges here.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "toksuite"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _top_level_imports(node: ast.AST):
    """Import statements run when the module is imported: at top level, or inside a top-level
    ``if``/``try`` (an ``if TYPE_CHECKING:`` block never runs)."""
    for stmt in getattr(node, "body", []):
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            yield stmt
        elif isinstance(stmt, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(stmt.test):
                yield from _top_level_imports(stmt)
                yield from _top_level_imports(ast.Module(body=stmt.orelse, type_ignores=[]))
        elif isinstance(stmt, ast.Try):
            for block in (stmt.body, stmt.orelse, stmt.finalbody, *(h.body for h in stmt.handlers)):
                yield from _top_level_imports(ast.Module(body=block, type_ignores=[]))


def _targets(module: str, stmt: ast.Import | ast.ImportFrom) -> set[str]:
    """The toksuite modules one import statement loads."""
    if isinstance(stmt, ast.Import):
        return {alias.name for alias in stmt.names if alias.name in MODULES}
    base = stmt.module or ""
    if stmt.level:  # relative import: resolve against this module's package
        package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
        for _ in range(stmt.level - 1):
            package = package.rpartition(".")[0]
        base = f"{package}.{base}".rstrip(".")
    found = {f"{base}.{alias.name}" for alias in stmt.names} & MODULES.keys()
    # `from pkg import name` loads pkg too when name is not a submodule of it.
    if base in MODULES and len(found) < len(stmt.names):
        found.add(base)
    return found


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges: set[str] = set()
        for stmt in _top_level_imports(tree):
            edges |= _targets(name, stmt)
        graph[name] = edges - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of nodes (first == last), or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_graph_sees_module_level_imports_only():
    graph = import_graph()
    assert "toksuite.encoders.base" in graph["toksuite.registry"]
    assert "toksuite.manifest" in graph["toksuite.encoders.base"]
    # Encoder.load imports the registry inside the method: not an edge.
    assert "toksuite.registry" not in graph["toksuite.encoders.base"]


def test_no_import_cycle_among_module_level_imports():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not n.endswith(".__main__")))
def test_every_module_imports(name):  # (__main__ runs the command line when imported)
    importlib.import_module(name)
