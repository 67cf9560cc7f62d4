"""`toksuite probe`: per-layer linear probes after a tiny pretraining run on digits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from toksuite.cli import app
from toksuite.probe import layer_features
from toksuite.train.sequences import pad_sequences

runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TOKSUITE_CACHE_DIR", str(root / "cache"))
        result = runner.invoke(
            app,
            [
                "pretrain",
                "--out",
                str(root / "run"),
                "--data",
                "digits",
                "--model",
                "tiny",
                "--limit",
                "400",
                "--epochs",
                "4",
                "--batch-size",
                "32",
                "--json",
            ],
        )
    torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    return root / "run"


def test_probe_beats_chance_with_controls_and_json(run_dir, tmp_path):
    plot = tmp_path / "probe.png"
    result = runner.invoke(
        app, ["probe", "--run", str(run_dir), "--data", "digits", "--plot", str(plot), "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (run,) = report["runs"]
    assert [r["layer"] for r in run["layers"]] == [0, 1, 2]  # embeddings + 2 blocks (tiny)
    assert run["best_accuracy"] > 0.2 and report["chance"] == pytest.approx(0.1)
    assert run["best_accuracy"] == max(r["test_accuracy"] for r in run["layers"])
    assert len(run["random_init"]["layers"]) == 3
    assert report["controls"]["raw_pixels"]["test_accuracy"] > 0.5
    assert report["pool"] == "ln-mean" and plot.is_file()


def test_probe_table_names_the_controls(run_dir):
    result = runner.invoke(
        app, ["probe", "--run", str(run_dir), "--pool", "mean", "--no-random-control"]
    )
    assert result.exit_code == 0, result.output
    assert "raw pixels" in result.stdout and "best layer" in result.stdout


def test_probe_refuses_a_directory_that_is_not_a_run(tmp_path):
    result = runner.invoke(app, ["probe", "--run", str(tmp_path)])
    assert result.exit_code == 1 and "not a finished pretraining run" in result.output


@pytest.mark.parametrize("pool", ["ln-mean", "mean"])
def test_pooling_ignores_padding_and_bos(pool):
    from toksuite.model import build_model

    model = build_model("tiny", 20, 40, seed=0).eval()
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 19, size=n) for n in (3, 9, 17, 30)]
    feats = []
    for pad_id, context in ((0, 31), (5, 40)):
        data = pad_sequences(seqs, bos_id=19, context=context, pad_id=pad_id)
        feats.append(layer_features(model, data.tokens, torch.from_numpy(data.lengths), pool))
    for a, b in zip(*feats, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # each image pooled alone (no padding at all) gives the same features
    data = pad_sequences(seqs[:1], bos_id=19, context=4)
    alone = layer_features(model, data.tokens, torch.from_numpy(data.lengths), pool)
    torch.testing.assert_close(alone[-1][0], feats[0][-1][0], rtol=1e-5, atol=1e-5)
