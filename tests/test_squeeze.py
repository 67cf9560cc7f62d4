"""`toksuite squeeze`: parameter sweeps, SSIM beside PSNR, the Pareto front and its plot."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from toksuite.cli import app
from toksuite.errors import EncoderParamError
from toksuite.likelihood import ssim_per_image
from toksuite.squeeze import param_grid, pareto_front

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
