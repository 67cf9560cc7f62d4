"""The token file `toksuite encode` writes and `toksuite decode` reads: one image's ids as JSON.

``{"format": "toksuite-tokens", "version": 1, "encoder": NAME, "shape": [H, W, C], "ids": [...]}``.
A bare JSON list of ids (e.g. a model's output) is read too; it says neither encoder nor shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toksuite.errors import DataError
from toksuite.io import read_json, write_json_atomic
from toksuite.limits import check_size

TOKENS_FORMAT = "toksuite-tokens"
TOKENS_VERSION = 1


@dataclass(frozen=True)
class TokenFile:
    ids: np.ndarray  # int64, what every decoder reads
    shape: tuple[int, ...] | None = None  # (H, W) or (H, W, C) when the file says
    encoder: str | None = None  # the encoder that wrote it, when the file says

    def check_encoder(self, name: str, path: str | Path) -> None:
        """Refuse ids written by another encoder: they would decode to noise, not fail."""
        if self.encoder not in (None, name):
            raise DataError(f"{path}: written by encoder {self.encoder!r}, not {name!r}")


def write_tokens(path: str | Path, ids: np.ndarray, *, encoder: str, shape: tuple[int, ...]):
    write_json_atomic(
        path,
        {
            "format": TOKENS_FORMAT,
            "version": TOKENS_VERSION,
            "encoder": encoder,
            "shape": [int(n) for n in shape],
            "ids": np.asarray(ids).tolist(),
        },
    )


def read_tokens(path: str | Path) -> TokenFile:
    """A token file, checked: integer ids that fit in 64 bits, a sane shape; else a DataError."""
    path = Path(path)
    doc = read_json(
        path, DataError, missing=f"{path}: no such file", invalid=f"{path}: not a JSON token file"
    )
    if isinstance(doc, list):  # a bare list of ids (e.g. model output)
        doc = {"ids": doc}
    if not isinstance(doc, dict) or not isinstance(doc.get("ids"), list):
        raise DataError(f"{path}: expected a JSON object with an 'ids' list, or a list of ids")
    # Another file format, a later version or a mangled encoder name would decode to noise.
    if doc.get("format", TOKENS_FORMAT) != TOKENS_FORMAT:
        raise DataError(f"{path}: format {doc['format']!r}, not a {TOKENS_FORMAT!r} file")
    if doc.get("version", TOKENS_VERSION) != TOKENS_VERSION:
        raise DataError(
            f"{path}: token file version {doc['version']!r}; this toksuite reads version "
            f"{TOKENS_VERSION}"
        )
    if not isinstance(doc.get("encoder", ""), str):
        raise DataError(f"{path}: 'encoder' must be an encoder name")
    ids = doc["ids"]
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise DataError(f"{path}: 'ids' must be integers")
    # int64 is what every decoder reads; a larger id is no token of any vocabulary.
    huge = next((i for i in ids if not -(2**63) <= i < 2**63), None)
    if huge is not None:
        raise DataError(f"{path}: id {huge} at position {ids.index(huge)} does not fit in 64 bits")
    shape = doc.get("shape")
    if "shape" in doc:  # present, it must be right (null included)
        if (
            not isinstance(shape, list)
            or len(shape) not in (2, 3)
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape)
        ):
            raise DataError(f"{path}: 'shape' must be [H, W] or [H, W, C] of positive integers")
        check_size(shape[0], shape[1], f"{path}: 'shape'", DataError)
    return TokenFile(
        np.asarray(ids, dtype=np.int64),
        tuple(shape) if shape is not None else None,
        doc.get("encoder"),
    )
