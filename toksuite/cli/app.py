"""The Typer app and its error handling: library errors become one red line and exit 1."""

from __future__ import annotations

import os
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from toksuite.errors import ToksuiteError
from toksuite.progress import stderr

DEBUG_ENV = "TOKSUITE_DEBUG"


class ToksuiteGroup(TyperGroup):
    # Any: Typer's Context is click's or, in newer Typer, its own vendored copy's.
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ToksuiteError as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            message = " ".join(str(exc).split()) or type(exc).__name__
            # Escaped: "[hf]" in an install hint or "x[3]" in a path is text, not rich markup.
            stderr.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None


app = typer.Typer(
    cls=ToksuiteGroup,
    name="toksuite",
    help="Compare image-to-sequence encoders for pixel-level autoregressive transformers.\n\n"
    f"Set {DEBUG_ENV}=1 to see the traceback of an error.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from toksuite import __version__

        typer.echo(f"toksuite {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Compare image-to-sequence encoders for pixel-level autoregressive transformers."""
