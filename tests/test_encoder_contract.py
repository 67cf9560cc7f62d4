"""The encoder contract, checked for every registered encoder (built-in or plugin).

decode(encode(x)) == quantize(x) bit for bit; ids in [0, vocab_size); decode of malformed
sequences returns the requested shape and counts repairs; save/load keeps the ids.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from toksuite.registry import PluginHost, create_encoder, load_encoder
from toksuite.testing import check_constrained_sampling, check_grammar_accepts

HOST = PluginHost(autoload=False)
NAMES = HOST.encoders.names()
# Small settings so that fitting takes a moment; the contract does not depend on size.
SMALL = {"vocab_size": 1100, "k": 16, "sample_pixels": 20_000}


@functools.cache
def fitted(name: str):
    cls = HOST.encoders.get(name)
    params = {s.name: SMALL[s.name] for s in cls.param_specs() if s.name in SMALL}
    encoder = create_encoder(name, **params)
    rng = np.random.default_rng(0)
    # Smooth-ish images, so that BPE has pairs to merge and k-means has structure to find.
    base = rng.integers(0, 256, (40, 1, 1, cls.channels), dtype=np.uint8)
    noise = rng.integers(0, 40, (40, 12, 12, cls.channels))
    images = np.clip(base + noise, 0, 255).astype(np.uint8)
    return encoder.fit(images, seed=0)


def images_for(channels: int):
    shapes = st.tuples(st.integers(1, 9), st.integers(1, 9)).map(lambda hw: (*hw, channels))
    return shapes.flatmap(lambda shape: arrays(np.uint8, shape))


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_and_id_range(name):
    encoder = fitted(name)

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(images_for(encoder.channels))
    def check(image):
        ids = encoder.encode(image)
        assert ids.ndim == 1 and np.issubdtype(ids.dtype, np.integer)
        assert ids.size and ids.min() >= 0 and ids.max() < encoder.vocab_size
        decoded = encoder.decode_checked(ids, image.shape)
        assert decoded.repairs == 0
        assert decoded.image.dtype == np.uint8
        np.testing.assert_array_equal(decoded.image, encoder.quantize(image))
        fixed = encoder.sequence_length(*image.shape[:2])
        assert fixed is None or fixed == ids.size

    check()


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
@pytest.mark.parametrize(
    "ids",
    [[], [-1, -5], [10**9], list(range(3)), list(range(500)), [0] * 1000],
    ids=["empty", "negative", "huge", "short", "long", "very-long"],
)
def test_malformed_decode_repairs(name, ids):
    encoder = fitted(name)
    decoded = encoder.decode_checked(np.array(ids, dtype=np.int64), (6, 5))
    assert decoded.image.shape == (6, 5, encoder.channels)
    assert decoded.image.dtype == np.uint8
    if ids in ([], [-1, -5], [10**9]):
        assert decoded.repairs > 0 and decoded.notes


@pytest.mark.parametrize("name", NAMES)
def test_save_load_keeps_ids(name, tmp_path):
    encoder = fitted(name)
    image = np.random.default_rng(2).integers(0, 256, (7, 6, encoder.channels), dtype=np.uint8)
    encoder.save(tmp_path / name)
    loaded = load_encoder(tmp_path / name)
    assert type(loaded) is type(encoder)
    assert loaded.get_params() == encoder.get_params()
    np.testing.assert_array_equal(loaded.encode(image), encoder.encode(image))
    assert loaded.fingerprint() == encoder.fingerprint()
    assert not list(tmp_path.glob(".*tmp"))  # nothing half-written left behind


# ---------------------------------------------------------------------------- the grammar
SHAPES = [(1, 1), (3, 5), (6, 4), (8, 8)]


@pytest.mark.parametrize("name", NAMES)
def test_encode_output_follows_the_grammar_and_covers_every_pixel(name):
    encoder = fitted(name)

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    @given(images_for(encoder.channels))
    def check(image):
        check_grammar_accepts(encoder, image)

    check()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_constrained_sampling_from_random_scores_never_needs_a_repair(name, shape):
    check_constrained_sampling(fitted(name), *shape)
