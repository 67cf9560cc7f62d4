"""`toksuite probe`: per-layer linear probes after a tiny pretraining run on digits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from toksuite.cli import app
from toksuite.probe import layer_features
from toksuite.train.sequences import sequence_table

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


@pytest.mark.slow
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
    assert report["pool"] == "ln-grid2" and plot.is_file()  # the default


@pytest.mark.slow
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
        data = sequence_table(seqs, bos_id=19, context=context, pad_id=pad_id)
        feats.append(layer_features(model, data.gather(), torch.from_numpy(data.lengths), pool))
    for a, b in zip(*feats, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # each image pooled alone (no padding at all) gives the same features
    data = sequence_table(seqs[:1], bos_id=19, context=4)
    alone = layer_features(model, data.gather(), torch.from_numpy(data.lengths), pool)
    torch.testing.assert_close(alone[-1][0], feats[0][-1][0], rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------- pixel-space pools
def pooled(encoder, images, pools):
    """Features of every layer of a random tiny model, for each pool, from one pass."""
    from toksuite.model import build_model
    from toksuite.pooling import parse_pool, pixel_weights

    ids = encoder.encode_batch(images)
    data = sequence_table(ids, bos_id=encoder.vocab_size, context=1 + max(map(len, ids)))
    model = build_model("tiny", encoder.vocab_size + 1, data.context, seed=0).eval()
    specs = [parse_pool(p) for p in pools]
    grids = sorted({s.cells for s in specs if s.in_pixels})
    index = np.arange(len(ids))
    weights = {
        cells: w.dense(index, data.context, data.lengths)
        for cells, w in pixel_weights(encoder, ids, images.shape[1:3], grids).items()
    }
    return layer_features(model, data.gather(), torch.from_numpy(data.lengths), specs, weights)


@pytest.mark.parametrize("name", ["pixels-grey", "pixels-rgb", "kmeans"])
def test_pixel_mean_equals_the_token_mean_for_one_token_per_pixel(name):
    from toksuite.data import load_dataset
    from toksuite.registry import create_encoder

    images = load_dataset("digits").x_train[:6]
    encoder = create_encoder(name, **({"k": 8} if name == "kmeans" else {}))
    if encoder.channels == 3:
        images = np.repeat(images, 3, axis=3)
    features = pooled(
        encoder.fit(images), images, ["mean", "pixel-mean", "ln-mean", "ln-pixel-mean"]
    )
    for a, b in (("mean", "pixel-mean"), ("ln-mean", "ln-pixel-mean")):
        for x, y in zip(features[a], features[b], strict=True):
            torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-5)


def test_grid_cells_are_pixel_weighted_means_of_the_tokens_over_them():
    """A 2×4 image, bpe-grey with a token per half row: grid2's cells are exactly its tokens."""
    from toksuite.registry import create_encoder

    # Rows 0 and 1 are "0 0 | 9 9": the only merges are "00" and "99" (and rows of them).
    image = np.array([[0, 0, 250, 250], [0, 0, 250, 250]], np.uint8)[None, :, :, None]
    encoder = create_encoder("bpe-grey", vocab_size=16, alphabet="all", max_token_length=2)
    encoder.fit(np.repeat(image, 4, axis=0))
    ids = encoder.encode(image[0])
    assert len(ids) == 4  # "00", "99", "00", "99"
    features = pooled(encoder, image, ["grid2", "pixel-mean", "mean"])
    from toksuite.model import build_model

    model = build_model("tiny", encoder.vocab_size + 1, 5, seed=0).eval()
    tokens = torch.as_tensor(np.concatenate([[encoder.vocab_size], ids]))[None]
    hidden = model.transformer(tokens, output_hidden_states=True).hidden_states[-1][0, 1:]
    # Cell (0,0) is token 0, (0,1) token 1, (1,0) token 2, (1,1) token 3: 2 pixels each.
    torch.testing.assert_close(features["grid2"][-1][0], hidden.reshape(-1), rtol=1e-5, atol=1e-5)
    # Every token covers 2 pixels, so weighting by pixels changes nothing here.
    torch.testing.assert_close(features["pixel-mean"][-1][0], hidden.mean(0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(features["mean"][-1][0], hidden.mean(0), rtol=1e-5, atol=1e-5)


def test_pixel_mean_weights_tokens_by_the_pixels_they_cover():
    from toksuite.registry import create_encoder

    # One row "0 0 0 0 9": two tokens of different lengths (HF merges "00", then "009").
    image = np.array([[0, 0, 0, 0, 250]], np.uint8)[None, :, :, None]
    encoder = create_encoder("bpe-grey", vocab_size=12, alphabet="all")
    encoder.fit(np.repeat(image, 4, axis=0))
    ids = encoder.encode(image[0])
    sizes = encoder._table.lengths[ids]
    assert sizes.tolist() == [2, 3]
    features = pooled(encoder, image, ["pixel-mean", "mean"])
    from toksuite.model import build_model

    model = build_model("tiny", encoder.vocab_size + 1, 3, seed=0).eval()
    tokens = torch.as_tensor(np.concatenate([[encoder.vocab_size], ids]))[None]
    hidden = model.transformer(tokens, output_hidden_states=True).hidden_states[-1][0, 1:]
    expected = (2 * hidden[0] + 3 * hidden[1]) / 5
    torch.testing.assert_close(features["pixel-mean"][-1][0], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(features["mean"][-1][0], hidden.mean(0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bad", ["max", "grid0", "ln-", "pixel_mean"])
def test_unknown_pools_are_refused_in_one_line(bad):
    from toksuite.errors import ConfigError
    from toksuite.pooling import parse_pool

    with pytest.raises(ConfigError, match="--pool"):
        parse_pool(bad)


@pytest.mark.slow
def test_several_pools_from_one_probe(run_dir):
    result = runner.invoke(
        app,
        ["probe", "--run", str(run_dir), "--pool", "ln-mean,pixel-mean,grid2", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (run,) = report["runs"]
    assert report["pools"] == ["ln-mean", "pixel-mean", "grid2"]
    assert set(run["by_pool"]) == set(report["pools"])
    assert run["best_accuracy"] == run["by_pool"]["ln-mean"]["best_accuracy"]
    assert "random_init" in run["by_pool"]["grid2"]
