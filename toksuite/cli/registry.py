"""`toksuite encoders` and `toksuite plugins`: what is installed."""

from __future__ import annotations

from typing import Any

import typer

from toksuite.cli.app import app
from toksuite.cli.output import JSON_OPTION, emit
from toksuite.registry import get_host


@app.command()
def encoders(as_json: bool = JSON_OPTION) -> None:
    """List the registered encoders: name, aliases, plugin, channels and parameters."""
    host = get_host()
    result: list[dict[str, Any]] = []
    for name in host.encoders.usable():  # an ambiguous name is in the failures instead
        cls = host.encoders.get(name)
        result.append(
            {
                "name": name,
                "aliases": host.encoders.aliases_of(name),
                "plugin": host.encoders.source(name),
                "channels": cls.channels,
                "description": cls.description,
                "params": [
                    {"name": s.name, "type": s.type_name, "default": s.default}
                    for s in cls.param_specs()
                ],
            }
        )
    rows = [
        {
            "name": r["name"],
            "aliases": ", ".join(r["aliases"]),
            "plugin": r["plugin"],
            "channels": r["channels"],
            "params": "  ".join(f"{p['name']}={p['default']}" for p in r["params"]),
            "description": r["description"],
        }
        for r in result
    ]
    footer = [f"[red]plugin failure:[/] {f.line()}" for f in host.failures]
    emit(result, as_json=as_json, rows=rows, title="Encoders", footer=footer)


@app.command()
def plugins(as_json: bool = JSON_OPTION) -> None:
    """List loaded plugins and, one line each, the plugins that failed to load."""
    host = get_host()
    loaded = host.plugins()
    failures = [{"plugin": f.plugin, "stage": f.stage, "message": f.message} for f in host.failures]
    rows = [
        {
            "plugin": p["name"],
            "distribution": p["distribution"] or "built-in",
            "encoders": ", ".join(p["encoders"]),
            "data sources": ", ".join(p["datasets"]),
        }
        for p in loaded
    ]
    footer = [f"[red]failed:[/] {f.line()}" for f in host.failures]
    emit(
        {"plugins": loaded, "failures": failures},
        as_json=as_json,
        rows=rows,
        title="Plugins",
        footer=footer,
    )
    if not as_json and not host.failures:
        typer.echo("no plugin failures", err=True)
