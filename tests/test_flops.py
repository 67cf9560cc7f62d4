"""FLOP counting: fvcore (attention included) against the closed form, MFU, and `toksuite flops`."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from toksuite.encoders.base import ID_DTYPE, Decoded, Encoder
from toksuite.errors import ConfigError
from toksuite.flops import (
    CONVENTION,
    closed_form_macs,
    count_forward,
    fit_forward_cost,
    flops_per_token,
    image_flops,
    sequence_train_flops,
    training_flops_per_image,
)
from toksuite.hookspecs import hookimpl
from toksuite.mfu import PEAK_BF16_FLOPS, mfu, peak_flops
from toksuite.model import build_model, count_parameters

SHAPE = "256x4x4"  # 4 layers, width 256: the example
VOCAB = 512


# ------------------------------------------------------------------------- fvcore vs closed form
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("seq_len", [64, 256, 1024])
def test_fvcore_count_matches_closed_form(attn, seq_len):
    count = count_forward(SHAPE, VOCAB, seq_len, attn_implementation=attn)
    closed = closed_form_macs(SHAPE, seq_len, VOCAB)
    assert count.macs == pytest.approx(closed.macs, rel=0.01)
    assert count.missed_matmul_ops == []


def test_closed_form_by_hand():
    # 1 layer, d=2, T=3, V=5: 12·3·4 = 144 linear, 2·9·2 = 36 attention, 3·2·5 = 30 head.
    closed = closed_form_macs("2x1x1", 3, 5)
    assert (closed.linear, closed.attention, closed.head) == (144, 36, 30)
    assert closed.macs == 210 and closed.flops == 420


def test_attention_products_counted_exactly_under_both_implementations():
    """Eager's two aten::matmul and SDPA's one op both come to L · 2·T²·d multiply-adds."""
    t, layers, d = 256, 4, 256
    eager = count_forward(SHAPE, VOCAB, t, attn_implementation="eager")
    sdpa = count_forward(SHAPE, VOCAB, t, attn_implementation="sdpa")
    assert eager.by_operator["matmul"] == layers * 2 * t * t * d
    assert sdpa.by_operator["scaled_dot_product_attention"] == layers * 2 * t * t * d
    assert eager.macs == sdpa.macs


@pytest.mark.parametrize(("seq_len", "undercount"), [(256, 0.13), (1024, 0.39)])
def test_plain_fvcore_undercounts_sdpa_and_toksuite_fixes_it(seq_len, undercount):
    """On a real CPU model, as anyone would run fvcore: SDPA's share is silently dropped."""
    model = build_model(SHAPE, VOCAB, seq_len, attn_implementation="sdpa", seed=0)
    plain = count_forward(SHAPE, VOCAB, seq_len, model=model, fix_attention=False)
    fixed = count_forward(SHAPE, VOCAB, seq_len, model=model)
    closed = closed_form_macs(SHAPE, seq_len, VOCAB).macs
    assert 1 - plain.macs / closed == pytest.approx(undercount, abs=0.01)
    assert fixed.macs == pytest.approx(closed, rel=0.01)
    # The meta device (no arithmetic) counts exactly what the real model counts.
    assert fixed.macs == count_forward(SHAPE, VOCAB, seq_len).macs


def test_uncounted_ops_are_listed():
    plain = count_forward(SHAPE, VOCAB, 64, fix_attention=False)
    assert "aten::scaled_dot_product_attention" in plain.uncounted_ops
    assert plain.missed_matmul_ops == ["aten::scaled_dot_product_attention"]
    fixed = count_forward(SHAPE, VOCAB, 64, attn_implementation="eager")
    # Elementwise ops and lookups stay uncounted by design, and are listed, not hidden.
    assert {"aten::softmax", "aten::gelu", "aten::embedding"} <= set(fixed.uncounted_ops)
    assert fixed.missed_matmul_ops == []


def test_baddbmm_attention_path_is_counted():
    """GPT-2's reorder_and_upcast_attn path uses aten::baddbmm, which fvcore has no handle for."""
    from transformers import GPT2LMHeadModel

    from toksuite.model import gpt2_config

    config = gpt2_config(SHAPE, VOCAB, 128, attn_implementation="eager")
    config.reorder_and_upcast_attn = True
    model = GPT2LMHeadModel(config)
    count = count_forward(SHAPE, VOCAB, 128, model=model)
    assert count.by_operator["baddbmm"] == 4 * 128 * 128 * 256
    assert count.macs == pytest.approx(closed_form_macs(SHAPE, 128, VOCAB).macs, rel=0.01)


def test_macs_and_flops_convention():
    count = count_forward("64x2x2", 256, 32)
    assert count.flops == 2 * count.macs
    assert "FLOPs = 2 × MACs" in count.convention == CONVENTION
    assert "1 multiply-add as 1" in CONVENTION


# ------------------------------------------------------------------------- cost as a function of T
def test_fitted_cost_is_exact_at_other_lengths_and_depths():
    cost = fit_forward_cost("128x3x4", 300, attn_implementation="eager")
    for t in (1, 100, 777):
        assert cost.macs(t) == count_forward("128x3x4", 300, t, attn_implementation="eager").macs
    assert cost.attention_macs(100) == 3 * 2 * 100 * 100 * 128


def test_mean_over_lengths_is_not_the_count_at_the_mean_length():
    cost = fit_forward_cost("128x3x4", 300)
    mean, attention = cost.mean_macs([10, 30])
    assert mean == pytest.approx((cost.macs(10) + cost.macs(30)) / 2)
    assert mean > cost.macs(20)  # T² is convex
    assert attention == pytest.approx(float(cost.per_token_pair) * (100 + 900) / 2)


def test_training_flops_are_three_forward_passes():
    cost = fit_forward_cost("64x2x2", 256)
    assert training_flops_per_image("64x2x2", 256, 50) == pytest.approx(3 * 2 * cost.macs(50))


def test_image_flops_row_at_one_length_and_over_images():
    cost = fit_forward_cost("64x2x2", 256)
    one = image_flops(cost, 50)
    assert one["fwd_macs"] == cost.macs(50) and one["fwd_flops"] == 2 * cost.macs(50)
    assert one["train_flops"] == 3 * one["fwd_flops"]
    assert one["attention_share"] == pytest.approx(cost.attention_macs(50) / cost.macs(50))
    many = image_flops(cost, np.array([10, 30]))
    assert many["fwd_macs"] == pytest.approx(cost.mean_macs([10, 30])[0])
    assert many["fwd_macs"] > image_flops(cost, 20)["fwd_macs"]  # not the count at the mean
    assert image_flops(cost, [])["attention_share"] == 0.0


# ----------------------------------------------------------------------------- parameters, MFU
def test_count_parameters_matches_the_model():
    model = build_model("small", 1000, 128)
    assert count_parameters("small", 1000, 128, non_embedding=False) == sum(
        p.numel() for p in model.parameters()
    )
    assert count_parameters("paper", 30000) == pytest.approx(484e6, rel=0.002)


def test_flops_per_token_known_answer():
    # d=64, 2 layers, V=256: N = 2·(12·64² + 13·64) + 256·64 + 2·64 = 116,480 (no position table)
    # training: 6·N + 12·L·d·T = 698,880 + 12·2·64·128 = 698,880 + 196,608 = 895,488
    assert count_parameters("64x2x2", 256) == 116_480
    assert flops_per_token("64x2x2", 256, 128) == 895_488
    assert flops_per_token("64x2x2", 256, 128, training=False) == 895_488 // 3


def test_peak_table_known_answers():
    """A100 312, H100 and H200 989 TFLOP/s dense bf16; unknown devices have no peak."""
    assert peak_flops("A100") == 312e12
    assert peak_flops("H100-SXM") == peak_flops("H200") == 989e12
    assert peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert peak_flops("NVIDIA H100 PCIe") == 756e12
    assert peak_flops("NVIDIA H200") == 989e12
    assert peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert peak_flops("NVIDIA L40S") == 362e12
    assert peak_flops("NVIDIA L4") == 121e12
    assert peak_flops("NVIDIA GeForce RTX 4090") == 165e12
    assert peak_flops("NVIDIA A10G") is None  # not A10, not A100: unknown rather than wrong
    assert peak_flops("some-cpu") is None
    assert peak_flops("cpu") is None and peak_flops(torch.device("cpu")) is None
    assert peak_flops("cpu", override=4e12) == 4e12  # the user's peak wins, CPU or not
    assert peak_flops("NVIDIA H200", override=1e15) == 1e15
    for bad in (0, -1.0):
        with pytest.raises(ConfigError, match="positive"):
            peak_flops("A100", override=bad)
    # Every peak is in the table, none anywhere else.
    assert peak_flops("NVIDIA B200") == PEAK_BF16_FLOPS["B200"] == 2250e12


def test_mfu_known_answers():
    assert mfu(494.5e12, peak_flops("H100-SXM")) == pytest.approx(0.5)
    assert mfu(156e12, peak_flops("NVIDIA A100-SXM4-80GB")) == pytest.approx(0.5)
    assert mfu(98.9e12, peak_flops("NVIDIA H200")) == pytest.approx(0.1)
    assert mfu(1e12, peak_flops("some-cpu")) is None
    assert mfu(1e12, peak_flops("some-cpu", override=4e12)) == pytest.approx(0.25)
    with pytest.raises(ConfigError):
        mfu(1e12, 0.0)


def test_mfu_of_a_training_step_by_hand():
    """The loop's MFU: the step's counted training FLOPs (6·N + 12·L·d·T per real token, each
    sequence at its own length) per second over the peak."""
    lengths = [128, 64]
    flops = sequence_train_flops("64x2x2", 256, lengths)
    per_token = [flops_per_token("64x2x2", 256, n) for n in lengths]
    assert flops == sum(n * f for n, f in zip(lengths, per_token, strict=True))
    assert per_token[0] == 895_488  # as in test_flops_per_token_known_answer
    assert mfu(flops / 1e-3, peak_flops("A100")) == pytest.approx(flops * 1e3 / 312e12)


@pytest.mark.slow  # trains a model (one step on 64 digits)
def test_pretrain_reports_mfu_against_the_users_peak_on_cpu(tmp_path):
    from toksuite.cli.app import app

    args = ["pretrain", "--out", str(tmp_path / "run"), "--data", "digits", "--model", "tiny"]
    args += ["--limit", "64", "--images", "64", "--peak-flops", "1e9", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    achieved = summary["train_flops"] / summary["train_seconds"]
    assert summary["mfu"] == pytest.approx(achieved / 1e9)
    # 6·N + 12·L·d·T per real token, each of the 64 images at its 65 tokens (BOS + 8×8)
    assert summary["train_flops"] == pytest.approx(sequence_train_flops("tiny", 257, [65] * 64))


# ----------------------------------------------------------------------------- plots
def test_plots_write_png(tmp_path):
    from toksuite.plots import bar_plot, line_plot

    line_plot({"a": ([1, 2], [10, 100])}, tmp_path / "l.png", logy=True, xticks=[1, 2])
    bar_plot(["32", "64"], {"a": [1, 2], "b": [3, float("nan")]}, tmp_path / "b.png", logy=True)
    for name in ("l.png", "b.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.png", "l.png"]  # no temp files left


# ----------------------------------------------------------------------------- CLI
class RowRuns(Encoder):
    """Test encoder of variable length: one token per run of equal red values along each row."""

    name = "toy-runs"
    channels = 3

    def __init__(self) -> None:
        pass

    @property
    def vocab_size(self) -> int:
        return 256

    def encode(self, image: np.ndarray) -> np.ndarray:
        red = self.check_image(image)[:, :, 0]
        starts = np.ones_like(red, dtype=bool)
        starts[:, 1:] = red[:, 1:] != red[:, :-1]
        return red[starts].astype(ID_DTYPE)

    def quantize(self, image: np.ndarray) -> np.ndarray:
        return self.check_image(image).copy()

    def decode_checked(self, ids: Sequence[int] | np.ndarray, shape: Sequence[int]) -> Decoded:
        return Decoded(np.zeros(self.output_shape(shape), np.uint8), repairs=1)


class ToyPlugin:
    @hookimpl
    def toksuite_register_encoders(self, register):
        register(RowRuns)


@pytest.fixture
def cli():
    from toksuite import registry
    from toksuite.cli.app import app

    registry.reset_host(registry.PluginHost(autoload=False, extra_plugins=(ToyPlugin(),)))
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["flops", *args])


def test_cli_table_and_json(cli):
    result = cli("-e", "pixels-rgb,pixels-grey", "-r", "8,16", "-m", "tiny")
    assert result.exit_code == 0, result.output
    assert "16×16" in result.output and "FLOPs = 2 × MACs" in result.output

    result = cli("-e", "pixels-rgb,pixels-grey", "-r", "8,16", "-m", "tiny", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    rows = {(r["encoder"], r["resolution"]): r for r in doc["rows"]}
    assert rows["pixels-rgb", "16×16"]["tokens"] == 768
    assert rows["pixels-grey", "16×16"]["tokens"] == 256
    assert rows["pixels-rgb", "8×8"]["vs_pixels_rgb"] == 1
    row = rows["pixels-grey", "16×16"]
    assert row["fwd_flops"] == 2 * row["fwd_macs"] and row["train_flops"] == 3 * row["fwd_flops"]
    assert abs(row["closed_form_rel_diff"]) < 0.015  # layer norms, ~1% at width 64
    assert doc["missed_matmul_ops"] == [] and "aten::softmax" not in doc["uncounted_ops"]
    assert "1 multiply-add as 1" in doc["convention"]


def test_cli_flags_sequences_longer_than_the_context(cli):
    result = cli(
        "-e", "pixels-rgb,pixels-grey", "-r", "8", "-m", "tiny", "--context", "100", "--json"
    )
    assert result.exit_code == 0, result.output
    fits = {r["encoder"]: r["fits_context"] for r in json.loads(result.stdout)["rows"]}
    assert fits == {"pixels-rgb": False, "pixels-grey": True}  # 192 and 64 tokens
    table = cli("-e", "pixels-rgb", "-r", "8", "-m", "tiny", "--context", "100")
    assert "longer than the context" in table.output and "NO" in table.output


def test_cli_variable_length_from_squeeze_or_data(cli, tmp_path):
    result = cli("-e", "toy-runs", "-r", "16", "-m", "tiny", "--squeeze", "4", "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)["rows"]
    assert row["tokens"] == 64 and row["tokens_from"] == "H·W / 4"

    plot = tmp_path / "flops.png"
    data = ["--data", "digits", "--limit", "50"]
    result = cli("-e", "toy-runs", "-r", "8", "-m", "tiny", *data, "--json", "--plot", str(plot))
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)["rows"]
    assert row["tokens_from"] == "mean of 50 held-out"
    assert 8 <= row["tokens"] <= row["tokens_max"] <= 64
    assert plot.read_bytes()[:4] == b"\x89PNG"

    result = cli("-e", "toy-runs", "-r", "16", "-m", "tiny")
    assert result.exit_code == 1
    assert "--data SPEC" in result.output and "--squeeze" in result.output


@pytest.mark.parametrize(
    "args",
    [["-r", "abc"], ["-r", "0"], ["-r", "16", "--squeeze", "0"], ["-r", "16", "--attn", "flash"]],
)
def test_cli_bad_options_exit_2(cli, args):
    assert cli("-m", "tiny", *args).exit_code == 2


def test_cli_unknown_encoder_suggests(cli):
    result = cli("-e", "pixels-rbg", "-r", "8", "-m", "tiny")
    assert result.exit_code == 1
    assert "Did you mean 'pixels-rgb'" in result.output


def test_paper_model_bpe_like_squeeze_cuts_flops_by_an_order_of_magnitude(cli):
    """The paper's check: 64×64 RGB, its 36×1024 model; 12,288 raw tokens against H·W/4."""
    result = cli("-e", "pixels-rgb,toy-runs", "-r", "64", "--squeeze", "4", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["encoder"]: r for r in json.loads(result.stdout)["rows"]}
    assert rows["pixels-rgb"]["tokens"] == 12288 and rows["toy-runs"]["tokens"] == 1024
    assert rows["toy-runs"]["vs_pixels_rgb"] < 0.1
