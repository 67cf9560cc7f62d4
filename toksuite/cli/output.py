"""One way to print a result: a rich table on stdout, or JSON with ``--json``."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

stdout = Console(soft_wrap=True)
# Piped or captured output has no terminal width; let tables take their natural width there
# rather than wrapping every cell at 80 columns.
_wide = stdout if stdout.is_terminal else Console(soft_wrap=True, width=400)

JSON_OPTION = typer.Option(False, "--json", help="Print the result as JSON on stdout.")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "__fspath__"):
        return str(obj)
    return obj


def print_json(obj: Any) -> None:
    typer.echo(json.dumps(_jsonable(obj), indent=2))


def fmt(value: Any, digits: int = 3) -> str:
    """A cell: ints with thousands separators, floats to ``digits`` places (or 3 significant)."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
            return f"{value:.{digits}g}"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v, digits) for v in value)
    return str(value)


def emit(
    result: Any,
    *,
    as_json: bool,
    rows: Sequence[dict[str, Any]] | None = None,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    footer: Sequence[str] = (),
) -> None:
    """Print ``result`` as JSON, or ``rows`` (default: ``result`` itself) as a table."""
    if as_json:
        print_json(result)
        return
    rows = result if rows is None else rows
    if not rows:
        stdout.print(f"{title}: nothing to show" if title else "nothing to show")
    else:
        columns = list(columns or rows[0].keys())
        table = Table(title=title, title_justify="left", header_style="bold")
        for col in columns:
            table.add_column(col, overflow="fold")
        for row in rows:
            table.add_row(*(fmt(row.get(col)) for col in columns))
        _wide.print(table)
    for line in footer:
        stdout.print(line, highlight=False)
