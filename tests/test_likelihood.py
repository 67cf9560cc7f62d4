"""The one likelihood: code length units, PSNR, quantisation fingerprints and the codec anchors."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from toksuite.likelihood import (
    code_length_units,
    codec_anchors,
    codec_bytes,
    fingerprint,
    heldout_report,
    psnr_db,
    psnr_from_mse,
    quantized,
)
from toksuite.registry import create_encoder


def test_code_length_units_by_hand():
    units = code_length_units(np.array([90.0, 110.0]), (2, 5, 3))
    assert units == {"bits_per_image": 100.0, "bits_per_pixel": 10.0, "bits_per_dim": 10 / 3}
    assert code_length_units(np.array([64.0]), (8, 8))["bits_per_dim"] == 1.0  # grey: C = 1


def test_psnr_is_none_when_lossless_and_known_for_a_constant_error():
    x = np.full((2, 4, 4, 1), 100, np.uint8)
    assert psnr_db(x, x.copy()) is None
    assert psnr_db(x, x + 5) == pytest.approx(10 * math.log10(255**2 / 25))


def test_one_psnr_from_a_mean_squared_error():
    assert psnr_from_mse(0) is None and psnr_from_mse(0.0) is None
    assert psnr_from_mse(255**2) == 0.0 and psnr_from_mse(2.55**2) == pytest.approx(40.0)
    x = np.full((3, 3), 100, np.uint8)  # one grey image, or bare pixels: any matching shapes
    assert psnr_db(x, x + 5) == psnr_from_mse(25)
    assert psnr_db(x[:, :1], x[:, :1]) is None


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(0, 2**31 - 1))
def test_pixels_with_levels_quantise_exactly_as_image_bpe(h, w, seed):
    """`pixels-* levels=10` is BPE's matched control: the same images, grey and RGB."""
    rng = np.random.default_rng(seed)
    for channels, pixels, bpe in ((1, "pixels-grey", "bpe-grey"), (3, "pixels-rgb", "bpe-rgb")):
        x = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
        control = create_encoder(pixels, levels=10)
        assert np.array_equal(control.quantize(x), create_encoder(bpe).quantize(x))
        ids = control.encode(x)
        assert len(ids) == h * w * channels and ids.max() < control.vocab_size == 10
        assert np.array_equal(control.decode(ids, (h, w)), control.quantize(x))
        lossless = create_encoder(pixels)  # the default 256 levels: the values themselves
        assert np.array_equal(lossless.encode(x), x.reshape(-1))
        assert np.array_equal(lossless.quantize(x), x)


def test_pixels_levels_out_of_range_is_one_clear_error():
    from toksuite.errors import EncoderParamError

    with pytest.raises(EncoderParamError, match="levels must be in 2..256, got 1"):
        create_encoder("pixels-rgb", levels=1)


def test_fingerprints_tell_which_encoders_model_the_same_images():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    prints = {
        label: fingerprint(quantized(create_encoder(name, **params), x))
        for label, name, params in (
            ("pixels-rgb", "pixels-rgb", {}),
            ("pixels-rgb levels=10", "pixels-rgb", {"levels": 10}),
            ("bpe-rgb", "bpe-rgb", {}),
        )
    }
    assert prints["pixels-rgb levels=10"] == prints["bpe-rgb"] != prints["pixels-rgb"]
    assert fingerprint(x) == prints["pixels-rgb"]  # lossless: the images themselves


@pytest.mark.parametrize("codec, fmt", [("png", "PNG"), ("webp", "WEBP")])
@pytest.mark.parametrize("channels", [1, 3])
def test_codec_anchors_are_lossless_files_of_the_quantised_images(codec, fmt, channels):
    rng = np.random.default_rng(channels)
    image = rng.integers(0, 256, (12, 10, channels), dtype=np.uint8)
    size = codec_bytes(image, codec)
    pil = Image.fromarray(image[..., 0] if channels == 1 else image)
    buffer = io.BytesIO()
    options = {"compress_level": 9} if codec == "png" else {"lossless": True, "method": 6}
    pil.save(buffer, format=fmt, quality=100, **options)
    decoded = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert(pil.mode))
    assert np.array_equal(decoded.reshape(image.shape), image)  # lossless
    assert size == len(buffer.getvalue())
    bits = codec_anchors(image[None])[codec]
    assert bits["bits_per_image"] == 8 * size
    assert bits["bits_per_dim"] == pytest.approx(8 * size / (12 * 10 * channels))


def test_heldout_report_joins_rate_and_distortion():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (3, 4, 4, 1), dtype=np.uint8)
    report = heldout_report(create_encoder("bpe-grey"), x, np.array([10.0, 20.0, 30.0]))
    assert report["bits_per_image"] == 20.0 and report["bits_per_pixel"] == 20.0 / 16
    assert report["psnr_db"] is not None and report["psnr_db"] > 20
    assert set(report["anchors"]) == {"png", "webp"}
    assert heldout_report(create_encoder("pixels-grey"), x, np.ones(3))["psnr_db"] is None


def test_the_encode_command_reports_the_same_psnr(tmp_path):
    """`toksuite encode` prints likelihood's PSNR of the one image: null when lossless."""
    import json

    from PIL import Image
    from typer.testing import CliRunner

    from toksuite.cli import app

    picture = np.random.default_rng(0).integers(0, 256, (9, 7), dtype=np.uint8)
    Image.fromarray(picture).save(tmp_path / "p.png")
    for params, lossless in (([], True), (["-p", "levels=10"], False)):
        args = ["encode", str(tmp_path / "p.png"), "-e", "pixels-grey", *params]
        result = CliRunner().invoke(app, [*args, "-o", str(tmp_path / "t.json"), "--json"])
        assert result.exit_code == 0, result.output
        reported = json.loads(result.stdout)["psnr_db"]
        encoder = create_encoder("pixels-grey", **({} if lossless else {"levels": 10}))
        image = picture[..., None]
        assert reported == psnr_db(image, encoder.quantize(image))
        assert (reported is None) == lossless
