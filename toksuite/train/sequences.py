"""Images → padded token sequences: one image is one sequence ``[BOS] + ids``, right-padded.

Why right padding and no attention mask: attention is causal, so a real position never sees the
padding that follows it, and the padded positions carry label -100 so they never count in the loss.
Leaving the mask out keeps the fast causal SDPA kernels (a padding mask forces the slower path).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

IGNORE_INDEX = -100  # what torch's cross_entropy skips


def encode_images(encoder, images: np.ndarray, *, progress: bool = True) -> list[np.ndarray]:
    """Token ids of every image, through the shared token cache when it is available."""
    try:
        from toksuite.cache import encode_dataset
    except ImportError:  # the cache is optional: encoding directly gives the same ids
        return [np.asarray(ids) for ids in encoder.encode_batch(images)]
    encoded = encode_dataset(encoder, images, progress=progress)
    return [np.asarray(encoded[i]) for i in range(len(encoded))]


def context_length(sequences: Sequence[Sequence[np.ndarray]], cap: int | None = None) -> int:
    """1 (BOS) + the longest sequence over all the given splits, or ``cap`` when smaller."""
    longest = max((len(s) for split in sequences for s in split), default=0)
    context = 1 + longest
    return context if cap is None else min(context, cap)


@dataclass
class PaddedSequences:
    """N sequences as one N×L tensor (BOS first, right-padded with ``pad_id``) plus lengths."""

    tokens: torch.Tensor  # int64 N×L
    lengths: np.ndarray  # int64 N, real length including BOS (kept on the host: no device syncs)
    bos_id: int
    pad_id: int
    truncated: int  # sequences cut to fit the context

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def context(self) -> int:
        return self.tokens.shape[1]

    def to(self, device: torch.device | str) -> PaddedSequences:
        """Move the token table to ``device`` once, so batches are gathered there."""
        tokens = self.tokens
        device = torch.device(device)
        if device.type == "cuda":
            tokens = tokens.pin_memory().to(device, non_blocking=True)
        else:
            tokens = tokens.to(device)
        return PaddedSequences(tokens, self.lengths, self.bos_id, self.pad_id, self.truncated)


def pad_sequences(
    sequences: Sequence[np.ndarray], *, bos_id: int, context: int, pad_id: int = 0
) -> PaddedSequences:
    """Prepend BOS, cut to ``context`` tokens, right-pad with ``pad_id``."""
    tokens = torch.full((len(sequences), context), pad_id, dtype=torch.int64)
    lengths = np.zeros(len(sequences), np.int64)
    truncated = 0
    for i, ids in enumerate(sequences):
        ids = np.asarray(ids, np.int64)[: context - 1]
        truncated += len(ids) < len(sequences[i])
        tokens[i, 0] = bos_id
        tokens[i, 1 : 1 + len(ids)] = torch.from_numpy(ids)
        lengths[i] = 1 + len(ids)
    return PaddedSequences(tokens, lengths, bos_id, pad_id, int(truncated))


def batch_width(lengths: np.ndarray, context: int, multiple: int = 8) -> int:
    """Columns a batch needs: its longest sequence, rounded up (fewer shapes to compile)."""
    longest = int(lengths.max())
    return min(context, -(-longest // multiple) * multiple)


def make_batch(
    data: PaddedSequences, index: np.ndarray, *, multiple: int = 8
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(input_ids, labels, real_tokens)`` for the rows in ``index``, trimmed to the batch's width.

    Labels equal the inputs with padding replaced by -100; the model shifts them by one, so the
    prediction of every encoder token given what precedes it (BOS first) counts, and nothing else.
    """
    lengths = data.lengths[index]
    width = batch_width(lengths, data.context, multiple)
    device = data.tokens.device
    rows = host_to_device(np.asarray(index, np.int64), device)
    input_ids = data.tokens.index_select(0, rows)[:, :width]
    positions = torch.arange(width, device=device)
    real = host_to_device(lengths, device)
    labels = input_ids.masked_fill(positions[None, :] >= real[:, None], IGNORE_INDEX)
    return input_ids, labels, int(lengths.sum())


def host_to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A small host array on ``device`` without a host sync (pinned memory, asynchronous copy)."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)


def token_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-position NLL (nats, fp32) of ``labels[:, 1:]`` given ``logits[:, :-1]``; 0 at padding."""
    targets = labels[:, 1:]
    nll = torch.nn.functional.cross_entropy(
        logits[:, :-1].float().transpose(1, 2), targets, ignore_index=IGNORE_INDEX, reduction="none"
    )
    return nll
