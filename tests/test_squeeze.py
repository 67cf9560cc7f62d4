"""`toksuite squeeze`: parameter sweeps, SSIM beside PSNR, the Pareto front and its plot."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from toksuite import registry
from toksuite.cli import app
from toksuite.errors import EncoderParamError
from toksuite.likelihood import ssim_per_image
from toksuite.params import param_grid
from toksuite.squeeze import pareto_front, takes_vocab

runner = CliRunner()


def test_param_grid_runs_every_combination_for_the_encoders_that_take_each_key():
    grid = param_grid(["bpe-grey", "pixels-grey", "kmeans"], ["levels=6,10", "rows=split,joined"])
    assert grid["bpe-grey"] == [
        {"levels": 6, "rows": "split"},
        {"levels": 6, "rows": "joined"},
        {"levels": 10, "rows": "split"},
        {"levels": 10, "rows": "joined"},
    ]
    assert grid["pixels-grey"] == [{"levels": 6}, {"levels": 10}]  # it has no `rows`
    assert grid["kmeans"] == [{}]  # neither: measured once, at its defaults
    with pytest.raises(EncoderParamError, match="none of"):
        param_grid(["pixels-grey"], ["k=4,8"])
    with pytest.raises(EncoderParamError, match="levels"):
        param_grid(["pixels-grey"], ["levels=6,many"])


def test_the_vocab_sweep_takes_every_encoder_with_a_vocab_size_parameter():
    assert takes_vocab("bpe-rgb") and takes_vocab("bpe") and takes_vocab("bpe-palette")
    assert not takes_vocab("pixels-grey") and not takes_vocab("kmeans")
    # A plugin's encoders too, read from their parameters (the example plugin, where installed).
    plugin = pytest.importorskip("toksuite_bpe_extras.plugin")
    registry.reset_host(registry.PluginHost(autoload=False, extra_plugins={"bpe-extras": plugin}))
    assert all(takes_vocab(n) for n in ("bpe-rgb-snake", "bpe-rgb-hilbert"))


def test_pareto_front_known_answer():
    # (squeeze, PSNR): B dominates A; C trades squeeze for PSNR; lossless D is best on PSNR.
    points = [(2.0, 28.0), (3.0, 30.0), (4.0, 25.0), (1.0, None), (1.0, 30.0)]
    assert pareto_front(points) == [False, True, True, True, False]


def test_ssim_is_one_when_lossless_and_none_below_a_window():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 9, 8, 3), dtype=np.uint8)
    assert ssim_per_image(images, images) == pytest.approx([1.0, 1.0, 1.0])
    noisy = np.clip(images.astype(int) + rng.integers(-40, 40, images.shape), 0, 255)
    scores = ssim_per_image(images, noisy.astype(np.uint8))
    assert all(0 < s < 1 for s in scores)
    assert ssim_per_image(images[:, :2, :2], images[:, :2, :2]) == [None, None, None]


def test_squeeze_sweeps_parameters_and_writes_the_frontier(tmp_path):
    frontier = tmp_path / "frontier.png"
    args = ["squeeze", "-e", "pixels-grey,bpe-grey", "--data", "digits", "--vocab", "300"]
    args += ["-p", "levels=6,10", "--frontier", str(frontier), "--plot", str(tmp_path / "s.png")]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = report["rows"]
    assert [(r["encoder"], r["params"].get("levels")) for r in rows] == [
        ("pixels-grey", 6), ("pixels-grey", 10), ("bpe-grey", 6), ("bpe-grey", 10)
    ]  # fmt: skip
    for row in rows:
        assert {"params", "vocab", "vocab_requested", "squeeze", "tokens_mean", "psnr_db"} <= set(
            row
        )
        assert 0 < row["ssim"] <= 1 and len(row["ssim_per_image"]) == row["images"]
    # Same levels, same quantisation: BPE keeps pixels' PSNR and SSIM and squeezes more.
    assert rows[2]["psnr_db"] == rows[0]["psnr_db"] and rows[2]["ssim"] == rows[0]["ssim"]
    assert [r["pareto"] for r in rows] == [False, False, True, True]
    assert rows[2]["vocab_requested"] == 300
    assert frontier.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_held_out_images_is_said_and_recorded(tmp_path):
    folder = tmp_path / "one"
    folder.mkdir()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(folder / "only.png")
    args = ["squeeze", "-e", "pixels-grey", "--data", f"folder:{folder}"]
    result = runner.invoke(app, [*args, "--plot", str(tmp_path / "s.png"), "--json"])
    assert result.exit_code == 0, result.output
    assert "has no held-out images: measuring on the 1 training image" in result.stderr
    report = json.loads(result.stdout)
    assert report["measured_on"] == "train" and report["test_images"] == 0
    assert [r["measured_on"] for r in report["rows"]] == ["train"]
    table = runner.invoke(app, [*args, "--plot", str(tmp_path / "s.png")]).stdout
    assert "measured on the training images" in table


def test_digits_are_measured_on_held_out_images(tmp_path):
    args = ["squeeze", "-e", "pixels-grey", "--limit", "20", "--plot", str(tmp_path / "s.png")]
    result = runner.invoke(app, [*args, "--json"])
    assert json.loads(result.stdout)["measured_on"] == "test"
    assert "no held-out images" not in result.stderr


def test_capped_vocab_sweep_shows_asked_and_reached(tmp_path):
    # 30 digits have far fewer than 5,000 pairs to merge: both sizes stop at the same vocabulary.
    args = ["squeeze", "-e", "bpe-grey", "--vocab", "5000,100000", "--limit", "30"]
    args += ["--plot", str(tmp_path / "s.png")]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert [r["vocab_requested"] for r in rows] == [5000, 100000]
    assert rows[0]["vocab"] == rows[1]["vocab"] < 5000
    warnings = [line for line in result.stderr.splitlines() if "below the vocabulary" in line]
    assert len(warnings) == 1 and "5,000 →" in warnings[0] and "100,000 →" in warnings[0]
    table = runner.invoke(app, args).stdout
    assert "vocab asked" in table
    assert "bpe-grey @5,000" in table and "bpe-grey @100,000" in table
