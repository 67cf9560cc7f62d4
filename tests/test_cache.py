"""The encoded-token cache: hits, invalidation, interrupted writes, damaged entries, mmap reads."""

from __future__ import annotations

import json

import numpy as np
import pytest

from toksuite.cache import (
    TokenSequences,
    cache_info,
    clear_cache,
    default_cache_dir,
    encode_dataset,
    images_fingerprint,
    token_dtype,
)
from toksuite.encoders.pixels import GreyPixelEncoder, RGBPixelEncoder
from toksuite.npyfile import NpyAppender


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (7, 4, 5, 1), dtype=np.uint8)


def entries(tmp_path) -> list:
    root = tmp_path / "cache" / "tokens"
    return sorted(p for p in root.iterdir() if not p.name.startswith(".")) if root.is_dir() else []


def test_default_dir_follows_environment(monkeypatch, tmp_path):
    assert default_cache_dir() == tmp_path / "cache"  # conftest sets TOKSUITE_CACHE_DIR
    monkeypatch.delenv("TOKSUITE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "toksuite"


def test_miss_then_hit_returns_the_same_ids(images, tmp_path):
    encoder = GreyPixelEncoder()
    first = encode_dataset(encoder, images, progress=False)
    second = encode_dataset(encoder, images, progress=False)
    assert not first.hit and second.hit and len(entries(tmp_path)) == 1
    assert len(second) == 7 and second.lengths.tolist() == [20] * 7
    for i, image in enumerate(images):
        np.testing.assert_array_equal(second[i], image.reshape(-1))
        np.testing.assert_array_equal(first[i], second[i])
    np.testing.assert_array_equal(second[-1], images[-1].reshape(-1))


def test_entry_is_compact_and_memory_mapped(images, tmp_path):
    encode_dataset(GreyPixelEncoder(), images, progress=False)
    hit = encode_dataset(GreyPixelEncoder(), images, progress=False)
    assert isinstance(hit.flat, np.memmap) and hit.flat.dtype == np.uint16
    assert hit.offsets.dtype == np.int64 and hit.offsets.tolist() == list(range(0, 141, 20))
    flat = np.load(hit.path / "tokens.npy", mmap_mode="r")
    assert flat.shape == (140,)
    meta = json.loads((hit.path / "meta.json").read_text())
    assert meta["images"] == 7 and meta["tokens"] == 140 and meta["encoder"] == "pixels-grey"


def test_token_dtype_fits_vocab():
    assert token_dtype(256) == np.uint16 and token_dtype(65536) == np.uint16
    assert token_dtype(65537) == np.int32


def test_changed_data_or_encoder_misses(images, tmp_path):
    encode_dataset(GreyPixelEncoder(), images, progress=False)
    changed = images.copy()
    changed[0, 0, 0, 0] ^= 1
    assert not encode_dataset(GreyPixelEncoder(), changed, progress=False).hit
    rgb = np.repeat(images, 3, axis=-1)
    assert not encode_dataset(RGBPixelEncoder(), rgb, progress=False).hit
    assert len(entries(tmp_path)) == 3


def test_changed_encoder_fingerprint_misses(images, monkeypatch):
    encoder = GreyPixelEncoder()
    encode_dataset(encoder, images, progress=False)
    # Any change in the saved state (params, merges, palette) changes the fingerprint.
    monkeypatch.setattr(GreyPixelEncoder, "fingerprint", lambda self: "different-state")
    assert not encode_dataset(encoder, images, progress=False).hit


def test_explicit_fingerprint_and_cache_dir(images, tmp_path):
    where = tmp_path / "elsewhere"
    encode_dataset(
        GreyPixelEncoder(), images, data_fingerprint="test-split", cache_dir=where, progress=False
    )
    again = encode_dataset(
        GreyPixelEncoder(), images, data_fingerprint="test-split", cache_dir=where, progress=False
    )
    assert again.hit and again.path.parent == where / "tokens"
    assert cache_info(where)["entries"] == 1 and clear_cache(where) == 1
    assert cache_info(where)["entries"] == 0


def test_interrupted_write_leaves_no_valid_entry(images, tmp_path, monkeypatch):
    """Killed after the first batch went to disk: no entry, and the next run encodes afresh."""
    real_append = NpyAppender.append
    calls = []

    def crash_after_first_batch(self, values):
        if calls:
            raise KeyboardInterrupt("killed mid-write")
        calls.append(1)
        return real_append(self, values)

    monkeypatch.setattr(NpyAppender, "append", crash_after_first_batch)
    with pytest.raises(KeyboardInterrupt):
        encode_dataset(GreyPixelEncoder(), images, progress=False, batch_size=2)
    monkeypatch.setattr(NpyAppender, "append", real_append)
    assert calls and entries(tmp_path) == []
    assert list((tmp_path / "cache" / "tokens").iterdir()) == []  # the temp dir went too
    again = encode_dataset(GreyPixelEncoder(), images, progress=False)
    assert not again.hit and encode_dataset(GreyPixelEncoder(), images, progress=False).hit


def test_streamed_entry_equals_one_written_at_once(tmp_path):
    """Batch by batch (sizes that do not divide N, ragged lengths) gives the same files as
    ``np.save`` of the whole array, and a memory-mapped result."""
    rng = np.random.default_rng(1)
    ragged = [rng.integers(0, 256, (h, 3, 1), dtype=np.uint8) for h in (1, 4, 2, 5, 3, 2, 1)]
    whole = encode_dataset(GreyPixelEncoder(), ragged, use_cache=False, progress=False)
    for batch_size in (1, 3, 100):
        where = tmp_path / f"c{batch_size}"
        out = encode_dataset(GreyPixelEncoder(), ragged, cache_dir=where, batch_size=batch_size)
        assert isinstance(out.flat, np.memmap) and not out.hit
        assert out.lengths.tolist() == [3, 12, 6, 15, 9, 6, 3]
        np.testing.assert_array_equal(out.flat, whole.flat)
        np.testing.assert_array_equal(out.offsets, whole.offsets)
        saved = tmp_path / "whole.npy"
        np.save(saved, whole.flat)
        assert (out.path / "tokens.npy").read_bytes() == saved.read_bytes()
        assert encode_dataset(GreyPixelEncoder(), ragged, cache_dir=where).hit


@pytest.mark.parametrize("damage", ["truncate", "flip", "drop-meta", "bad-json"])
def test_damaged_entry_is_recomputed(images, tmp_path, damage):
    first = encode_dataset(GreyPixelEncoder(), images, progress=False)
    tokens, meta = first.path / "tokens.npy", first.path / "meta.json"
    data = tokens.read_bytes()
    if damage == "truncate":
        tokens.write_bytes(data[: len(data) - 10])
    elif damage == "flip":
        tokens.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    elif damage == "drop-meta":
        meta.unlink()
    else:
        meta.write_text("{not json")
    again = encode_dataset(GreyPixelEncoder(), images, progress=False)
    assert not again.hit
    for i, image in enumerate(images):
        np.testing.assert_array_equal(again[i], image.reshape(-1))
    assert encode_dataset(GreyPixelEncoder(), images, progress=False).hit


def test_variable_lengths_and_list_input():
    seqs = TokenSequences.from_list([np.array([1, 2, 3]), np.array([], int), np.array([7])], 300)
    assert seqs.lengths.tolist() == [3, 0, 1] and seqs[1].size == 0 and seqs[2].tolist() == [7]
    with pytest.raises(IndexError):
        seqs[3]
    ragged = [np.zeros((2, 3, 1), np.uint8), np.zeros((3, 2, 1), np.uint8)]
    assert images_fingerprint(ragged) != images_fingerprint(ragged[::-1])
    out = encode_dataset(GreyPixelEncoder(), ragged, progress=False)
    assert out.lengths.tolist() == [6, 6]


def test_no_cache_writes_nothing(images, tmp_path):
    out = encode_dataset(GreyPixelEncoder(), images, use_cache=False, progress=False)
    assert not out.hit and entries(tmp_path) == []


def test_cli_cache_info_and_clear(images):
    from typer.testing import CliRunner

    from toksuite.cli import app

    encode_dataset(GreyPixelEncoder(), images, progress=False)
    runner = CliRunner()
    info = runner.invoke(app, ["cache", "info", "--json"])
    assert info.exit_code == 0 and json.loads(info.stdout)["entries"] == 1
    cleared = runner.invoke(app, ["cache", "clear", "--json"])
    assert cleared.exit_code == 0 and json.loads(cleared.stdout)["removed"] == 1
