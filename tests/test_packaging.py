"""Every third-party package toksuite imports is one pyproject.toml declares.

An undeclared import works here only because something else happened to install it; a fresh
``pip install toksuite`` would then fail at the first command that reaches it.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _top_level_imports(package: Path) -> dict[str, str]:
    """Top-level name → first file importing it, for every absolute import (lazy ones too)."""
    found: dict[str, str] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def _requirement_name(spec: str) -> str:
    """The normalised distribution name of a requirement string (PEP 503)."""
    name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec.strip()).group(0)
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> tuple[set[str], set[str]]:
    """(required, optional) distribution names in pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = {_requirement_name(s) for s in project["dependencies"]}
    extras = project.get("optional-dependencies", {}).values()
    optional = {_requirement_name(s) for group in extras for s in group}
    return required, optional


# Imported only inside a function, behind an extra that says so (`--data hf:PATH`).
OPTIONAL_IMPORTS = {"datasets", "pyarrow"}


def test_every_third_party_import_is_a_declared_dependency():
    required, optional = _declared()
    distributions = packages_distributions()
    missing = []
    for module, where in sorted(_top_level_imports(ROOT / "toksuite").items()):
        if module == "toksuite" or module in sys.stdlib_module_names:
            continue
        names = {_requirement_name(d) for d in distributions.get(module, [module])}
        allowed = required | (optional if module in OPTIONAL_IMPORTS else set())
        if not names & allowed:
            missing.append(f"{module} (imported in {where}; distribution {', '.join(names)})")
    assert not missing, "undeclared dependencies: " + "; ".join(missing)


def test_optional_imports_are_declared_in_an_extra():
    _, optional = _declared()
    distributions = packages_distributions()
    for module in OPTIONAL_IMPORTS & set(_top_level_imports(ROOT / "toksuite")):
        names = {_requirement_name(d) for d in distributions.get(module, [module])}
        assert names & optional, f"{module} is imported but no extra declares it"


def test_the_import_scan_sees_lazy_imports():
    """The check would pass vacuously if it missed imports made inside functions."""
    imports = _top_level_imports(ROOT / "toksuite")
    assert {"numpy", "torch", "transformers", "sklearn", "fvcore"} <= set(imports)
