"""The one bound on image sizes: absurd sizes fail at once with one line, before allocating."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from toksuite.cli import app
from toksuite.data import LoadOptions
from toksuite.encoders.pixels import RGBPixelEncoder
from toksuite.errors import ConfigError, DataError
from toksuite.limits import MAX_PIXELS, check_size

runner = CliRunner()
HUGE = "100000"  # 10^10 pixels: without the bound each of these grows until memory runs out


def run(*args: str):
    return runner.invoke(app, list(args))


def one_error_line(result, *words: str) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_check_size_is_inclusive_at_the_bound():
    check_size(8000, 8000, "x")  # exactly MAX_PIXELS
    assert MAX_PIXELS == 8000 * 8000
    with pytest.raises(ConfigError, match=r"x: 8000×8001 is 64,008,000 pixels, over .*64,000,000"):
        check_size(8000, 8001, "x")
    with pytest.raises(DataError):
        check_size(1, MAX_PIXELS + 1, "x", DataError)


def test_load_options_refuse_huge_sizes():
    with pytest.raises(ConfigError, match="--resolution"):
        LoadOptions(resolution=(100_000, 100_000))
    with pytest.raises(ConfigError, match="--crop"):
        LoadOptions(crop=(0, 0, 100_000, 100_000))
    assert LoadOptions(resolution=(8000, 8000)).resolution == (8000, 8000)


def test_squeeze_huge_resolution(tmp_path):
    result = run(
        "squeeze", "-e", "pixels-rgb", "--data", "digits", "--resolution", HUGE,
        "--limit", "1", "--plot", str(tmp_path / "s.png"),
    )  # fmt: skip
    one_error_line(result, "--resolution", "100000×100000", "64,000,000")
    assert not (tmp_path / "s.png").exists()


def test_encode_huge_resolution(tmp_path):
    image = tmp_path / "i.png"
    Image.new("RGB", (8, 8)).save(image)
    out = tmp_path / "t.json"
    result = run("encode", str(image), "-e", "pixels-rgb", "-r", HUGE, "-o", str(out))
    one_error_line(result, "--resolution", "100000×100000")
    assert not out.exists()


def test_decode_huge_shape_option(tmp_path):
    tokens = tmp_path / "t.json"
    tokens.write_text("[1, 2, 3]")
    out = tmp_path / "o.png"
    result = run("decode", str(tokens), "-e", "pixels-rgb", "--shape", f"{HUGE}x{HUGE}", "-o",
                 str(out))  # fmt: skip
    one_error_line(result, "decode shape", "100000×100000", "64,000,000")
    assert not out.exists()


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ({"shape": "abc", "ids": [1, 2]}, ["'shape' must be [H, W]"]),
        ({"shape": [2, 0], "ids": [1, 2]}, ["'shape' must be [H, W]"]),
        ({"shape": [2, True], "ids": [1, 2]}, ["'shape' must be [H, W]"]),
        ({"shape": [100_000, 100_000, 3], "ids": [1]}, ["'shape'", "100000×100000"]),
        ({"shape": [2, 2, 3], "ids": [1, 2**70]}, [f"id {2**70} at position 1", "64 bits"]),
        ([-(2**64)], [f"id {-(2**64)} at position 0"]),
    ],
)
def test_decode_bad_token_files(tmp_path, doc, words):
    tokens = tmp_path / "t.json"
    tokens.write_text(json.dumps(doc))
    out = tmp_path / "o.png"
    shape = [] if isinstance(doc, dict) else ["--shape", "2x2"]  # a bare list has no shape
    result = run("decode", str(tokens), "-e", "pixels-rgb", *shape, "-o", str(out))
    line = one_error_line(result, *words)
    assert str(tokens) in line
    assert not out.exists()


def test_flops_huge_resolution():
    result = run("flops", "-e", "pixels-rgb", "-r", f"32,{HUGE}")
    one_error_line(result, "--resolution", "100000×100000")


def test_library_decode_and_ids():
    enc = RGBPixelEncoder()
    with pytest.raises(DataError, match="decode shape"):
        enc.decode_checked([1, 2], (100_000, 100_000))
    with pytest.raises(DataError, match="bad image shape 'abc'"):
        enc.decode_checked([1, 2], "abc")
    # Ids beyond 64 bits from a model or a list are not integer-like: repaired, not a crash.
    decoded = enc.decode_checked([2**70, 5], (1, 1))
    assert decoded.image.shape == (1, 1, 3) and decoded.repairs > 0
    assert np.asarray(decoded.image).dtype == np.uint8
