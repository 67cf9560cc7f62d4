"""`toksuite compress`: a run's model drives a real range coder; files match the reported bits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from toksuite.cli import app
from toksuite.compress import HEADER

runner = CliRunner()
pytestmark = pytest.mark.slow  # every test reads the run the module's fixture trains


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("compress") / "run"
    args = ["pretrain", "--out", str(run), "--data", "digits", "--limit", "100", "--epochs", "1"]
    args += ["--encoder", "bpe-grey", "-p", "vocab_size=300", "--batch-size", "32", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return run


def test_files_decode_bit_exact_and_match_the_runs_bits(run_dir, tmp_path):
    result = runner.invoke(
        app, ["compress", "--run", str(run_dir), "--heldout", "4", "-o", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["images"]
    assert len(rows) == 4
    for row in rows:
        assert row["round_trip"] is True
        # the coder's probabilities are the evaluation's: the same code length
        assert row["code_length_bits"] == pytest.approx(row["heldout_bits"], rel=1e-4)
        # a range coder spends the code length, rounded up to its 32-bit words, plus a word
        assert row["code_length_bits"] <= row["payload_bits"]
        assert row["payload_bits"] <= 1.01 * row["code_length_bits"] + 64
        assert row["file_bytes"] == HEADER.size + row["payload_bits"] // 8

    back = runner.invoke(
        app,
        ["decompress", str(tmp_path / "heldout-00002.tsz"), "--run", str(run_dir)]
        + ["-o", str(tmp_path / "png"), "--json"],
    )
    assert back.exit_code == 0, back.output
    from PIL import Image

    from toksuite.data import LoadOptions, load_dataset
    from toksuite.registry import load_encoder

    data = load_dataset("digits", LoadOptions(limit=100, channels=1, progress=False))
    expected = load_encoder(run_dir / "encoder").quantize(data.x_test[2])[..., 0]
    decoded = np.asarray(Image.open(tmp_path / "png" / "heldout-00002.png"))
    assert np.array_equal(decoded, expected)


def test_an_image_file_round_trips_and_one_too_long_is_refused(run_dir, tmp_path):
    from PIL import Image

    from toksuite.data import LoadOptions, load_dataset

    digit = load_dataset("digits", LoadOptions(limit=100, channels=1, progress=False)).x_test[5]
    Image.fromarray(digit[..., 0]).save(tmp_path / "d.png")
    result = runner.invoke(
        app, ["compress", str(tmp_path / "d.png"), "--run", str(run_dir), "-o", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "d.tsz").is_file() and "yes" in result.stdout  # decoded back, verified

    noise = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    result = runner.invoke(app, ["compress", str(tmp_path / "noise.png"), "--run", str(run_dir)])
    assert result.exit_code == 1 and "more than the run's context" in result.output


@pytest.mark.parametrize(
    "content, message",
    [
        (b"garbage", "not a toksuite compressed image"),
        (b"TSZ1\x08\x00\x08\x00\x03", "corrupt, or not written by this run"),  # 3 channels
        (b"TSZ1\xff\xff\xff\xff\x01", "corrupt, or not written by this run"),  # 65535² pixels
        (b"TSZ1\x08\x00\x08\x00\x01\xff\xff\xff\x7f", "not written by this run"),  # 2³¹ tokens
    ],
)
def test_bad_files_are_one_line(run_dir, tmp_path, content, message):
    bad = tmp_path / "bad.tsz"
    bad.write_bytes(content.ljust(HEADER.size + 4, b"\x00") if content[:4] == b"TSZ1" else content)
    args = ["decompress", str(bad), "--run", str(run_dir), "-o", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "bad.png").exists()


def test_nothing_to_compress_is_refused(run_dir):
    result = runner.invoke(app, ["compress", "--run", str(run_dir)])
    assert result.exit_code == 1 and "nothing to compress" in result.output
