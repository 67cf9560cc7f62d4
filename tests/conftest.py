"""Shared fixtures. Entry-point autoload is off in tests: plugins are registered explicitly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKSUITE_DISABLE_PLUGIN_AUTOLOAD", "1")
os.environ.setdefault("TOKSUITE_QUIET", "1")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the clone; tests that need it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent (real images live beside the project's clone)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The test models are tiny: they gain nothing from threads, and on busy cores lose a lot."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch, tmp_path):
    """Each test gets a fresh plugin host and its own token-cache directory."""
    from toksuite import registry

    registry.reset_host(None)
    monkeypatch.setenv("TOKSUITE_CACHE_DIR", str(tmp_path / "cache"))
    yield
    registry.reset_host(None)


# Fixtures that train a model: a test that asks for one is slow, whatever its own body does.
TRAINED_RUN_FIXTURES = {"run_dir", "base_run"}


def pytest_collection_modifyitems(config, items):
    """``pytest -m "not slow"`` is the fast loop only if every test that trains says so."""
    unmarked = [
        item.nodeid
        for item in items
        if TRAINED_RUN_FIXTURES & set(getattr(item, "fixturenames", ()))
        and item.get_closest_marker("slow") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "tests that use a trained run must be marked @pytest.mark.slow: " + ", ".join(unmarked)
        )
