"""Fixtures: a plugin host that holds this package's hook whether or not autoload is on."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TOKSUITE_QUIET", "1")


@pytest.fixture(autouse=True)
def _host_with_this_plugin(monkeypatch, tmp_path):
    # Saved encoders are loaded by name through the registry, so the registry must know ours.
    from toksuite import registry

    from toksuite_bpe_extras import plugin

    monkeypatch.setenv("TOKSUITE_CACHE_DIR", str(tmp_path / "cache"))
    registry.reset_host(registry.PluginHost(autoload=False, extra_plugins={"bpe-extras": plugin}))
    yield
    registry.reset_host(None)
