"""Run holding (``run_tolerance``) and the built-in ``bpe-palette``: known answers, kernel = HF."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from toksuite.encoders import bpe_kernel
from toksuite.encoders.bpe import BPEGreyEncoder, BPERGBEncoder
from toksuite.encoders.bpe_palette import BPEPaletteEncoder
from toksuite.encoders.symbols import Quantizer
from toksuite.errors import EncoderParamError, ManifestError
from toksuite.registry import load_encoder


def smooth_faces(n: int = 30, size: int = 16, seed: int = 0) -> np.ndarray:
    """Gradients with noise: colours that sit between two symbols flicker without holding."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, size)
    images = []
    for _ in range(n):
        base = rng.integers(30, 200, 3)
        slope = rng.integers(-40, 40, 3)
        grid = base + slope * (ramp[:, None, None] + ramp[None, :, None])
        images.append(grid + rng.normal(0, 6, (size, size, 3)))
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def test_holding_by_hand():
    # Two grey levels (step 128): bin centres 63 and 191. Raster scan of one row.
    quantizer = Quantizer(2, 1)
    row = np.array([0, 120, 130, 200], np.uint8).reshape(1, 1, 4, 1)
    colours = quantizer.colours
    plain = bpe_kernel.scan_symbols(row, quantizer)
    assert plain.tolist() == [[0, 0, 1, 1]]
    # 130: its own centre costs (130-191)² = 3721, keeping 63 costs (130-63)² = 4489: 768 more.
    held = bpe_kernel.scan_symbols(row, quantizer, colours=colours, tolerance=768)
    assert held.tolist() == [[0, 0, 0, 1]]  # 200 would cost 18,769 - 81 more: it switches
    assert bpe_kernel.scan_symbols(row, quantizer, colours=colours, tolerance=767).tolist() == [
        [0, 0, 1, 1]
    ]
    # Whole-number errors: 767.9 holds no more than 767; any huge tolerance holds everything.
    for tolerance, expected in (
        (767.9, [0, 0, 1, 1]),
        (768.5, [0, 0, 0, 1]),
        (1e300, [0, 0, 0, 0]),
    ):
        assert bpe_kernel.scan_symbols(
            row, quantizer, colours=colours, tolerance=tolerance
        ).tolist() == [expected]


def test_holding_follows_the_scan():
    # A snake reads the second row right to left: 120 then 130, where a raster reads 130 then 120.
    quantizer = Quantizer(2, 1)
    image = np.array([[0, 200], [130, 120]], np.uint8)[None, ..., None]
    held = {"colours": quantizer.colours, "tolerance": 800}
    raster = bpe_kernel.scan_symbols(image, quantizer, **held)
    snake = bpe_kernel.scan_symbols(image, quantizer, np.array([0, 1, 3, 2]), **held)
    assert raster.tolist() == [[0, 1, 1, 0]]  # 120 would cost 1,792 more under 191: it switches
    assert snake.tolist() == [[0, 1, 0, 0]]  # 130 costs 768 more under 63: it is held


def test_serial_and_parallel_kernels_agree(monkeypatch):
    images = smooth_faces(12)
    encoder = BPEPaletteEncoder(vocab_size=400, k=16, sample_pixels=5000).fit(images)
    serial = [encoder.encode(image) for image in images]
    monkeypatch.setattr(bpe_kernel, "PARALLEL_MIN_IMAGES", 1)
    parallel = encoder.encode_batch(images)
    assert all(np.array_equal(a, b) for a, b in zip(serial, parallel, strict=True))


@pytest.mark.parametrize(
    "encoder",
    [
        BPEPaletteEncoder(vocab_size=400, k=16, sample_pixels=5000),
        BPEPaletteEncoder(vocab_size=400, k=16, sample_pixels=5000, scan="raster", rows="joined"),
        BPERGBEncoder(vocab_size=1100, run_tolerance=300, scan="hilbert"),
        BPEGreyEncoder(vocab_size=300, run_tolerance=100, rows="separator"),
    ],
    ids=["palette", "palette-raster-joined", "rgb-held", "grey-held-separator"],
)
def test_kernel_gives_hf_ids_and_decodes_to_quantize(encoder):
    images = smooth_faces(30)
    if encoder.channels == 1:
        images = images[..., :1]
    encoder.fit(images[:20])
    held_out = images[20:]
    ids = encoder.encode_batch(held_out)
    texts = [encoder.image_to_text(image) for image in held_out]
    hf = [np.asarray(e.ids) for e in encoder.tokenizer_.encode_batch(texts)]
    assert all(np.array_equal(a, b) for a, b in zip(ids, hf, strict=True))
    for image, image_ids in zip(held_out, ids, strict=True):
        np.testing.assert_array_equal(
            encoder.decode(image_ids, image.shape), encoder.quantize(image)
        )


def test_holding_shortens_sequences_and_costs_fidelity():
    images = smooth_faces(40)
    tokens, errors = [], []
    for tolerance in (0, 400):
        encoder = BPEPaletteEncoder(
            vocab_size=400, k=32, sample_pixels=10_000, run_tolerance=tolerance
        ).fit(images[:30])
        tokens.append(sum(len(ids) for ids in encoder.encode_batch(images[30:])))
        quantised = np.stack([encoder.quantize(x) for x in images[30:]]).astype(float)
        errors.append(np.mean((quantised - images[30:]) ** 2))
    assert tokens[1] < 0.9 * tokens[0]
    assert errors[1] > errors[0]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays(np.uint8, st.tuples(st.integers(1, 9), st.integers(1, 9), st.just(3))))
def test_any_image_round_trips_through_a_held_palette(image):
    np.testing.assert_array_equal(
        PALETTE.decode(PALETTE.encode(image), image.shape), PALETTE.quantize(image)
    )


PALETTE = BPEPaletteEncoder(vocab_size=400, k=16, sample_pixels=5000).fit(smooth_faces(20))


def test_saved_palette_is_plain_centroids(tmp_path):
    saved = PALETTE.save(tmp_path / "enc")
    centroids = np.load(saved / "centroids.npy", allow_pickle=False)
    assert centroids.shape == (16, 3)
    loaded = load_encoder(saved)
    image = smooth_faces(1, seed=9)[0]
    np.testing.assert_array_equal(loaded.encode(image), PALETTE.encode(image))
    assert loaded.fingerprint() == PALETTE.fingerprint()
    (saved / "centroids.npy").unlink()
    with pytest.raises(ManifestError, match="centroids.npy"):
        load_encoder(saved)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"run_tolerance": -1}, "run_tolerance must be a number >= 0"),
        ({"k": 0}, "k must be an integer >= 1"),
        ({"k": 64, "alphabet": "all", "vocab_size": 63}, "smaller than the 64 symbols of k=64"),
    ],
)
def test_bad_parameters_name_the_value(params, message):
    with pytest.raises(EncoderParamError, match=message):
        BPEPaletteEncoder(**params)
