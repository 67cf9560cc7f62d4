"""One way to print a result: a rich table on stdout, or JSON with ``--json``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from toksuite.formatting import fmt, jsonable

stdout = Console(soft_wrap=True)
# Piped or captured output has no terminal width; let tables take their natural width there
# rather than wrapping every cell at 80 columns.
_wide = stdout if stdout.is_terminal else Console(soft_wrap=True, width=400)

JSON_OPTION = typer.Option(False, "--json", help="Print the result as JSON on stdout.")


def print_json(obj: Any) -> None:
    typer.echo(json.dumps(jsonable(obj), indent=2))


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
