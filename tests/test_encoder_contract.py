"""The encoder contract, checked for every registered encoder: the built-ins and every installed
plugin's (the example plugins are installed where the tests run).

decode(encode(x)) == quantize(x) bit for bit; ids in [0, vocab_size); decode of malformed
sequences returns the requested shape and counts repairs; save/load keeps the ids. The checks are
`toksuite.testing`'s, the ones plugin authors run on their own encoders.
"""

from __future__ import annotations

import functools
from importlib import metadata

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from toksuite.encoders.pixels import GreyPixelEncoder
from toksuite.registry import PluginHost
from toksuite.testing import (
    check_constrained_sampling,
    check_decode_repairs,
    check_encoder,
    check_grammar_accepts,
    check_round_trip,
    check_save_load,
    smooth_images,
)

# Autoload on, whatever the environment says: installed plugins are checked like built-ins.
HOST = PluginHost(autoload=True)
NAMES = HOST.encoders.names()
# Small settings so that fitting takes a moment; the contract does not depend on size.
SMALL = {"vocab_size": 1100, "k": 16, "sample_pixels": 20_000}


@functools.cache
def fitted(name: str):
    cls = HOST.encoders.get(name)
    params = {s.name: SMALL[s.name] for s in cls.param_specs() if s.name in SMALL}
    # Smooth-ish images, so that BPE has pairs to merge and k-means has structure to find.
    return cls(**params).fit(smooth_images(cls.channels), seed=0)


def images_for(channels: int):
    shapes = st.tuples(st.integers(1, 9), st.integers(1, 9)).map(lambda hw: (*hw, channels))
    return shapes.flatmap(lambda shape: arrays(np.uint8, shape))


def on_random_images(check, encoder, examples: int) -> None:
    """``check(encoder, image)`` on random images from 1×1 to 9×9 (hypothesis)."""

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(images_for(encoder.channels))
    def run(image):
        check(encoder, image)

    run()


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_and_id_range(name):
    on_random_images(check_round_trip, fitted(name), examples=40)


@pytest.mark.parametrize("name", NAMES)
def test_batch_equals_single(name):
    encoder = fitted(name)
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (5, 4, encoder.channels), dtype=np.uint8) for _ in range(4)]
    for single, batched in zip(
        map(encoder.encode, images), encoder.encode_batch(images), strict=True
    ):
        np.testing.assert_array_equal(single, batched)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(6, 5), (1, 1), (3, 8)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_malformed_decode_repairs(name, shape):
    # Empty, negative, huge, short, long, very long … (`toksuite.testing.MALFORMED`).
    check_decode_repairs(fitted(name), shape)


@pytest.mark.parametrize("name", NAMES)
def test_save_load_keeps_ids(name, tmp_path):
    encoder = fitted(name)
    image = np.random.default_rng(2).integers(0, 256, (7, 6, encoder.channels), dtype=np.uint8)
    check_save_load(encoder, image, tmp_path)
    assert not list(tmp_path.glob(".*tmp"))  # nothing half-written left behind


@pytest.mark.parametrize("name", NAMES)
def test_check_encoder_passes(name):
    # The whole contract in one call, as a plugin's tests run it.
    assert check_encoder(fitted(name)) is fitted(name)


def test_installed_plugins_are_among_the_checked():
    assert not HOST.failures, [f.line() for f in HOST.failures]
    installed = {ep.name for ep in metadata.entry_points(group="toksuite")}
    for plugin, names in (
        ("tutorial", {"pixels-grey4"}),
        ("bpe-extras", {"bpe-rgb-snake", "bpe-rgb-hilbert"}),
    ):
        if plugin in installed:
            assert names <= set(NAMES), f"{plugin} is installed but not checked"


class _Lossy(GreyPixelEncoder):
    """Breaks the round trip: decode is one grey level off quantize."""

    name = "lossy-test"

    def quantize(self, image):
        return super().quantize(image) ^ 1


class _Fragile(GreyPixelEncoder):
    """Breaks robust decode: raises on an id out of range."""

    name = "fragile-test"

    def decode_checked(self, ids, shape):
        if (self.ids_array(ids) >= self.vocab_size).any():
            raise IndexError("id out of range")
        return super().decode_checked(ids, shape)


@pytest.mark.parametrize(("cls", "error"), [(_Lossy, AssertionError), (_Fragile, IndexError)])
def test_check_encoder_catches_a_broken_encoder(cls, error):
    with pytest.raises(error):
        check_encoder(cls)


# ---------------------------------------------------------------------------- the grammar
SHAPES = [(1, 1), (3, 5), (6, 4), (8, 8)]


@pytest.mark.parametrize("name", NAMES)
def test_encode_output_follows_the_grammar_and_covers_every_pixel(name):
    on_random_images(check_grammar_accepts, fitted(name), examples=30)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_constrained_sampling_from_random_scores_never_needs_a_repair(name, shape):
    check_constrained_sampling(fitted(name), *shape)
