"""What a run reports: training FLOPs, MFU, held-out loss, bits per pixel, metrics.jsonl, plot."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toksuite.model import ModelShape
from toksuite.train.sequences import PaddedSequences, make_batch, token_nll


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


# ---------------------------------------------------------------------------- held-out loss / bpp
@torch.no_grad()
def evaluate(
    model,
    data: PaddedSequences,
    *,
    pixels_per_image: int,
    batch_size: int = 64,
    autocast: Callable[[], AbstractContextManager] = nullcontext,
) -> dict[str, float]:
    """Held-out loss (nats per token) and bits per pixel of the quantised image.

    Bits per pixel of one image = NLL of all its encoder tokens given BOS (nats, summed) / (H·W) /
    ln 2, averaged over images: comparable across encoders that share a quantisation, whatever their
    sequence lengths. ``model(input_ids, use_cache=False)`` must return an object with ``.logits``.
    """
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    total_nll = 0.0
    total_tokens = 0
    per_image: list[np.ndarray] = []
    for start in range(0, len(data), batch_size):
        index = np.arange(start, min(start + batch_size, len(data)))
        input_ids, labels, _ = make_batch(data, index)
        with autocast():
            logits = model(input_ids, use_cache=False).logits
        nll = token_nll(logits, labels).double().sum(dim=1)
        per_image.append(nll.cpu().numpy())
        total_tokens += int(data.lengths[index].sum()) - len(index)  # BOS is never a target
    if was_training:
        model.train()
    nll_per_image = np.concatenate(per_image) if per_image else np.zeros(0)
    total_nll = float(nll_per_image.sum())
    bpp = nll_per_image / pixels_per_image / math.log(2)
    return {
        "heldout_loss": total_nll / max(total_tokens, 1),
        "bits_per_pixel": float(bpp.mean()) if len(bpp) else math.nan,
        "heldout_images": len(nll_per_image),
        "heldout_tokens": total_tokens,
    }


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
