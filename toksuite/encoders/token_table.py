"""Decode tables of the image-BPE encoders: token ids → symbols, byte-fallback runs, row repair.

Kept apart from `toksuite.encoders.bpe` so that the encoders there read top to bottom; every name
here is also importable from ``toksuite.encoders.bpe``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from toksuite.encoders.symbols import byte_token, fit_length, utf8_to_symbols

SEPARATOR_MARK = -2  # a row separator in a decode table (symbols are >= 0, unknown is -1)
BYTE_MARK = -1000  # byte b of a byte-fallback token is BYTE_MARK - b in a decode table


class TokenTable:
    """Every token id's symbols, flattened, so decoding a sequence is a few numpy gathers."""

    def __init__(self, token_symbols: Sequence[np.ndarray]) -> None:
        self.lengths = np.array([len(s) for s in token_symbols], np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.flat = np.concatenate([*token_symbols, np.zeros(0, np.int64)]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.lengths)

    def expand(self, ids: np.ndarray) -> np.ndarray:
        """The symbols of ``ids`` (all valid) concatenated, without a Python loop over tokens."""
        lens = self.lengths[ids]
        total = int(lens.sum())
        if total == 0:
            return np.zeros(0, np.int64)
        # Position j of the output reads flat[offset of its token + (j - start of its token)].
        starts = np.repeat(self.offsets[ids] - (np.cumsum(lens) - lens), lens)
        return self.flat[starts + np.arange(total)]


def resolve_byte_runs(symbols: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Replace each run of byte marks by the symbols its UTF-8 spells; broken pieces dropped."""
    is_byte = symbols <= BYTE_MARK
    if not is_byte.any():
        return symbols, []
    positions = np.flatnonzero(is_byte)
    runs = np.split(positions, np.flatnonzero(np.diff(positions) != 1) + 1)
    pieces, start, dropped = [], 0, 0
    for run in runs:  # one iteration per run of byte tokens: few in an encoder's own output
        pieces.append(symbols[start : run[0]])
        spelled, bad = utf8_to_symbols((BYTE_MARK - symbols[run]).astype(np.uint8).tobytes())
        pieces.append(spelled)
        dropped += bad
        start = run[-1] + 1
    pieces.append(symbols[start:])
    notes = [f"{dropped} byte-fallback characters that are no pixel dropped"] if dropped else []
    return np.concatenate(pieces), notes


def rows_from_marked(symbols: np.ndarray, height: int, width: int) -> tuple[np.ndarray, list[str]]:
    """Symbols with SEPARATOR_MARK between rows → H×W symbols; rows cut/padded to W."""
    breaks = np.flatnonzero(symbols == SEPARATOR_MARK)
    rows = np.split(symbols, breaks)
    rows = [rows[0], *(r[1:] for r in rows[1:])]  # drop the separator each later row starts with
    notes: list[str] = []
    bad_rows = sum(1 for r in rows[:height] if r.size != width)
    if bad_rows:
        notes.append(f"{bad_rows} rows of the wrong length repaired")
    if len(rows) != height:
        notes.append(f"{len(rows)} rows for {height}: {'cut' if len(rows) > height else 'padded'}")
    fixed = [fit_length(r, width)[0] for r in rows[:height]]
    while len(fixed) < height:  # missing rows repeat the last one (or are black)
        fixed.append(fixed[-1] if fixed else np.zeros(width, np.int64))
    return np.stack(fixed), notes


def with_byte_fallback(tokenizer: Any, byte_values: Sequence[int]) -> Any:
    """``tokenizer`` with a token per byte value appended and the BPE model's byte fallback on.

    A character outside the vocabulary is then encoded as its UTF-8 bytes (``<0xEE>`` …), as
    sentencepiece-style models do; ``transformers`` reads the same ``tokenizer.json`` unchanged.
    No merge involves a byte token, so bytes never merge with each other or with symbols.
    """
    from tokenizers import Tokenizer

    state = json.loads(tokenizer.to_str())
    vocab = state["model"]["vocab"]
    first = len(vocab)
    for k, value in enumerate(byte_values):
        vocab[byte_token(value)] = first + k
    state["model"]["byte_fallback"] = True
    return Tokenizer.from_str(json.dumps(state))
