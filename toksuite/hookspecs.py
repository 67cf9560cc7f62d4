"""The hooks a toksuite plugin can implement (entry-point group ``toksuite``).

A plugin module implements any of these with ``@toksuite.hookimpl``; the built-in encoders and data
sources are registered through the very same hooks.
"""

from collections.abc import Callable

import pluggy

__all__ = ["hookimpl", "hookspec", "toksuite_register_datasets", "toksuite_register_encoders"]

hookspec = pluggy.HookspecMarker("toksuite")
hookimpl = pluggy.HookimplMarker("toksuite")


@hookspec
def toksuite_register_encoders(register: Callable[[type], None]) -> None:
    """Call ``register(EncoderClass)`` for each encoder class the plugin provides."""


@hookspec
def toksuite_register_datasets(register: Callable[[type], None]) -> None:
    """Call ``register(DataSourceClass)`` for each data source class the plugin provides."""
