"""pixels-grey4: known answers, the encoder contract, robust decode, and plugin registration."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from toksuite.registry import PluginHost
from toksuite.testing import (
    check_constrained_sampling,
    check_encoder,
    check_grammar_accepts,
    check_round_trip,
)

from toksuite_tutorial import grey4
from toksuite_tutorial.grey4 import Grey4Encoder

encoder = Grey4Encoder()


def test_known_answer():
    # 0..15 → level 0, 16 → 1, 255 → 15; levels decode to the middle of their bin.
    image = np.array([[0, 15, 16], [128, 250, 255]], np.uint8)
    np.testing.assert_array_equal(encoder.encode(image), [0, 0, 1, 8, 15, 15])
    np.testing.assert_array_equal(encoder.quantize(image)[..., 0], [[8, 8, 24], [136, 248, 248]])


@settings(max_examples=60, deadline=None)
@given(
    st.tuples(st.integers(1, 12), st.integers(1, 12)).flatmap(lambda hw: arrays(np.uint8, (*hw, 1)))
)
def test_round_trip_is_lossless_on_the_quantisation(image):
    # Ids in range, as many as sequence_length says, decode(encode(x)) == quantize(x), no repair.
    check_round_trip(encoder, image)


def test_the_whole_contract():
    # Round trip, id range, batch, grammar, every kind of malformed sequence, save and load.
    check_encoder(Grey4Encoder)


@pytest.mark.parametrize(
    ("ids", "repairs"),
    [([], 1), ([3] * 5, 1), ([3] * 7, 1), ([-1, 99, 3, 3, 3, 3, 3, 3], 1), ([99], 2)],
)
def test_decode_repairs_malformed_sequences(ids, repairs):
    decoded = encoder.decode_checked(ids, (2, 3))
    assert decoded.image.shape == (2, 3, 1) and decoded.image.dtype == np.uint8
    assert decoded.repairs == repairs and len(decoded.notes) == repairs


def test_the_default_grammar_makes_every_constrained_sample_an_image():
    # A fixed-length encoder gets its grammar from `sequence_length`: any id, H·W tokens.
    for shape in ((1, 1), (2, 3), (8, 8)):
        check_constrained_sampling(encoder, *shape)
    check_grammar_accepts(encoder, np.arange(12, dtype=np.uint8).reshape(3, 4) * 20)


def test_registered_through_the_hook():
    host = PluginHost(autoload=False, extra_plugins={"tutorial": grey4})
    assert host.encoders.get("pixels-grey4") is Grey4Encoder
    assert host.encoders.source("pixels-grey4") == "tutorial"
    assert not host.failures


def test_entry_point_is_declared():
    # What `pip install` wrote: toksuite finds the plugin through this without being told.
    points = {ep.name: ep.value for ep in metadata.entry_points(group="toksuite")}
    assert points.get("tutorial") == "toksuite_tutorial.grey4"
    host = PluginHost(autoload=True)
    assert host.encoders.source("pixels-grey4") == "tutorial"
