"""The plugin registry: mock plugins through the real plugin manager, broken plugins, names."""

from __future__ import annotations

import json
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


class AliasClashPlugin:
    """Claims the built-in alias `pixels` for a new encoder, beside a valid one."""

    @hookimpl
    def toksuite_register_encoders(self, register):
        class Clash(GreyPixelEncoder):
            name = "clash-grey"
            aliases = ("pixels",)

        register(Clash)
        register(MockEncoder)


def test_a_builtin_name_stays_the_builtins():
    h = host(DuplicatePlugin(), AliasClashPlugin())
    stages = [(f.plugin, f.stage) for f in h.failures]
    assert stages == [("plugin0", "register"), ("plugin1", "register")]
    assert "'pixels-grey' is a built-in (toksuite.encoders); 'plugin0'" in h.failures[0].message
    assert "'pixels' is a built-in" in h.failures[1].message
    assert h.encoders.get("pixels-grey") is GreyPixelEncoder  # the built-in, untouched
    assert h.encoders.resolve("pixels") == "pixels-rgb"
    assert h.encoders.get("mock") is MockEncoder  # the clashing plugin's other encoder works
    assert "clash-grey" not in h.encoders.names()


def test_two_plugins_with_one_name_name_both():
    class Other(MockPlugin):
        pass

    h = host(MockPlugin(), Other())
    assert [f.plugin for f in h.failures] == ["plugin1"]
    with pytest.raises(DuplicateNameError, match="'plugin0' and 'plugin1'"):
        h.encoders.get("mock-invert")
    assert "mock-invert" not in h.encoders.usable()
    assert h.encoders.get("pixels-grey") is GreyPixelEncoder  # other names unaffected


def test_cli_survives_a_clashing_plugin():
    from typer.testing import CliRunner

    from toksuite.cli import app

    registry.reset_host(host(DuplicatePlugin(), MockPlugin()))
    runner = CliRunner()
    result = runner.invoke(app, ["encoders", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["pixels-grey"]["plugin"] == "toksuite.encoders"
    assert rows["mock-invert"]["plugin"] == "plugin1"
    result = runner.invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0
    [failure] = json.loads(result.stdout)["failures"]
    assert failure["plugin"] == "plugin0" and "'pixels-grey' is a built-in" in failure["message"]
    assert "plugin0: register failed" in runner.invoke(app, ["plugins"]).stdout
    assert runner.invoke(app, ["squeeze", "-e", "pixels-grey", "--limit", "5", "--json", "--plot",
                               "/dev/null"]).exit_code == 0  # fmt: skip


def test_unknown_name_says_which_plugin_failed_to_load(monkeypatch):
    class EP:
        name, dist = "grey4-broken", None

        def load(self):
            raise ImportError("No module named 'toksuite_grey4'")

    monkeypatch.setattr(metadata, "entry_points", lambda group: [EP()])
    h = registry.PluginHost(autoload=True)
    with pytest.raises(UnknownNameError) as err:
        h.encoders.get("pixels-grey4")
    message = str(err.value)
    assert message.startswith("unknown encoder 'pixels-grey4'.")
    assert (
        "plugin 'grey4-broken' failed to load (import): ImportError: No module named "
        "'toksuite_grey4'" in message
    )
    with pytest.raises(UnknownNameError, match="grey4-broken"):
        h.datasets.get("faces")
    from typer.testing import CliRunner

    from toksuite.cli import app

    registry.reset_host(h)
    result = CliRunner().invoke(app, ["fit", "pixels-grey4", "-o", "unused"])
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert "unknown encoder 'pixels-grey4'" in line and "'grey4-broken' failed to load" in line
    # With no failure, the message is as before.
    assert "failed to load" not in str(
        pytest.raises(UnknownNameError, host().encoders.get, "x").value
    )


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


def test_malformed_manifest_says_so(tmp_path):
    GreyPixelEncoder().save(tmp_path / "enc")
    (tmp_path / "enc" / "toksuite.json").write_text('{"format_version": 1, "params": {}}')
    with pytest.raises(ManifestError, match=r"malformed manifest \(KeyError: 'encoder'\)"):
        registry.load_encoder(tmp_path / "enc")
    (tmp_path / "enc" / "toksuite.json").write_text("[1, 2")
    with pytest.raises(ManifestError, match="malformed manifest"):
        registry.load_encoder(tmp_path / "enc")


def test_canonical_name_resolves_aliases_and_case():
    assert registry.canonical_name("bpe") == "bpe-rgb"
    assert registry.canonical_name(" Pixels ") == "pixels-rgb"
    assert registry.canonical_name("kmeans") == "kmeans"
    with pytest.raises(UnknownNameError, match="Did you mean 'bpe-rgb'"):
        registry.canonical_name("bpe-rbg")


def test_manifest_is_written_and_read_in_one_module(tmp_path):
    from toksuite import __version__
    from toksuite.encoders.pixels import RGBPixelEncoder
    from toksuite.manifest import FORMAT_VERSION, MANIFEST, identity_bytes, read_manifest

    GreyPixelEncoder(levels=16).save(tmp_path / "enc")
    written = json.loads((tmp_path / "enc" / MANIFEST).read_text())
    assert list(written) == ["format_version", "encoder", "params", "toksuite_version"]
    manifest = read_manifest(tmp_path / "enc")
    assert (manifest.encoder, manifest.params) == ("pixels-grey", {"levels": 16})
    assert (manifest.format_version, manifest.toksuite_version) == (FORMAT_VERSION, __version__)
    # The toksuite version is informative: it leaves the fingerprint's bytes alone.
    other = dict(written, toksuite_version="9.9")
    assert identity_bytes(json.dumps(other).encode()) == identity_bytes(
        json.dumps(written).encode()
    )
    # A manifest that names an alias loads the encoder it stands for.
    (tmp_path / "enc" / MANIFEST).write_text(
        json.dumps({"format_version": 1, "encoder": "pixels", "params": {"levels": 4}})
    )
    loaded = registry.load_encoder(tmp_path / "enc")
    assert type(loaded) is RGBPixelEncoder and loaded.levels == 4


def test_an_hf_tokenizer_encoder_must_fill_in_every_abstract_method():
    from toksuite.encoders import HFTokenizerEncoder

    class HalfDone(HFTokenizerEncoder):
        name = "half-done-bpe"
        channels = 1

        def image_to_text(self, image):
            return ""

    class HalfPlugin:
        @hookimpl
        def toksuite_register_encoders(self, register):
            register(HalfDone)

    with pytest.raises(TypeError, match="abstract"):
        HalfDone()
    h = host(HalfPlugin())
    (failure,) = h.failures
    assert failure.stage == "register" and "leaves abstract methods" in failure.message
    for method in ("_build_grammar", "_symbols_to_image", "_token_symbols", "_train", "quantize"):
        assert method in failure.message
    assert h.encoders.get("bpe-rgb")  # the built-ins are untouched
