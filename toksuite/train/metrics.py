"""What a run reports: training FLOPs, MFU, held-out loss and code length, metrics.jsonl, plot."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toksuite.model import ModelShape
from toksuite.train.batching import sorted_batches
from toksuite.train.sequences import SequenceTable, make_batch, token_nll


# ---------------------------------------------------------------------------- FLOPs and MFU
def train_flops_per_token(shape: ModelShape, vocab_size: int, seq_len: int) -> float:
    """FLOPs to train on one token at sequence length ``seq_len`` (nanoGPT's 6·N + 12·L·d·T)."""
    try:
        from toksuite.flops import flops_per_token
    except ImportError:  # the same formula, for a tree without the flops module
        d, n_layer = shape.n_embd, shape.n_layer
        n = vocab_size * d + n_layer * 12 * d * d  # tied head + blocks (biases/norms ≈ 0.1%)
        return float(6 * n + 12 * n_layer * d * seq_len)
    return float(flops_per_token(shape, vocab_size, int(seq_len), training=True))


def sequence_train_flops(shape: ModelShape, vocab_size: int, lengths: np.ndarray) -> float:
    """Training FLOPs of sequences of these lengths, each at its own length (no padding counted).

    ``train_flops_per_token`` is ``a + b·T``, so n tokens at length n cost ``a·n + b·n²``.
    """
    lengths = np.asarray(lengths, np.float64)
    a = train_flops_per_token(shape, vocab_size, 0)
    b = train_flops_per_token(shape, vocab_size, 1) - a
    return float(a * lengths.sum() + b * (lengths * lengths).sum())


def peak_flops(device: torch.device, override: float | None = None) -> float | None:
    """Peak bf16 FLOP/s of ``device`` (from toksuite.flops' table), the user's value, or None."""
    if override:
        return float(override)
    if device.type != "cuda":
        return None  # a CPU's peak is not known reliably: MFU is reported only with --peak-flops
    try:
        from toksuite.mfu import peak_flops as table_peak
    except ImportError:
        return None
    return table_peak(torch.cuda.get_device_name(device))


def mfu(flops_per_second: float, peak: float | None) -> float | None:
    return None if not peak else flops_per_second / peak


# ---------------------------------------------------------------------------- held-out code length
@torch.no_grad()
def heldout_bits(
    model,
    data: SequenceTable,
    *,
    batch_size: int = 64,
    autocast: Callable[[], AbstractContextManager] = nullcontext,
) -> np.ndarray:
    """Per image, the model's code length of its tokens in bits (float64, the images' order).

    Bits of one image = sum over its encoder tokens of -log2 p(token | BOS, previous tokens); see
    `toksuite.likelihood`. Batches hold images of similar length (`sorted_batches`), so little is
    padding. ``model(input_ids, use_cache=False)`` must return an object with ``.logits``.
    """
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    bits = np.zeros(len(data))
    for index in sorted_batches(data.lengths, batch_size):
        input_ids, labels, _ = make_batch(data, index)
        with autocast():
            logits = model(input_ids, use_cache=False).logits
        nll = token_nll(logits, labels).double().sum(dim=1)
        bits[index] = nll.cpu().numpy() / math.log(2)
    if was_training:
        model.train()
    return bits


def evaluate(
    model,
    data: SequenceTable,
    *,
    image_shape: Sequence[int],
    batch_size: int = 64,
    autocast: Callable[[], AbstractContextManager] = nullcontext,
) -> tuple[dict[str, float], np.ndarray]:
    """Held-out loss (nats per token) and code length (bits per image / pixel / dim), with the
    per-image bits they come from."""
    from toksuite.likelihood import code_length_units

    bits = heldout_bits(model, data, batch_size=batch_size, autocast=autocast)
    targets = int(data.lengths.sum()) - len(data)  # BOS is never a target
    result = {
        "heldout_loss": float(bits.sum()) * math.log(2) / max(targets, 1),
        **code_length_units(bits, image_shape),
        "heldout_images": len(bits),
        "heldout_tokens": targets,
    }
    return result, bits


# ---------------------------------------------------------------------------- metrics.jsonl
class MetricsLog:
    """Append-only JSON lines; on resume, lines past the checkpoint's step are dropped first."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def truncate_after(self, step: int) -> None:
        if not self.path.exists():
            return
        keep = [line for line in self.read() if line.get("step", 0) <= step]
        from toksuite.io import write_bytes_atomic

        write_bytes_atomic(self.path, "".join(json.dumps(r) + "\n" for r in keep).encode())

    def append(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


def plot_loss(records: list[dict[str, Any]], path: Path, *, title: str = "") -> None:
    """Two panels: training loss against steps and against training FLOPs."""
    rows = [r for r in records if r.get("event") == "train"]
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from toksuite.io import atomic_path

    fig, (ax_steps, ax_flops) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    steps = [r["step"] for r in rows]
    flops = [r["train_flops"] for r in rows]
    loss = [r["loss"] for r in rows]
    ax_steps.plot(steps, loss)
    ax_steps.set_xlabel("step")
    ax_flops.plot(flops, loss)
    ax_flops.set_xscale("log")
    ax_flops.set_xlabel("training FLOPs")
    for ax in (ax_steps, ax_flops):
        ax.set_ylabel("train loss (nats/token)")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
