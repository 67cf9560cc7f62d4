"""The CLI skeleton through Typer's test runner: exit codes 0/1/2, --json parses."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from toksuite.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_encoders_json_lists_builtins_with_params():
    result = run("encoders", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["pixels-rgb"]["aliases"] == ["pixels"]
    assert rows["bpe-rgb"]["aliases"] == ["bpe"]
    assert rows["kmeans"]["channels"] == 3
    assert any(p["name"] == "vocab_size" for p in rows["bpe-rgb"]["params"])
    assert rows["pixels-grey"]["plugin"] == "toksuite.encoders"


def test_plugins_table_and_json():
    assert run("plugins").exit_code == 0
    doc = json.loads(run("plugins", "--json").stdout)
    assert doc["failures"] == []
    assert {p["name"] for p in doc["plugins"]} >= {"toksuite.encoders", "toksuite.data"}


def test_usage_errors_exit_2():
    assert run("fit").exit_code == 2  # missing argument
    assert run("encoders", "--bogus").exit_code == 2
    assert run("fit", "pixels-grey", "--out", "x", "--resolution", "abc").exit_code == 2


def test_library_error_is_one_red_line_and_exit_1(tmp_path):
    result = run("fit", "bpe-rbg", "--out", str(tmp_path / "e"))
    assert result.exit_code == 1
    assert "did you mean 'bpe-rgb'" in result.stderr.lower()
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "e").exists()


def test_bad_param_is_exit_1(tmp_path):
    result = run("fit", "bpe-grey", "--out", str(tmp_path / "e"), "-p", "vocab_size=lots")
    assert result.exit_code == 1
    assert "vocab_size" in result.stderr


def test_fit_encode_decode_round_trip(tmp_path):
    out = tmp_path / "enc"
    result = run("fit", "bpe-grey", "--out", str(out), "-p", "vocab_size=300", "--json")
    assert result.exit_code == 0, result.stderr
    fitted = json.loads(result.stdout)
    assert fitted["encoder"] == "bpe-grey" and fitted["vocab_size"] <= 300

    picture = np.random.default_rng(0).integers(0, 256, (9, 7), dtype=np.uint8)
    Image.fromarray(picture).save(tmp_path / "p.png")
    tokens = tmp_path / "t.json"
    result = run("encode", str(tmp_path / "p.png"), "-e", str(out), "-o", str(tokens), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["tokens"] == len(json.loads(tokens.read_text())["ids"])

    png = tmp_path / "back.png"
    result = run("decode", str(tokens), "-e", str(out), "-o", str(png), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["repairs"] == 0
    from toksuite.registry import load_encoder

    expected = load_encoder(out).quantize(picture[..., None])[..., 0]
    assert (np.asarray(Image.open(png)) == expected).all()


def test_decode_repairs_malformed_tokens(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps([1, 2, 999, -4]))
    png = tmp_path / "x.png"
    result = run(
        "decode",
        str(tmp_path / "bad.json"),
        "-e",
        "pixels-grey",
        "-o",
        str(png),
        "--shape",
        "3x3",
        "--json",
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["repairs"] > 0
    assert np.asarray(Image.open(png)).shape == (3, 3)


def test_decode_bad_token_file(tmp_path):
    (tmp_path / "t.json").write_text("not json")
    result = run(
        "decode",
        str(tmp_path / "t.json"),
        "-e",
        "pixels-grey",
        "-o",
        str(tmp_path / "x.png"),
        "--shape",
        "2x2",
    )
    assert result.exit_code == 1
    assert "t.json" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_encode_unreadable_image(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    result = run(
        "encode", str(tmp_path / "broken.png"), "-e", "pixels-rgb", "-o", str(tmp_path / "t.json")
    )
    assert result.exit_code == 1
    assert "broken.png" in result.stderr
    assert not (tmp_path / "t.json").exists()
