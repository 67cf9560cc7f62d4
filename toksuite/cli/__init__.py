"""Command-line interface: one module per command group, all registered on one Typer app."""

import importlib
import pkgutil

from toksuite.cli.app import app

# Every sibling module defines its commands on `app`; importing them registers them.
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module not in ("app", "output", "options"):
        importlib.import_module(f"{__name__}.{_module}")


def main() -> None:
    app()


__all__ = ["app", "main"]
