"""`toksuite sample`: grids, seeding, sampling options, malformed model output, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from toksuite.cli import app
from toksuite.errors import ConfigError
from toksuite.grids import BLANK, GAP, SEPARATOR
from toksuite.registry import create_encoder
from toksuite.sample import generate, logits_processors, sample_run

runner = CliRunner()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TOKSUITE_CACHE_DIR", str(root / "cache"))
        args = ["pretrain", "--out", str(root / "run"), "--data", "digits", "--model", "tiny"]
        args += ["--limit", "200", "--epochs", "2", "--batch-size", "32", "--json"]
        result = runner.invoke(app, args)
    torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output
    return root / "run"


def read_png(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def cell(grid: np.ndarray, row: int, col: int) -> np.ndarray:
    """One 8×8 image back from a grid of 4× upscaled cells (every 4th pixel)."""
    y, x = GAP + row * (32 + GAP), GAP + col * (32 + GAP)
    return grid[y : y + 32 : 4, x : x + 32 : 4]


@pytest.mark.slow
def test_grids_have_the_right_sizes_and_figure_4_layout(run_dir, tmp_path):
    result = sample_run(run_dir, out_dir=tmp_path, n_samples=5, n_completions=3)
    # 8×8 digits are upscaled 4× to 32-pixel cells, with 2-pixel separators all round.
    samples = read_png(tmp_path / "samples.png")  # 5 samples → a 3-column grid of 2 rows
    assert samples.shape == (2 * 32 + 3 * GAP, 3 * 32 + 4 * GAP)
    grid = read_png(tmp_path / "completions.png")  # one row per image: prompt | completion | truth
    assert grid.shape == (3 * 32 + 4 * GAP, 3 * 32 + 4 * GAP)
    assert (grid[:GAP] == SEPARATOR).all()

    from toksuite.data import load_dataset

    truths = load_dataset("digits").x_test[:3, :, :, 0]
    assert result["prompt_rows"] == 4
    for i, truth in enumerate(truths):
        prompt, completion, shown_truth = (cell(grid, i, j) for j in range(3))
        np.testing.assert_array_equal(prompt[:4], truth[:4])
        assert (prompt[4:] == BLANK).all()  # what the model did not see is blank grey
        np.testing.assert_array_equal(completion[:4], truth[:4])  # the prompt is kept
        np.testing.assert_array_equal(shown_truth, truth)

    saved = json.loads((tmp_path / "samples.json").read_text())
    assert saved["n_samples"] == 5 and saved["n_completions"] == 3
    assert len(saved["samples"]) == 5 and len(saved["completions"]) == 3
    assert all(s["tokens"] == 64 for s in saved["samples"])  # fixed length: exactly H·W
    assert 0 <= result["well_formed_share"] <= 1
    assert result["completion_psnr_db"] > 0
    for key in ("well_formed_share", "completion_well_formed_share", "completion_psnr_db"):
        assert key in result["definitions"]


def test_completion_grid_wraps_into_blocks_and_keeps_rgb(tmp_path):
    from toksuite.grids import BLOCK_GAP, completion_grid, save_png

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (4, 4, 3), dtype=np.uint8) for _ in range(10)]
    canvas = completion_grid(images, images, images)  # 4×4 cells → 8× → 32 pixels
    # 10 rows wrap into 2 blocks of 8: six columns, a wider gap between the blocks.
    assert canvas.shape == (8 * 32 + 9 * GAP, 6 * 32 + 6 * GAP + BLOCK_GAP, 3)
    x = 3 * (32 + GAP) + BLOCK_GAP  # first column of the second block
    y = GAP + 32 + GAP  # its second row holds the tenth image
    np.testing.assert_array_equal(canvas[y : y + 32 : 8, x : x + 32 : 8], images[9])
    assert (canvas[y + 32 + GAP :, x:] == SEPARATOR).all()  # rows 3..8 of block 2 are empty
    save_png(canvas, tmp_path / "grid.png")
    with Image.open(tmp_path / "grid.png") as image:
        assert image.mode == "RGB" and image.size == (canvas.shape[1], canvas.shape[0])


@pytest.mark.slow
def test_same_seed_same_samples_other_seed_other_samples(run_dir, tmp_path):
    grids = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        sample_run(run_dir, out_dir=tmp_path / name, n_samples=4, n_completions=2, seed=seed)
        grids[name] = [read_png(tmp_path / name / f) for f in ("samples.png", "completions.png")]
    for first, second in zip(grids["a"], grids["b"], strict=True):
        np.testing.assert_array_equal(first, second)
    assert not np.array_equal(grids["a"][0], grids["c"][0])
    # Completions use their own stream: asking for more samples does not change them.
    sample_run(run_dir, out_dir=tmp_path / "d", n_samples=6, n_completions=2, seed=1)
    np.testing.assert_array_equal(read_png(tmp_path / "d" / "completions.png"), grids["a"][1])


@pytest.mark.slow
def test_top_k_1_is_greedy_and_options_are_checked(run_dir, tmp_path):
    result = sample_run(run_dir, out_dir=tmp_path, n_samples=3, n_completions=0, top_k=1)
    samples = read_png(tmp_path / "samples.png")  # 3 samples: a 2×2 grid, the last cell empty
    cells = [cell(samples, 0, 0), cell(samples, 0, 1), cell(samples, 1, 0)]
    np.testing.assert_array_equal(cells[0], cells[1])  # greedy: every sample the same
    np.testing.assert_array_equal(cells[0], cells[2])
    assert (cell(samples, 1, 1) == SEPARATOR).all()
    assert result["completions_png"] is None and result["completion_psnr_db"] is None
    result = sample_run(
        run_dir, out_dir=tmp_path, n_samples=2, n_completions=1, temperature=0.7, top_p=0.9
    )
    assert result["temperature"] == 0.7 and result["top_p"] == 0.9
    for bad in ({"temperature": 0.0}, {"top_k": 0}, {"top_p": 1.5}):
        with pytest.raises(ConfigError):
            logits_processors(**{"temperature": 1.0, "top_k": None, "top_p": None, **bad})
    with pytest.raises(ConfigError, match="prompt-fraction"):
        sample_run(run_dir, out_dir=tmp_path, prompt_fraction=1.0)


@pytest.mark.slow
def test_a_model_that_emits_bos_still_writes_grids_and_counts_repairs(run_dir, tmp_path):
    from transformers import GPT2LMHeadModel

    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    model = GPT2LMHeadModel.from_pretrained(broken / "model")
    bos = model.config.vocab_size - 1
    with torch.no_grad():  # final hidden state = unit vector e0; only BOS's logit is non-zero
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.zero_()
        model.transformer.ln_f.bias[0] = 1.0
        model.lm_head.weight[:, 0] = 0.0
        model.lm_head.weight[bos, 0] = 50.0
    model.save_pretrained(broken / "model")
    # Constrained (the default), BOS is never allowed: every sample is an image anyway, and the
    # importance weights say an unconstrained sampler would almost never write one.
    result = sample_run(broken, n_samples=4, n_completions=2)
    assert result["constrained"] and result["well_formed_share"] == 1.0
    assert result["completion_well_formed_share"] == 1.0
    assert result["unconstrained_well_formed_share"] < 1e-6
    assert all(s["repairs"] == 0 for s in result["samples"])
    result = sample_run(broken, n_samples=4, n_completions=2, constrained=False)
    assert result["well_formed_share"] == result["unconstrained_well_formed_share"] == 0.0
    assert result["completion_well_formed_share"] == 0.0
    assert all(s["repairs"] >= 1 for s in result["samples"])
    assert any("outside" in note for note in result["samples"][0]["notes"])
    assert read_png(broken / "samples" / "samples.png").shape == (2 * 32 + 3 * GAP,) * 2


@pytest.mark.parametrize("name", ["pixels-grey", "bpe-grey"])
def test_the_bos_id_decodes_as_malformed(name):
    from toksuite.data import load_dataset

    images = load_dataset("digits").x_train[:50]
    encoder = create_encoder(name, **({"vocab_size": 40} if name.startswith("bpe") else {}))
    encoder.fit(images)
    ids = np.asarray(encoder.encode(images[0]))
    assert encoder.decode_checked(ids, (8, 8)).ok
    bos = encoder.vocab_size
    decoded = encoder.decode_checked(np.concatenate([ids[:-1], [bos], ids[-1:]]), (8, 8))
    assert decoded.repairs >= 1 and decoded.image.shape == (8, 8, 1)


class FixedLogits(torch.nn.Module):
    """A stand-in language model: the logits depend only on the last input token."""

    def __init__(self, vocab: int = 6) -> None:
        super().__init__()
        self.table = torch.randn(vocab, vocab, generator=torch.Generator().manual_seed(0)) * 3

    def forward(self, input_ids, cache=None, use_cache=True, logits_to_keep=1, **_):
        return SimpleNamespace(logits=self.table[input_ids[:, -1:]], cache=None)


def test_generate_stops_when_complete_and_at_the_budget():
    processors = logits_processors(1.0, None, None)
    new = generate(
        FixedLogits(),
        [np.zeros(0, np.int64), np.array([1, 2])],
        bos_id=5,
        max_new_tokens=[10, 4],
        processors=processors,
        generator=torch.Generator().manual_seed(0),
        is_complete=lambda i, ids: i == 0 and len(ids) == 3,
    )
    assert [len(x) for x in new] == [3, 4]


@pytest.mark.slow
def test_left_padded_batch_matches_one_at_a_time(run_dir):
    """Prompts of different lengths in one batch give what each gives alone (greedy)."""
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(run_dir / "model").eval()
    greedy = logits_processors(1.0, 1, None)
    prompts = [np.array([0, 16, 200]), np.zeros(0, np.int64), np.arange(10) * 20]

    def run(batch):
        return generate(
            model,
            batch,
            bos_id=256,
            max_new_tokens=[6] * len(batch),
            processors=greedy,
            generator=torch.Generator().manual_seed(0),
        )

    together = run(prompts)
    for prompt, tokens in zip(prompts, together, strict=True):
        np.testing.assert_array_equal(run([prompt])[0], tokens)


@pytest.mark.slow
def test_cli_table_json_and_bad_run(run_dir, tmp_path):
    args = ["sample", "--run", str(run_dir), "--out", str(tmp_path), "-n", "2"]
    args += ["--completions", "2", "--top-k", "10", "--top-p", "0.95", "--temperature", "0.9"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "well-formed share" in result.stdout and "completions.png" in result.stdout
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["n_samples"] == 2 and data["top_k"] == 10
    assert Path(data["samples_png"]).is_file() and Path(data["completions_png"]).is_file()
    result = runner.invoke(app, ["sample", "--run", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "not a finished pretraining run" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_variable_length_encoder_stops_when_the_image_is_complete(tmp_path, monkeypatch):
    """BPE has no fixed length: a well-formed sample ends at the first complete image."""
    monkeypatch.setenv("TOKSUITE_CACHE_DIR", str(tmp_path / "cache"))
    args = ["pretrain", "--out", str(tmp_path / "run"), "--encoder", "bpe-grey"]
    args += ["-p", "vocab_size=40", "--limit", "150", "--epochs", "1", "--batch-size", "32"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    result = sample_run(tmp_path / "run", n_samples=8, n_completions=4, seed=0)
    assert result["fixed_length"] is None
    assert read_png(tmp_path / "run" / "samples" / "completions.png").shape[0] == 4 * 32 + 5 * GAP
    for s in result["samples"] + result["completions"]:
        assert s["tokens"] <= result["context"] - 1
        assert (s["repairs"] == 0) == (not s["notes"])
    # The stop rule itself: a well-formed sample ends at its first complete image, so one token
    # less does not decode to a whole image; one that never completes runs to the context.
    from transformers import GPT2LMHeadModel

    from toksuite.registry import load_encoder

    encoder = load_encoder(tmp_path / "run" / "encoder")
    model = GPT2LMHeadModel.from_pretrained(tmp_path / "run" / "model").eval()
    room = result["context"] - 1
    new = generate(
        model,
        [np.zeros(0, np.int64)] * 8,
        bos_id=encoder.vocab_size,
        max_new_tokens=[room] * 8,
        processors=logits_processors(1.0, None, None),
        generator=torch.Generator().manual_seed(0),
        is_complete=lambda i, ids: encoder.decode_checked(ids, (8, 8)).ok,
    )
    for ids in new:
        if encoder.decode_checked(ids, (8, 8)).ok:
            assert not encoder.decode_checked(ids[:-1], (8, 8)).ok
        else:
            assert len(ids) == room


BUILT_IN = ["pixels-grey", "pixels-rgb", "kmeans", "bpe-grey", "bpe-rgb", "bpe-bytelevel"]
BUILT_IN += ["bpe-bytelevel-grey", "bpe-rgb:rows=separator", "bpe-grey:rows=joined"]


@pytest.mark.slow
@pytest.mark.parametrize("spec", BUILT_IN)
def test_every_built_in_encoder_samples_only_images(spec, tmp_path, monkeypatch):
    """A barely trained run of every built-in encoder: constrained samples and completions are
    all well formed, the unconstrained share is a probability, and --unconstrained measures it."""
    monkeypatch.setenv("TOKSUITE_CACHE_DIR", str(tmp_path / "cache"))
    name, _, param = spec.partition(":")
    args = ["pretrain", "--out", str(tmp_path / "run"), "--encoder", name, "--limit", "120"]
    args += ["--epochs", "1", "--batch-size", "32", "--json"]
    args += ["-p", param] if param else []
    args += ["-p", "k=16"] if name == "kmeans" else []
    assert runner.invoke(app, args).exit_code == 0
    result = runner.invoke(
        app, ["sample", "--run", str(tmp_path / "run"), "-n", "6", "--completions", "3", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["constrained"] and report["grammar"]
    assert report["well_formed_share"] == report["completion_well_formed_share"] == 1.0
    assert all(s["repairs"] == 0 and s["well_formed"] for s in report["samples"])
    assert 0.0 <= report["unconstrained_well_formed_share"] <= 1.0
    free = sample_run(tmp_path / "run", n_samples=6, n_completions=0, constrained=False)
    assert not free["constrained"]
    assert free["unconstrained_well_formed_share"] == free["well_formed_share"]
