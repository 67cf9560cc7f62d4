"""Plugin manager and name registries for encoders and data sources.

Built-in encoders and data sources are plugins like any other: the modules
``toksuite.encoders`` and ``toksuite.data`` implement the same hooks a third-party package does.
Third-party plugins are found through the ``toksuite`` entry-point group. Anything that goes wrong
in a plugin — an import error, a hook that raises, an invalid registration — is recorded as a
`PluginFailure` (``toksuite plugins`` shows it) and never stops the rest from working.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import pluggy

from toksuite import hookspecs
from toksuite.data.base import DataSource
from toksuite.encoders.base import Encoder
from toksuite.errors import (
    DuplicateNameError,
    EncoderParamError,
    ManifestError,
    PluginError,
    UnknownNameError,
)
from toksuite.manifest import MANIFEST, read_manifest

__all__ = [
    "DISABLE_AUTOLOAD_ENV",
    "ENTRY_POINT_GROUP",
    "PluginFailure",
    "PluginHost",
    "Registry",
    "canonical_name",
    "create_encoder",
    "get_encoder_class",
    "get_host",
    "load_encoder",
    "reset_host",
]

ENTRY_POINT_GROUP = "toksuite"
DISABLE_AUTOLOAD_ENV = "TOKSUITE_DISABLE_PLUGIN_AUTOLOAD"
_BUILTIN_MODULES = ("toksuite.encoders", "toksuite.data")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


@dataclass(frozen=True)
class PluginFailure:
    plugin: str
    stage: str  # "import", "hook" or "register"
    message: str

    def line(self) -> str:
        return f"{self.plugin}: {self.stage} failed: {self.message}"

    def unavailable(self) -> str:
        """What an unknown name's error says about this failure."""
        if self.stage == "register":
            return f"plugin {self.plugin!r} could not register a class: {self.message}"
        return f"plugin {self.plugin!r} failed to load ({self.stage}): {self.message}"


C = TypeVar("C", Encoder, DataSource)  # the kinds of class a registry holds


@dataclass(frozen=True)
class Entry(Generic[C]):
    cls: type[C]
    source: str  # plugin that registered it


@dataclass
class Registry(Generic[C]):
    """Names → classes for one kind of thing (encoders or data sources)."""

    kind: str
    validate: Callable[[type], None]
    entries: dict[str, Entry[C]] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    conflicts: dict[str, list[str]] = field(default_factory=dict)
    # The host's plugin failures: an unknown name may be one a broken plugin would have provided.
    failures: list[PluginFailure] = field(default_factory=list)

    def add(self, cls: type, source: str) -> None:
        """Register ``cls``; raises PluginError / DuplicateNameError (recorded by the host).

        A name a built-in holds stays the built-in's: the plugin's registration fails (one
        recorded failure) and nothing else changes. Two plugins that claim one name make it
        ambiguous: neither is picked silently, and using it names both.
        """
        self.validate(cls)
        checked = cast("type[C]", cls)
        names = [checked.name, *getattr(cls, "aliases", ())]
        for name in names:
            taken = self.entries.get(name) or self.entries.get(self.aliases.get(name, ""))
            if taken is not None:
                if taken.source in _BUILTIN_MODULES:
                    raise DuplicateNameError(
                        f"{self.kind} name {name!r} is a built-in ({taken.source}); "
                        f"{source!r} cannot register it"
                    )
                self.conflicts.setdefault(name, [taken.source]).append(source)
                raise DuplicateNameError(
                    f"{self.kind} name {name!r} is registered by both {taken.source!r} and "
                    f"{source!r}"
                )
        self.entries[checked.name] = Entry(checked, source)
        for alias in names[1:]:
            self.aliases[alias] = checked.name

    def names(self) -> list[str]:
        return sorted(self.entries)

    def resolve(self, name: str) -> str:
        """The canonical name for ``name`` or an alias of it."""
        key = name.strip().lower()
        if key in self.conflicts:
            sources = " and ".join(repr(s) for s in self.conflicts[key])
            raise DuplicateNameError(
                f"{self.kind} name {key!r} is registered by both {sources}; uninstall one of them"
            )
        key = self.aliases.get(key, key)
        if key not in self.entries:
            known = self.names() + sorted(self.aliases)
            close = difflib.get_close_matches(key, known, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            # The name may be one a broken plugin would have provided: say which plugins broke.
            broken = "".join(f"; {f.unavailable()}" for f in self.failures)
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{hint} Available: {', '.join(self.usable())}"
                + broken
            )
        return key

    def usable(self) -> list[str]:
        """Names that resolve: an ambiguous name is left out (its failure says why)."""
        return [n for n in self.names() if n not in self.conflicts]

    def get(self, name: str) -> type[C]:
        return self.entries[self.resolve(name)].cls

    def source(self, name: str) -> str:
        return self.entries[self.resolve(name)].source

    def aliases_of(self, name: str) -> list[str]:
        return sorted(a for a, target in self.aliases.items() if target == name)


def _validate_encoder(cls: type) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Encoder)):
        raise PluginError(f"registered {cls!r}, which is not an Encoder subclass")
    if inspect_abstract(cls):
        raise PluginError(
            f"encoder {cls.__name__} leaves abstract methods: {inspect_abstract(cls)}"
        )
    _check_name(cls)
    if getattr(cls, "channels", None) not in (1, 3):
        raise PluginError(f"encoder {cls.__name__}: channels must be 1 or 3")


def _validate_source(cls: type) -> None:
    if not (isinstance(cls, type) and issubclass(cls, DataSource)):
        raise PluginError(f"registered {cls!r}, which is not a DataSource subclass")
    _check_name(cls)


def inspect_abstract(cls: type) -> str:
    return ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))


def _check_name(cls: type) -> None:
    for name in [getattr(cls, "name", None), *getattr(cls, "aliases", ())]:
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise PluginError(f"{cls.__name__}: invalid name {name!r} (lowercase, digits, -_.)")


class PluginHost:
    """The pluggy manager plus the registries filled from its hooks."""

    def __init__(
        self, *, autoload: bool | None = None, extra_plugins: Mapping[str, Any] | Iterable[Any] = ()
    ):
        self.pm = pluggy.PluginManager("toksuite")
        self.pm.add_hookspecs(hookspecs)
        self.failures: list[PluginFailure] = []
        self.encoders = Registry[Encoder]("encoder", _validate_encoder, failures=self.failures)
        self.datasets = Registry[DataSource](
            "data source", _validate_source, failures=self.failures
        )
        for module_name in _BUILTIN_MODULES:
            module = __import__(module_name, fromlist=["_"])
            self.pm.register(module, name=module_name)
        if autoload is None:
            autoload = not os.environ.get(DISABLE_AUTOLOAD_ENV)
        if autoload:
            self._load_entry_points()
        named = (
            extra_plugins
            if isinstance(extra_plugins, Mapping)
            else {f"plugin{i}": p for i, p in enumerate(extra_plugins)}
        )
        for name, plugin in named.items():
            self.register_plugin(plugin, name=name)
        self._collect()

    def register_plugin(self, plugin: Any, name: str | None = None) -> None:
        """Register a plugin object or module (tests use this with mock plugins)."""
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # a bad hookimpl signature must not take the tool down
            self.failures.append(PluginFailure(name or repr(plugin), "import", _one_line(exc)))

    def _load_entry_points(self) -> None:
        # pluggy's load_setuptools_entrypoints stops at the first broken plugin; load one by one.
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            if self.pm.has_plugin(ep.name) or self.pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                self.failures.append(PluginFailure(ep.name, "import", _one_line(exc)))
                continue
            self.register_plugin(plugin, name=ep.name)
            if ep.dist is not None:
                self.pm._plugin_distinfo.append((plugin, ep.dist))

    def _collect(self) -> None:
        hooks = (
            (self.pm.hook.toksuite_register_encoders, self.encoders),
            (self.pm.hook.toksuite_register_datasets, self.datasets),
        )
        for hook, registry in hooks:
            # Built-ins first, so a plugin cannot shadow a built-in name silently.
            impls = sorted(
                hook.get_hookimpls(), key=lambda i: i.plugin_name not in _BUILTIN_MODULES
            )
            for impl in impls:
                source = impl.plugin_name

                def register(cls: type, _source: str = source, _reg: Registry = registry) -> None:
                    try:
                        _reg.add(cls, _source)
                    except Exception as exc:
                        self.failures.append(PluginFailure(_source, "register", _one_line(exc)))

                try:
                    impl.function(register=register)
                except Exception as exc:
                    self.failures.append(PluginFailure(source, "hook", _one_line(exc)))

    def plugins(self) -> list[dict[str, Any]]:
        """Loaded plugins with their distribution and what each registered."""
        dists = {id(p): d for p, d in self.pm.list_plugin_distinfo()}
        rows = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            source = name
            dist = dists.get(id(plugin))
            rows.append(
                {
                    "name": name,
                    "distribution": f"{dist.metadata['name']} {dist.version}" if dist else None,
                    "encoders": [n for n, e in self.encoders.entries.items() if e.source == source],
                    "datasets": [n for n, e in self.datasets.entries.items() if e.source == source],
                }
            )
        return rows


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


_HOST: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, built on first use."""
    global _HOST
    if _HOST is None:
        _HOST = PluginHost()
    return _HOST


def reset_host(host: PluginHost | None = None) -> None:
    """Replace the process-wide host (tests use this to install mock plugins)."""
    global _HOST
    _HOST = host


def get_encoder_class(name: str) -> type[Encoder]:
    """The encoder class registered under ``name`` or an alias of it."""
    return get_host().encoders.get(name)


def canonical_name(name: str) -> str:
    """The registered name of the encoder ``name`` denotes (an alias resolves to its target):
    what configs, reports and cache keys record, so that ``bpe`` and ``bpe-rgb`` are one encoder."""
    return get_encoder_class(name).name


def create_encoder(name: str, **params: Any) -> Encoder:
    """Instantiate a registered encoder by name or alias."""
    cls = get_encoder_class(name)
    try:
        return cls(**params)
    except TypeError as exc:
        raise EncoderParamError(f"encoder {cls.name!r}: {exc}") from None


def load_encoder(directory: str | Path) -> Encoder:
    """Load an encoder saved with `Encoder.save`."""
    manifest = read_manifest(directory)
    try:
        name = canonical_name(manifest.encoder)
    except UnknownNameError as exc:
        path = Path(directory) / MANIFEST
        raise ManifestError(f"{path}: {exc} (is the plugin that provides it installed?)") from None
    encoder = create_encoder(name, **manifest.params)
    encoder._load_state(Path(directory))
    return encoder
