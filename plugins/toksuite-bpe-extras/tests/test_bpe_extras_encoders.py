"""The encoder contract for bpe-rgb-snake and bpe-rgb-hilbert."""

from __future__ import annotations

from importlib import metadata

import numpy as np
import pytest
from bpe_extras_helpers import fitted, smooth_images
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from toksuite.encoders import Quantizer
from toksuite.errors import EncoderParamError, NotFittedError
from toksuite.registry import PluginHost, create_encoder, get_encoder_class
from toksuite.testing import (
    check_constrained_sampling,
    check_decode_repairs,
    check_encoder,
    check_grammar_accepts,
    check_round_trip,
    check_save_load,
)

from toksuite_bpe_extras.scan_bpe import HilbertBPEEncoder, SnakeBPEEncoder

# (name, params): small vocabularies so that fitting takes a moment.
CASES = [
    ("bpe-rgb-snake", {"vocab_size": 1100}),
    ("bpe-rgb-hilbert", {"vocab_size": 1100}),
    ("bpe-rgb-hilbert", {"vocab_size": 1100, "segment": 0}),
    ("bpe-rgb-hilbert", {"vocab_size": 1100, "segment": 7}),
]
IDS = [f"{name}-{'-'.join(f'{k}{v}' for k, v in p.items())}" for name, p in CASES]

# Odd sizes on purpose: 1×1, 1×N, N×1, non-square, sides that are not powers of two.
images = st.tuples(st.integers(1, 13), st.integers(1, 13)).flatmap(
    lambda hw: arrays(np.uint8, (*hw, 3))
)


def on_random_images(check, encoder, examples: int) -> None:
    """``check(encoder, image)`` on `images` (hypothesis)."""

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(images)
    def run(image):
        check(encoder, image)

    run()


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_lossless_on_its_quantisation(name, params):
    on_random_images(check_round_trip, fitted(name, **params), examples=50)


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_the_whole_contract(name, params):
    # toksuite's contract check, as for its built-in encoders.
    check_encoder(fitted(name, **params))


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_grammar_accepts_encode_and_constrained_samples_decode_clean(name, params):
    encoder = fitted(name, **params)
    on_random_images(check_grammar_accepts, encoder, examples=20)
    for shape in ((1, 1), (5, 3), (8, 8)):
        check_constrained_sampling(encoder, *shape)


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_merges_shorten_smooth_images(name, params):
    encoder = fitted(name, **params)
    image = smooth_images()[0]  # a training image: its frequent pairs were merged
    assert len(encoder.encode(image)) < 12 * 12


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_batch_equals_single(name, params):
    encoder = fitted(name, **params)
    rng = np.random.default_rng(1)
    batch = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(5, 4), (1, 1), (3, 9)]]
    for single, batched in zip(
        map(encoder.encode, batch), encoder.encode_batch(batch), strict=True
    ):
        np.testing.assert_array_equal(single, batched)


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_decode_never_raises_and_counts_repairs(name, params):
    encoder = fitted(name, **params)
    check_decode_repairs(encoder)  # empty, negative, huge, short, long … (MALFORMED)
    # 1000 tokens of at least one pixel each cannot fit 6×5 pixels: cut, and counted.
    decoded = encoder.decode_checked(np.zeros(1000, np.int64), (6, 5))
    assert decoded.image.shape == (6, 5, 3) and decoded.repairs == len(decoded.notes) > 0


@pytest.mark.parametrize(("name", "params"), CASES, ids=IDS)
def test_save_load_keeps_ids(name, params, tmp_path):
    encoder = fitted(name, **params)
    image = np.random.default_rng(2).integers(0, 256, (7, 6, 3), dtype=np.uint8)
    saved = encoder.save(tmp_path / "enc")
    files = sorted(p.relative_to(saved).as_posix() for p in saved.rglob("*") if p.is_file())
    assert "tokenizer.json" in files and "toksuite.json" in files
    assert all(f.endswith((".json", ".npy")) for f in files)  # plain files, no pickle
    check_save_load(encoder, image, tmp_path / "again")  # load_encoder: same class, params, ids


def test_scan_quantisation_is_bpe_rgbs():
    # Same symbols as the built-in bpe-rgb: the scan order is the only difference.
    image = np.array([[[150, 112, 255], [0, 26, 52]]], np.uint8)
    encoder = fitted("bpe-rgb-hilbert", vocab_size=1100)
    np.testing.assert_array_equal(encoder.quantize(image), Quantizer(10, 3).quantize(image))
    assert encoder.image_to_text(image) == "\ue225\ue00c"  # symbols 549 and 12 (0·100+1·10+2)


def test_segments_cut_the_text():
    encoder = fitted("bpe-rgb-snake", vocab_size=1100)
    image = np.zeros((3, 4, 3), np.uint8)
    assert encoder.image_to_text(image).split("\n") == ["\ue000" * 4] * 3  # one word per row


def test_snake_and_hilbert_differ_from_raster_only_in_order():
    image = smooth_images(1, 9, seed=3)[0]
    snake, hilbert = (
        fitted("bpe-rgb-snake", vocab_size=1100),
        fitted("bpe-rgb-hilbert", vocab_size=1100),
    )
    assert sorted(snake.image_to_text(image)) == sorted(hilbert.image_to_text(image))


@pytest.mark.parametrize(
    ("cls", "params", "message"),
    [
        (SnakeBPEEncoder, {"vocab_size": 999}, "smaller than its 1000 pixel symbols"),
        (HilbertBPEEncoder, {"levels": 1}, "levels must be in 2..256"),
        (HilbertBPEEncoder, {"segment": -1}, "segment must be None or >= 0"),
    ],
)
def test_bad_parameters_name_the_value(cls, params, message):
    with pytest.raises(EncoderParamError, match=message):
        cls(**params)


def test_unfitted_encoder_says_so():
    with pytest.raises(NotFittedError, match="not fitted"):
        HilbertBPEEncoder(vocab_size=1100).encode(np.zeros((2, 2, 3), np.uint8))


def test_vocab_size_is_a_sweepable_parameter():
    # `toksuite squeeze --vocab` sweeps the registered encoders whose parameters name
    # `vocab_size` (toksuite's own tests check that `squeeze` reads them so).
    for name in ("bpe-rgb-snake", "bpe-rgb-hilbert"):
        assert "vocab_size" in {s.name for s in get_encoder_class(name).param_specs()}
    encoder = create_encoder("bpe-rgb-hilbert", **HilbertBPEEncoder.parse_params(["segment=7"]))
    assert encoder.segment == 7


def test_entry_point_registers_both():
    points = {ep.name: ep.value for ep in metadata.entry_points(group="toksuite")}
    assert points.get("bpe-extras") == "toksuite_bpe_extras.plugin"
    host = PluginHost(autoload=True)
    for name in ("bpe-rgb-snake", "bpe-rgb-hilbert"):
        assert host.encoders.source(name) == "bpe-extras"
    assert not [f for f in host.failures if f.plugin == "bpe-extras"]


def test_saved_tokenizer_opens_in_transformers_without_toksuite(tmp_path):
    from transformers import PreTrainedTokenizerFast

    encoder = fitted("bpe-rgb-hilbert", vocab_size=1100)
    image = smooth_images()[3]
    saved = encoder.save(tmp_path / "enc")
    hf = PreTrainedTokenizerFast(tokenizer_file=str(saved / "tokenizer.json"))
    ids = hf(encoder.image_to_text(image), add_special_tokens=False)["input_ids"]
    assert ids == encoder.encode(image).tolist()
