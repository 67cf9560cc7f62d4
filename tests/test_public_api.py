"""The public surface is declared once (``__all__``), listed in docs/api.md, and is all that the
example plugins import."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
API_PAGE = ROOT / "docs" / "api.md"
PLUGIN_PACKAGES = [
    ROOT / "plugins" / "toksuite-tutorial" / "toksuite_tutorial",
    ROOT / "plugins" / "toksuite-bpe-extras" / "toksuite_bpe_extras",
    # their tests too: an author's tests lean on what toksuite promises, like their code
    ROOT / "plugins" / "toksuite-tutorial" / "tests",
    ROOT / "plugins" / "toksuite-bpe-extras" / "tests",
]


def documented() -> dict[str, set[str]]:
    """Module → names, from the table of docs/api.md's "The public surface"."""
    section = API_PAGE.read_text(encoding="utf-8").split("## The public surface", 1)[1]
    table = section.split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([\w.]+)` \|[^|]*\| (.*) \|$", table, re.M)
    return {module: set(re.findall(r"`([\w]+)`", names)) for module, names in rows}


PUBLIC = documented()


def test_the_table_lists_the_plugin_modules():
    assert {"toksuite", "toksuite.encoders", "toksuite.errors", "toksuite.registry"} <= set(PUBLIC)
    assert {"toksuite.testing", "toksuite.hookspecs", "toksuite.manifest"} <= set(PUBLIC)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_all_is_declared_and_documented(name):
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}: __all__ repeats a name"
    assert set(exported) == PUBLIC[name], f"docs/api.md's table differs from {name}.__all__"
    for attribute in exported:
        assert hasattr(module, attribute), f"{name}.__all__ names {attribute!r}, which is missing"


def _toksuite_imports(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules |= {a.name for a in node.names if a.name.split(".")[0] == "toksuite"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "toksuite":
            modules.add(node.module)
            # `from toksuite import x` must name public things too
            if node.module in PUBLIC:
                # a public submodule (`from toksuite import registry`) counts as that module
                names = {a.name for a in node.names}
                submodules = {n for n in names if f"{node.module}.{n}" in PUBLIC}
                modules |= {f"{node.module}.{n}" for n in submodules}
                missing = names - submodules - PUBLIC[node.module]
                assert not missing, f"{path.name} imports {missing} from {node.module}"
    return modules


@pytest.mark.parametrize("package", PLUGIN_PACKAGES, ids=lambda p: p.name)
def test_example_plugins_import_only_the_public_surface(package):
    files = sorted(package.glob("*.py"))
    assert files
    for path in files:
        internal = _toksuite_imports(path) - set(PUBLIC)
        assert not internal, f"{path.name} imports internal modules {sorted(internal)}"
