"""The plugin registry: mock plugins through the real plugin manager, broken plugins, names."""

from __future__ import annotations

import types
from importlib import metadata

import numpy as np
import pytest

from toksuite import hookimpl, registry
from toksuite.encoders.pixels import GreyPixelEncoder
from toksuite.errors import DuplicateNameError, ManifestError, UnknownNameError


class MockEncoder(GreyPixelEncoder):
    """Inverts grey levels: a plugin encoder small enough to check by eye."""

    name = "mock-invert"
    aliases = ("mock",)

    def encode(self, image):
        return 255 - super().encode(image)

    def decode_checked(self, ids, shape):
        decoded = super().decode_checked(255 - self.ids_array(ids), shape)
        return decoded


class MockPlugin:
    @hookimpl
    def toksuite_register_encoders(self, register):
        register(MockEncoder)


class RaisingPlugin:
    @hookimpl
    def toksuite_register_encoders(self, register):
        raise RuntimeError("boom in hook")


class BadRegistrationPlugin:
    @hookimpl
    def toksuite_register_encoders(self, register):
        register(dict)  # not an Encoder
        register(MockEncoder)  # the valid one still registers


class DuplicatePlugin:
    @hookimpl
    def toksuite_register_encoders(self, register):
        class Clash(GreyPixelEncoder):
            name = "pixels-grey"

        register(Clash)


def host(*plugins):
    return registry.PluginHost(autoload=False, extra_plugins=plugins)


def test_builtins_registered_through_the_hook():
    h = registry.PluginHost(autoload=False)
    assert not h.failures
    assert {"pixels-grey", "pixels-rgb", "kmeans", "bpe-grey", "bpe-rgb", "bpe-bytelevel"} <= set(
        h.encoders.names()
    )
    assert h.encoders.source("pixels-rgb") == "toksuite.encoders"
    assert h.encoders.resolve("bpe") == "bpe-rgb"
    assert h.encoders.resolve("PIXELS") == "pixels-rgb"
    assert "digits" in h.datasets.names()


def test_mock_plugin_through_real_manager():
    h = host(MockPlugin())
    assert h.encoders.get("mock") is MockEncoder
    assert h.encoders.source("mock-invert") == "plugin0"
    image = np.array([[0, 10], [200, 255]], np.uint8)
    enc = MockEncoder()
    assert enc.encode(image).tolist() == [255, 245, 55, 0]
    assert (enc.decode(enc.encode(image), (2, 2))[..., 0] == image).all()


def test_broken_plugins_leave_the_rest_working():
    h = host(RaisingPlugin(), BadRegistrationPlugin())
    stages = sorted(f.stage for f in h.failures)
    assert stages == ["hook", "register"]
    assert any("boom in hook" in f.line() for f in h.failures)
    assert any("not an Encoder" in f.message for f in h.failures)
    assert h.encoders.get("mock-invert") is MockEncoder
    assert h.encoders.get("pixels-grey") is GreyPixelEncoder
    assert all("\n" not in f.line() for f in h.failures)


def test_duplicate_name_names_both_sources():
    h = host(DuplicatePlugin())
    assert any("toksuite.encoders" in f.message and "plugin0" in f.message for f in h.failures)
    with pytest.raises(DuplicateNameError, match="toksuite.encoders.*plugin0"):
        h.encoders.get("pixels-grey")
    assert h.encoders.get("pixels-rgb")  # other names unaffected


def test_unknown_name_suggests():
    h = registry.PluginHost(autoload=False)
    with pytest.raises(UnknownNameError, match=r"Did you mean 'bpe-rgb'.*Available: .*kmeans"):
        h.encoders.get("bpe-rbg")


def test_entry_point_import_failure_is_recorded(monkeypatch):
    good = types.ModuleType("good_plugin")
    good.toksuite_register_encoders = hookimpl(lambda register: register(MockEncoder))

    class EP:
        def __init__(self, name, target):
            self.name, self._target, self.dist = name, target, None

        def load(self):
            if isinstance(self._target, Exception):
                raise self._target
            return self._target

    eps = [EP("broken", ImportError("No module named 'nope'")), EP("good", good)]
    monkeypatch.setattr(metadata, "entry_points", lambda group: eps)
    h = registry.PluginHost(autoload=True)
    assert [f.line() for f in h.failures] == [
        "broken: import failed: ImportError: No module named 'nope'"
    ]
    assert h.encoders.get("mock-invert") is MockEncoder


def test_autoload_env_var_disables_entry_points(monkeypatch):
    called = []
    monkeypatch.setattr(metadata, "entry_points", lambda group: called.append(group) or [])
    monkeypatch.setenv(registry.DISABLE_AUTOLOAD_ENV, "1")
    registry.PluginHost()
    assert called == []
    monkeypatch.delenv(registry.DISABLE_AUTOLOAD_ENV)
    registry.PluginHost()
    assert called == ["toksuite"]


def test_load_manifest_errors(tmp_path):
    enc = GreyPixelEncoder()
    enc.save(tmp_path / "enc")
    assert isinstance(registry.load_encoder(tmp_path / "enc"), GreyPixelEncoder)
    manifest = tmp_path / "enc" / "toksuite.json"
    manifest.write_text(manifest.read_text().replace('"format_version": 1', '"format_version": 99'))
    with pytest.raises(ManifestError, match="newer"):
        registry.load_encoder(tmp_path / "enc")
    manifest.write_text('{"format_version": 1, "encoder": "nope", "params": {}}')
    with pytest.raises(ManifestError, match="unknown encoder 'nope'"):
        registry.load_encoder(tmp_path / "enc")
    with pytest.raises(ManifestError, match="no toksuite.json"):
        registry.load_encoder(tmp_path)
