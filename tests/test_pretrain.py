"""`toksuite pretrain`: end to end on digits, padding, bits per pixel, resume after SIGKILL."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from toksuite.cli import app
from toksuite.train.config import TrainConfig, learning_rate
from toksuite.train.evaluate import evaluate
from toksuite.train.sequences import IGNORE_INDEX, make_batch, sequence_table, token_nll

runner = CliRunner()


TINY = [
    "--data",
    "digits",
    "--model",
    "tiny",
    "--limit",
    "300",
    "--batch-size",
    "32",
    "--log-every",
    "2",
    "--seed",
    "3",
]


def pretrain_cli(out: Path, *extra: str):
    result = runner.invoke(app, ["pretrain", "--out", str(out), *TINY, *extra, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def train_losses(run: Path) -> list[float]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r["loss"] for r in map(json.loads, lines) if r["event"] == "train"]


@pytest.mark.slow
def test_pretrain_end_to_end_and_same_seed_same_numbers(tmp_path):
    run = tmp_path / "run"
    summary = pretrain_cli(run, "--epochs", "3")
    for name in (
        "config.json",
        "metrics.jsonl",
        "summary.json",
        "loss.png",
        "checkpoint.pt",
        "encoder/toksuite.json",
        "model/model.safetensors",
        "model/config.json",
    ):
        assert (run / name).is_file(), name
    losses = train_losses(run)
    assert losses[-1] < losses[0] - 1.0  # from ≈ ln 257 = 5.55 down
    assert summary["steps"] == math.ceil(3 * 300 / 32)  # --limit 300 images per split
    assert summary["context"] == 65 and summary["truncated"] == 0 and summary["mfu"] is None
    assert 0 < summary["bits_per_pixel"] < 8
    assert summary["real_token_share"] == 1.0  # fixed length: no padding, whatever the batching
    assert summary["psnr_db"] is None and summary["bits_per_dim"] == summary["bits_per_pixel"]
    assert summary["bits_per_image"] == pytest.approx(64 * summary["bits_per_pixel"])
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in evals if r["event"] == "eval"]
    every = json.loads((run / "config.json").read_text())["eval_every"]
    assert every == math.ceil(summary["steps"] / 8)  # about 8 evaluations a run
    assert [r["step"] for r in evals] == [*range(every, summary["steps"], every), summary["steps"]]
    assert evals[-1]["bits_per_pixel"] == pytest.approx(summary["bits_per_pixel"])  # all 300
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["vocab_size"] == 257 and config["model"]["bos_id"] == 256
    assert config["options"]["seed"] == 3 and config["encoder"]["name"] == "pixels-grey"
    from toksuite.train.rundir import RunInfo

    info = RunInfo.load(run)  # what every consumer reads: the typed view of the same file
    assert json.loads(json.dumps(info.to_dict())) == config
    assert info.steps == summary["steps"] and info.image_hw == (8, 8)

    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(run / "model")
    assert model(torch.tensor([[256, 1, 2]])).logits.shape == (1, 3, 257)

    again = pretrain_cli(tmp_path / "again", "--epochs", "3")
    assert train_losses(tmp_path / "again") == losses
    assert again["heldout_loss"] == summary["heldout_loss"]
    assert again["bits_per_pixel"] == summary["bits_per_pixel"]


@pytest.mark.slow
def test_existing_run_dir_and_two_budgets_are_refused(tmp_path):
    run = tmp_path / "run"
    pretrain_cli(run, "--images", "64")
    again = runner.invoke(app, ["pretrain", "--out", str(run), *TINY, "--images", "64"])
    assert again.exit_code == 1 and "--resume" in again.output
    both = runner.invoke(
        app, ["pretrain", "--out", str(tmp_path / "b"), "--epochs", "1", "--time", "5"]
    )
    assert both.exit_code == 1 and "one budget" in both.output


def test_schedule_warms_up_then_decays_to_the_floor():
    config = TrainConfig(lr=1.0, min_lr_ratio=0.1)
    lrs = [learning_rate(config, s, steps=110, warmup=10, elapsed=0) for s in range(110)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0) and lrs[-1] == pytest.approx(0.1, abs=1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))


def _tiny_model(vocab=20, context=40):
    from toksuite.model import build_model

    return build_model("tiny", vocab, context, seed=0).eval()


def _ragged(n=6, vocab=19, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, vocab, size=rng.integers(3, 25)) for _ in range(n)]


def test_padding_never_counts_in_the_loss():
    """More padding and another pad id: the same per-token NLL at every real position."""
    model, seqs = _tiny_model(), _ragged()
    losses = []
    for pad_id, context in ((0, 26), (7, 35)):
        data = sequence_table(seqs, bos_id=19, context=context, pad_id=pad_id)
        ids = data.gather()  # the full width: no trimming, so the padding really differs
        positions = torch.arange(ids.shape[1])
        labels = ids.masked_fill(positions >= torch.from_numpy(data.lengths)[:, None], IGNORE_INDEX)
        with torch.no_grad():
            nll = token_nll(model(ids).logits, labels)
        losses.append(nll[:, :25])
        assert (nll[:, 25:] == 0).all()
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-6)
    # make_batch trims to the longest sequence and masks the rest the same way
    data = sequence_table(seqs, bos_id=19, context=35, pad_id=7)
    ids, labels, real = make_batch(data, np.arange(len(seqs)), multiple=1)
    assert ids.shape[1] == max(map(len, seqs)) + 1 and real == sum(map(len, seqs)) + len(seqs)
    assert int((labels != IGNORE_INDEX).sum()) == real


def test_bits_per_pixel_of_a_uniform_model_is_log2_vocab_per_token():
    """Uniform over V: each token costs log2 V bits, so bpp = mean tokens · log2 V / (H·W)."""
    vocab, h, w = 11, 4, 5

    def uniform(input_ids, **kwargs):
        return SimpleNamespace(logits=torch.zeros(*input_ids.shape, vocab))

    seqs = _ragged(n=9, vocab=10, seed=1)
    data = sequence_table(seqs, bos_id=10, context=30)
    result, bits = evaluate(uniform, data, image_shape=(h, w, 3), batch_size=4)
    mean_tokens = np.mean([len(s) for s in seqs])
    assert result["bits_per_pixel"] == pytest.approx(mean_tokens * math.log2(vocab) / (h * w))
    assert result["bits_per_dim"] == pytest.approx(result["bits_per_pixel"] / 3)
    # per image, in the images' order (batches are sorted by length, results are not)
    assert bits == pytest.approx([len(s) * math.log2(vocab) for s in seqs])
    assert result["heldout_loss"] == pytest.approx(math.log(vocab))
    assert result["heldout_tokens"] == sum(map(len, seqs))


def _cli_env(tmp_path: Path) -> dict[str, str]:
    env = dict(
        os.environ,
        TOKSUITE_QUIET="1",
        OMP_NUM_THREADS="1",
        TOKSUITE_CACHE_DIR=str(tmp_path / "cache"),
    )
    return env


@pytest.mark.slow
def test_resume_after_sigkill_gives_bit_identical_weights(tmp_path):
    from safetensors.torch import load_file

    args = ["pretrain", *TINY, "--batch-size", "16", "--images", "1280", "--checkpoint-every", "10"]
    cmd = [sys.executable, "-m", "toksuite"]
    env = _cli_env(tmp_path)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run([*cmd, *args, "--out", str(whole)], env=env, check=True, capture_output=True)

    proc = subprocess.Popen(
        [*cmd, *args, "--out", str(killed)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not (killed / "checkpoint.pt").exists() and proc.poll() is None:
        assert time.time() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "summary.json").exists(), "the run finished before it could be killed"
    step = json.loads((killed / "metrics.jsonl").read_text().splitlines()[-1])["step"]
    assert step < 80

    subprocess.run(
        [*cmd, "pretrain", "--out", str(killed), "--resume"],
        env=env,
        check=True,
        capture_output=True,
    )
    a = load_file(whole / "model" / "model.safetensors")
    b = load_file(killed / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert train_losses(killed) == train_losses(whole)


def test_training_attention_builds_no_mask_and_matches_masked_sdpa(monkeypatch):
    """The training/probing attention gives transformers' SDPA logits without its mask building.

    Building the mask calls `find_packed_sequence_indices`, which reads position ids on the host:
    on CUDA that is a GPU→CPU sync in every training step.
    """
    import transformers.masking_utils as masking

    from toksuite.model import causal_sdpa
    from toksuite.train.loop import make_optimizer, train_step

    model = _tiny_model()
    data = sequence_table(_ragged(), bos_id=19, context=26)
    ids, labels, real = make_batch(data, np.arange(len(data)), multiple=1)
    calls = []
    real_find = masking.find_packed_sequence_indices
    monkeypatch.setattr(
        masking,
        "find_packed_sequence_indices",
        lambda *a, **k: calls.append(1) or real_find(*a, **k),
    )
    with torch.no_grad():
        reference = model(ids, use_cache=False).logits
    assert calls, "the stock SDPA path no longer builds a mask: this test lost its point"
    calls.clear()
    with causal_sdpa(model):
        with torch.no_grad():
            logits = model(ids, use_cache=False).logits
        optimizer = make_optimizer(
            model, TrainConfig(encoder="pixels", data="digits"), torch.device("cpu")
        )
        train_step(model, optimizer, ids, labels, real, lr=1e-3, grad_clip=1.0)
    assert calls == []
    torch.testing.assert_close(logits, reference, rtol=1e-5, atol=1e-5)
    assert model.config._attn_implementation == "sdpa"  # restored: sampling needs padding masks


@pytest.mark.slow
def test_heldout_bits_equal_a_plain_forward_pass_over_the_saved_model(tmp_path):
    """The code length a run reports, recomputed without toksuite's batching or attention."""
    from transformers import GPT2LMHeadModel

    from toksuite.registry import load_encoder

    run = tmp_path / "run"
    summary = pretrain_cli(run, "--encoder", "bpe-grey", "-p", "vocab_size=300", "--epochs", "1")
    bits = np.load(run / "heldout_bits.npy", allow_pickle=False)
    assert len(bits) == summary["heldout_images"] == 300
    assert bits.mean() == pytest.approx(summary["bits_per_image"], rel=1e-12)
    assert 0 < summary["real_token_share"] < 1  # BPE lengths differ, so some slots are padding
    encoder = load_encoder(run / "encoder")
    from toksuite.data import LoadOptions, load_dataset

    data = load_dataset("digits", LoadOptions(limit=300, seed=3, channels=1, progress=False))
    model = GPT2LMHeadModel.from_pretrained(run / "model").eval()
    for i in (0, 7, 123):
        ids = torch.tensor([[encoder.vocab_size, *encoder.encode(data.x_test[i]).tolist()]])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0, :-1].double(), dim=-1)
        plain = -logp.gather(1, ids[0, 1:, None]).sum().item() / math.log(2)
        assert abs(plain - bits[i]) / plain <= 1e-4


@pytest.mark.slow
def test_bucket_batching_wastes_less_than_random(tmp_path):
    args = ("--encoder", "bpe-grey", "-p", "vocab_size=300", "--images", "288")  # one epoch
    bucket = pretrain_cli(tmp_path / "bucket", *args)
    random = pretrain_cli(tmp_path / "random", *args, "--batching", "random")
    assert bucket["batching"] == "bucket" and random["batching"] == "random"
    assert random["real_token_share"] < bucket["real_token_share"] <= 1
    assert bucket["tokens_seen"] == random["tokens_seen"]  # the same images, in other batches
    assert bucket["train_flops"] == pytest.approx(random["train_flops"])  # real tokens only


@pytest.mark.parametrize(
    "option, message",
    [
        (["--batching", "sorted"], "--batching 'sorted': expected one of bucket, random"),
        (["--eval-every", "-1"], "--eval-every -1: must be ≥ 0"),
        (["--eval-images", "0"], "--eval-images 0: must be ≥ 1"),
        (["--peak-flops", "0"], "--peak-flops 0: must be positive"),
        (["--peak-flops", "-1e12"], "--peak-flops -1e+12: must be positive"),
    ],
)
def test_bad_batching_and_eval_options_are_one_line(tmp_path, option, message):
    result = runner.invoke(app, ["pretrain", "--out", str(tmp_path / "r"), *TINY, *option])
    assert result.exit_code == 1
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_a_run_saved_before_batching_existed_still_loads_and_resumes_as_random(tmp_path):
    run = tmp_path / "run"
    pretrain_cli(run, "--images", "64")
    config = json.loads((run / "config.json").read_text())
    for key in ("batching", "eval_every", "eval_images"):
        config["options"].pop(key)
    (run / "config.json").write_text(json.dumps(config))
    options = TrainConfig.from_dict(config["options"])
    assert options.batching == "random"  # what such a run trained with
    probe = runner.invoke(app, ["probe", "--run", str(run), "--no-random-control", "--json"])
    assert probe.exit_code == 0, probe.output


@pytest.mark.slow
def test_training_reads_batches_from_the_memory_mapped_cache(tmp_path, monkeypatch):
    """No step or evaluation gathers more rows than one batch, and they come from the token
    cache's memory map: nothing N×context is built for the train or held-out split."""
    from toksuite.train.sequences import SequenceTable

    seen: list[tuple[int, type]] = []
    real_gather = SequenceTable.gather

    def recording_gather(self, index=None, width=None):
        seen.append((len(self) if index is None else len(index), type(self.flat)))
        return real_gather(self, index, width)

    monkeypatch.setattr(SequenceTable, "gather", recording_gather)
    summary = pretrain_cli(tmp_path / "run", "--images", "320")
    assert summary["steps"] == 10 and seen
    assert max(rows for rows, _ in seen) <= 64  # --batch-size 32; evaluation batches of 64
    assert {kind for _, kind in seen} == {np.memmap}


@pytest.mark.slow
def test_memory_mapped_npz_trains_exactly_like_a_compressed_one(tmp_path):
    """The same arrays saved with np.savez (mapped) and np.savez_compressed (read): same run."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (96, 6, 6), dtype=np.uint8),
        "y_train": np.arange(96) % 4,
        "x_test": rng.integers(0, 256, (20, 6, 6), dtype=np.uint8),
        "y_test": np.arange(20) % 4,
    }
    np.savez(tmp_path / "stored.npz", **arrays)
    np.savez_compressed(tmp_path / "compressed.npz", **arrays)
    runs = []
    for name in ("stored", "compressed"):
        result = runner.invoke(
            app,
            [
                "pretrain",
                "--out",
                str(tmp_path / name),
                "--data",
                f"npz:{tmp_path / name}.npz",
                "--model",
                "tiny",
                "--batch-size",
                "16",
                "--images",
                "96",
                "--log-every",
                "2",
                "--json",
            ],
        )
        assert result.exit_code == 0, result.output
        runs.append((train_losses(tmp_path / name), json.loads(result.stdout)["bits_per_pixel"]))
    assert runs[0] == runs[1] and len(runs[0][0]) == 3
