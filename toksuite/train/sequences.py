"""Images → token sequences: one image is one sequence ``[BOS] + ids``, right-padded per batch.

Why right padding and no attention mask: attention is causal, so a real position never sees the
padding that follows it, and the padded positions carry label -100 so they never count in the loss.
Leaving the mask out keeps the fast causal SDPA kernels (a padding mask forces the slower path).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from toksuite.cache import TokenSequences, encode_dataset

IGNORE_INDEX = -100  # what torch's cross_entropy skips


def encode_images(encoder, images: np.ndarray, *, progress: bool = True) -> TokenSequences:
    """Every image's ids through the shared token cache (memory-mapped when it was written)."""
    return encode_dataset(encoder, images, progress=progress)


def context_length(splits: Sequence[TokenSequences | Sequence[np.ndarray]], cap=None) -> int:
    """1 (BOS) + the longest sequence over all the given splits, or ``cap`` when smaller."""
    longest = max((_longest(split) for split in splits), default=0)
    context = 1 + longest
    return context if cap is None else min(context, cap)


def _longest(split) -> int:
    if isinstance(split, TokenSequences):
        return int(split.lengths.max()) if len(split) else 0
    return max((len(s) for s in split), default=0)


@dataclass
class SequenceTable:
    """N sequences ``[BOS] + ids`` (cut to ``context``), read batch by batch from one flat array.

    ``flat`` is every image's ids concatenated in their stored dtype, usually the token cache's
    memory map, and ``starts[i]`` where image ``i`` begins in it. Nothing N×context is ever built:
    `make_batch` gathers the rows of one batch and pads them to the batch's width, so memory holds
    one batch, and the pages of ``flat`` that batch touches (under ``torchrun`` each process reads
    only the rows of its own shard).
    """

    flat: np.ndarray  # every image's ids, concatenated (uint16 / int32 / int64, possibly mmapped)
    starts: np.ndarray  # int64 N: image i's first id is flat[starts[i]]
    lengths: np.ndarray  # int64 N, real length including BOS (kept on the host: no device syncs)
    bos_id: int
    pad_id: int
    context: int
    truncated: int  # sequences cut to fit the context
    device: torch.device = torch.device("cpu")  # where batches are made

    def __len__(self) -> int:
        return len(self.lengths)

    def to(self, device: torch.device | str) -> SequenceTable:
        """The same table, making its batches on ``device`` (nothing is copied now)."""
        return replace(self, device=torch.device(device))

    def head(self, n: int) -> SequenceTable:
        """The first ``n`` sequences (a view: the same flat array)."""
        truncated = 0  # only the full splits report truncation
        return replace(self, starts=self.starts[:n], lengths=self.lengths[:n], truncated=truncated)

    def gather(self, index: np.ndarray | None = None, width: int | None = None) -> torch.Tensor:
        """int64 rows ``index`` (default all) right-padded to ``width`` (default the context).

        One vectorised read of the ids the rows hold: row r, column c >= 1 is
        ``flat[starts[r] + c - 1]`` where ``c < lengths[r]``, BOS in column 0, padding elsewhere.
        """
        index = np.arange(len(self)) if index is None else np.asarray(index, np.int64)
        width = self.context if width is None else width
        lengths = self.lengths[index]
        rows = np.full((len(index), width), self.pad_id, np.int64)
        rows[:, 0] = self.bos_id
        columns = np.arange(width - 1)
        real = columns[None, :] < (lengths - 1)[:, None]
        rows[:, 1:][real] = self.flat[(self.starts[index][:, None] + columns[None, :])[real]]
        return host_to_device(rows, self.device)


def sequence_table(
    sequences: TokenSequences | Sequence[np.ndarray],
    *,
    bos_id: int,
    context: int,
    pad_id: int = 0,
) -> SequenceTable:
    """Prepend BOS and cut to ``context`` tokens; padding is added per batch (`make_batch`).

    ``sequences``: the token cache's `TokenSequences` (read in place) or a list of id arrays.
    """
    if not isinstance(sequences, TokenSequences):
        ids = [np.asarray(s, np.int64).reshape(-1) for s in sequences]
        lengths = np.fromiter(map(len, ids), np.int64, len(ids))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        flat = np.concatenate([np.zeros(0, np.int64), *ids])
        sequences = TokenSequences(flat, offsets)
    raw = sequences.lengths
    lengths = 1 + np.minimum(raw, context - 1)
    starts = np.array(sequences.offsets[:-1], np.int64)  # N x 8 bytes, read once from the map
    truncated = int((raw > context - 1).sum())
    return SequenceTable(sequences.flat, starts, lengths, bos_id, pad_id, context, truncated)


def batch_width(lengths: np.ndarray, context: int, multiple: int = 8) -> int:
    """Columns a batch needs: its longest sequence, rounded up (fewer shapes to compile)."""
    longest = int(lengths.max())
    return min(context, -(-longest // multiple) * multiple)


def make_batch(
    data: SequenceTable, index: np.ndarray, *, multiple: int = 8
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(input_ids, labels, real_tokens)`` for the rows in ``index``, trimmed to the batch's width.

    Labels equal the inputs with padding replaced by -100; the model shifts them by one, so the
    prediction of every encoder token given what precedes it (BOS first) counts, and nothing else.
    """
    lengths = data.lengths[index]
    width = batch_width(lengths, data.context, multiple)
    input_ids = data.gather(index, width)
    positions = torch.arange(width, device=data.device)
    real = host_to_device(lengths, data.device)
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
