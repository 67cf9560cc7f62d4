"""On-disk cache of encoded datasets: encode once per (encoder state, images), reuse after.

An entry is a directory named by its key, SHA-256 of (format version, ``encoder.fingerprint()``,
data fingerprint), holding

* ``tokens.npy``  — every image's ids concatenated (uint16 when the vocabulary fits, else int32),
* ``offsets.npy`` — int64, N+1 entries: image ``i`` is ``tokens[offsets[i]:offsets[i+1]]``,
* ``meta.json``   — format version, key, counts, dtype and the SHA-256 of both arrays.

Both arrays open with ``np.load(mmap_mode="r")``. A new entry is written while the images are
encoded, one batch at a time (`toksuite.npyfile.NpyAppender`), so neither writing nor reading an
entry needs memory for all the sequences at once. An entry is written into a temporary directory
beside it and renamed into place last, so a killed run leaves only a ``.tmp`` directory that no
lookup reads; an entry that fails any check on reading (missing file, wrong shape, checksum) is
thrown away and recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toksuite.io import atomic_dir, remove_stale_tmp
from toksuite.npyfile import NpyAppender
from toksuite.progress import progress_bar, status

CACHE_ENV = "TOKSUITE_CACHE_DIR"
FORMAT_VERSION = 1
TOKENS, OFFSETS, META = "tokens.npy", "offsets.npy", "meta.json"


def default_cache_dir() -> Path:
    """``$TOKSUITE_CACHE_DIR``, else ``$XDG_CACHE_HOME/toksuite``, else ``~/.cache/toksuite``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "toksuite"


def tokens_dir(cache_dir: str | Path | None = None) -> Path:
    """Where token entries live: ``<cache dir>/tokens``."""
    return (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / "tokens"


def images_fingerprint(images: np.ndarray | Sequence[np.ndarray]) -> str:
    """SHA-256 over dtype, shape and bytes of an array, or of each image of a list."""
    digest = hashlib.sha256()
    items = [images] if isinstance(images, np.ndarray) else list(images)
    digest.update(b"array" if isinstance(images, np.ndarray) else f"list{len(items)}".encode())
    for arr in items:
        arr = np.ascontiguousarray(arr)
        digest.update(f"{arr.dtype.str}{arr.shape}".encode())
        digest.update(arr.data.cast("B"))
    return digest.hexdigest()


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest dtype that holds every id: uint16 up to 65,536 ids, else int32."""
    return np.dtype(np.uint16) if vocab_size <= 65536 else np.dtype(np.int32)


@dataclass
class TokenSequences:
    """N token sequences stored as one flat array plus N+1 offsets (possibly memory-mapped).

    ``seqs[i]`` is a view into ``flat`` in its stored dtype (uint16 or int32); cast with
    ``.astype(np.int64)`` where a wider type is needed.
    """

    flat: np.ndarray
    offsets: np.ndarray
    hit: bool = False  # True when read from the cache
    path: Path | None = None  # the cache entry, when there is one

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        if not -len(self) <= i < len(self):
            raise IndexError(f"sequence {i} out of range for {len(self)}")
        i %= len(self)
        return self.flat[self.offsets[i] : self.offsets[i + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(np.asarray(self.offsets))

    @property
    def total(self) -> int:
        return int(self.offsets[-1])

    @classmethod
    def from_list(cls, sequences: Sequence[np.ndarray], vocab_size: int) -> TokenSequences:
        lengths = np.fromiter((len(s) for s in sequences), np.int64, len(sequences))
        offsets = np.zeros(len(sequences) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        dtype = token_dtype(vocab_size)
        flat = np.empty(int(offsets[-1]), dtype)
        for seq, start, stop in zip(sequences, offsets[:-1], offsets[1:], strict=True):
            flat[start:stop] = seq
        return cls(flat, offsets)


def cache_key(encoder_fingerprint: str, data_fingerprint: str) -> str:
    text = f"toksuite-tokens/{FORMAT_VERSION}/{encoder_fingerprint}/{data_fingerprint}"
    return hashlib.sha256(text.encode()).hexdigest()


def encode_dataset(
    encoder,
    images: np.ndarray | Sequence[np.ndarray],
    *,
    data_fingerprint: str | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
    batch_size: int = 256,
) -> TokenSequences:
    """Encode ``images`` with a fitted ``encoder``, reusing the on-disk cache when it can.

    The key is the encoder's fingerprint (its saved state) and ``data_fingerprint`` (computed
    from the pixels when not given), so changing either gives a fresh entry. ``cache_dir``
    defaults to `default_cache_dir()`; entries go in its ``tokens/`` folder.

    A new entry is written while encoding, ``batch_size`` images at a time, and returned
    memory-mapped: memory holds one batch of sequences (and the per-image offsets) however many
    images there are. A cache that cannot be written only costs a warning
    (the images are then encoded again, in memory).
    """
    encoder._check_fitted()
    if not use_cache:
        return _encode_in_memory(encoder, images, progress, batch_size)
    key = cache_key(encoder.fingerprint(), data_fingerprint or images_fingerprint(images))
    entry = tokens_dir(cache_dir) / key
    cached = read_entry(entry, key, len(images))
    if cached is not None:
        return cached
    try:
        _stream_entry(entry, key, encoder, images, progress, batch_size)
    except OSError as exc:
        status(f"[yellow]warning:[/] token cache not written ({entry}: {exc.strerror or exc})")
        return _encode_in_memory(encoder, images, progress, batch_size)
    written = read_entry(entry, key, len(images), verify=False)  # checksums came from the writer
    if written is None:
        raise AssertionError(f"token cache entry {entry} unreadable right after writing")
    written.hit = False
    return written


def _encoded_batches(encoder, images, progress: bool, batch_size: int):
    """``(flat ids, lengths)`` per batch of ``batch_size`` images, ids checked against the vocab."""
    dtype = token_dtype(encoder.vocab_size)
    with progress_bar(f"encoding with {encoder.name}", len(images), show=progress) as advance:
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            ids = [np.asarray(s).reshape(-1) for s in encoder.encode_batch(batch)]
            flat = np.concatenate(ids) if ids else np.zeros(0, np.int64)
            if flat.size and (flat.min() < 0 or flat.max() >= encoder.vocab_size):
                raise AssertionError(
                    f"{encoder.name} produced ids outside 0..{encoder.vocab_size - 1}"
                )
            yield flat.astype(dtype, copy=False), np.fromiter(map(len, ids), np.int64, len(ids))
            advance(len(batch))


def _offsets(lengths: list[np.ndarray]) -> np.ndarray:
    counts = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    offsets = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets


def _encode_in_memory(encoder, images, progress: bool, batch_size: int) -> TokenSequences:
    chunks, lengths = [], []
    for flat, counts in _encoded_batches(encoder, images, progress, batch_size):
        chunks.append(flat)
        lengths.append(counts)
    dtype = token_dtype(encoder.vocab_size)
    return TokenSequences(np.concatenate([np.zeros(0, dtype), *chunks]), _offsets(lengths))


def _stream_entry(entry: Path, key: str, encoder, images, progress: bool, batch_size: int) -> None:
    """Encode into a new entry batch by batch (temp dir beside it, renamed into place last)."""
    remove_stale_tmp(entry.parent)  # every entry's leftovers: the cache directory is all ours
    dtype = token_dtype(encoder.vocab_size)
    with atomic_dir(entry) as tmp:
        lengths: list[np.ndarray] = []
        with NpyAppender(tmp / TOKENS, dtype) as tokens:
            for flat, counts in _encoded_batches(encoder, images, progress, batch_size):
                tokens.append(flat)
                lengths.append(counts)
        offsets = _offsets(lengths)
        np.save(tmp / OFFSETS, offsets, allow_pickle=False)
        _write_meta(
            tmp, key, encoder, len(offsets) - 1, tokens.count, dtype, tokens.sha256, offsets
        )


def _sha256(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).data.cast("B")).hexdigest()


def _write_meta(
    tmp: Path,
    key: str,
    encoder,
    images: int,
    tokens: int,
    dtype,
    sha_tokens: str,
    offsets: np.ndarray,
) -> None:
    meta = {
        "format_version": FORMAT_VERSION,
        "key": key,
        "encoder": encoder.name,
        "vocab_size": int(encoder.vocab_size),
        "images": images,
        "tokens": int(tokens),
        "dtype": np.dtype(dtype).str,
        "sha256_tokens": sha_tokens,
        "sha256_offsets": _sha256(offsets),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (tmp / META).write_text(json.dumps(meta, indent=2) + "\n")  # last: marks it complete


def read_entry(
    entry: Path, key: str, n_images: int, *, verify: bool = True
) -> TokenSequences | None:
    """The cached sequences, or None (removing the entry) when missing, partial or corrupt."""
    if not entry.is_dir():
        return None
    try:
        meta = json.loads((entry / META).read_text())
        flat = np.load(entry / TOKENS, mmap_mode="r", allow_pickle=False)
        offsets = np.load(entry / OFFSETS, mmap_mode="r", allow_pickle=False)
        ok = (
            meta.get("format_version") == FORMAT_VERSION
            and meta.get("key") == key
            and meta.get("images") == n_images
            and flat.ndim == 1
            and flat.dtype.str == meta.get("dtype")
            and len(flat) == meta.get("tokens")
            and offsets.dtype == np.int64
            and offsets.shape == (n_images + 1,)
            and (n_images == 0 or (offsets[0] == 0 and offsets[-1] == len(flat)))
            and bool(np.all(np.diff(offsets) >= 0))
        )
        if ok and verify:
            ok = _sha256(flat) == meta.get("sha256_tokens") and _sha256(offsets) == meta.get(
                "sha256_offsets"
            )
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        ok = False
    if not ok:
        status(f"[yellow]warning:[/] token cache entry {entry.name[:12]}… is damaged; recomputing")
        shutil.rmtree(entry, ignore_errors=True)
        return None
    return TokenSequences(flat, offsets, hit=True, path=entry)


def cache_info(cache_dir: str | Path | None = None) -> dict:
    """Where the token cache is, how many entries it holds and their size in bytes."""
    root = tokens_dir(cache_dir)
    entries = (
        [p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        if (root.is_dir())
        else []
    )
    size = sum(f.stat().st_size for p in entries for f in p.iterdir() if f.is_file())
    return {"path": str(root), "entries": len(entries), "bytes": size}


def clear_cache(cache_dir: str | Path | None = None) -> int:
    """Remove every entry (and leftover temp directories); returns how many entries went."""
    root = tokens_dir(cache_dir)
    if not root.is_dir():
        return 0
    removed = 0
    for path in root.iterdir():
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed += not path.name.startswith(".")
    return removed
