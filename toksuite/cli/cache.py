"""`toksuite cache info|clear`: the on-disk cache of encoded token sequences."""

from __future__ import annotations

import typer

from toksuite.cli.app import app
from toksuite.cli.output import JSON_OPTION, emit

cache_app = typer.Typer(
    help="Inspect or empty the cache of encoded token sequences.", no_args_is_help=True
)
app.add_typer(cache_app, name="cache")


@cache_app.command("info")
def info(as_json: bool = JSON_OPTION) -> None:
    """Where the token cache is, how many entries it holds, and their size."""
    from toksuite.cache import cache_info

    result = cache_info()
    rows = [{"path": result["path"], "entries": result["entries"], "MB": result["bytes"] / 1e6}]
    emit(result, as_json=as_json, rows=rows, title="Token cache")


@cache_app.command("clear")
def clear(as_json: bool = JSON_OPTION) -> None:
    """Remove every cached token entry (they are recomputed when needed)."""
    from toksuite.cache import clear_cache, tokens_dir

    removed = clear_cache()
    result = {"path": str(tokens_dir()), "removed": removed}
    emit(result, as_json=as_json, rows=[result], title="Token cache cleared")
