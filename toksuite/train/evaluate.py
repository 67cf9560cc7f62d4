"""Held-out evaluation of a model in training: loss per token, code length per image."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import torch

from toksuite.train.batching import sorted_batches
from toksuite.train.sequences import SequenceTable, make_batch, token_nll


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
