"""HF's BPE merges applied to symbol images by a compiled kernel: the same ids, faster.

Why by hand: much of HF ``tokenizers``' time per image goes into per-token strings and offsets
that toksuite never reads; this kernel returns ids only (``benchmarks/bench_encode.py`` measures
both side by side; the figures are in docs/benchmarks.md §1). Training stays
with HF, and HF stays the reference: the tests compare both on real images, ``rows`` modes and
byte fallback, and any tokenizer this kernel cannot reproduce exactly is left to HF.

What HF's BPE does to one word: starting from one id per character (a character outside the
vocabulary becomes the ``<0xXX>`` tokens of its UTF-8 bytes), merge the adjacent pair of lowest
merge rank — the leftmost of equal ones — until no adjacent pair has a merge. A merge's result can
only be part of merges learned after it, so every pair a merge creates ranks above that merge and
the lowest rank present never goes down. The kernel therefore walks the ranks upwards once per
image, keeping for each rank the positions where that pair was seen (a bucket); a position is
merged when the pair is still there. Words (rows, or whole images) never share a pair, so they
are all processed in the same walk. The one place order matters is a run of one token, ``a a a``
under the merge ``(a, a)``: HF merges it leftmost first, so the kernel starts such runs at their
left end. `MergeTable.from_tokenizer` refuses (returns None) a tokenizer that breaks these
assumptions: merges whose parts are made later, dropout, a normaliser, word prefixes or suffixes.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

import numpy as np

from toksuite.encoders.symbols import Quantizer

try:  # numba is a dependency, but a bare environment without it still encodes (through HF)
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised where numba is not installed
    numba = None  # type: ignore[assignment]

_EMPTY = -1  # an empty hash slot, a dead position, no neighbour, an empty bucket


def _jit(**options: Any):
    """numba.njit with an on-disk cache, or nothing when numba is missing (never called then)."""
    return njit(cache=True, **options) if numba is not None else (lambda f: f)


@_jit(inline="always")
def _slot(key, mask):
    # Fibonacci hashing of the 64-bit pair key: spreads nearby ids over the table.
    return ((np.uint64(key) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)) & mask


@_jit()
def _build_pairs(lefts, rights, vocab_size, bits):
    """Open-addressing table (key, rank) interleaved, so a lookup reads one cache line."""
    size = 1 << bits
    table = np.full(2 * size, _EMPTY, np.int64)
    mask = np.uint64(size - 1)
    for rank in range(lefts.size):
        key = np.int64(lefts[rank]) * vocab_size + rights[rank]
        s = _slot(key, mask)
        while table[2 * s] != _EMPTY and table[2 * s] != key:
            s = (s + np.uint64(1)) & mask
        table[2 * s] = key
        table[2 * s + 1] = rank  # a repeated pair keeps its last rank, as HF's merge map does
    return table


@_jit(inline="always")
def _rank(table, mask, vocab_size, a, b):
    key = np.int64(a) * vocab_size + b
    s = _slot(key, mask)
    while True:
        k = table[2 * s]
        if k == key:
            return np.int32(table[2 * s + 1])
        if k == _EMPTY:
            return np.int32(_EMPTY)
        s = (s + np.uint64(1)) & mask


@_jit(inline="always")
def _enqueue(head, entry_pos, entry_next, entries, rank, position):
    """Put ``position`` in the bucket of ``rank``; returns the new number of entries."""
    entry_pos[entries] = position
    entry_next[entries] = head[rank]
    head[rank] = entries
    return entries + 1


@_jit()
def _symbol_pair_ranks(char_ids, merges):
    """k×k: the rank of the merge of symbol a's id with symbol b's (one id per symbol), flat."""
    table, left, right, merged, vocab_size = merges
    mask = np.uint64(table.size // 2 - 1)
    k = char_ids.size
    ranks = np.empty(k * k, np.int32)
    for a in range(k):
        for b in range(k):
            ranks[a * k + b] = _rank(table, mask, vocab_size, char_ids[a], char_ids[b])
    return ranks


@_jit()
def _encode_image(
    symbols, n, row_len, split_rows, sep_id, char_start, char_ids, pair_ranks, merges, out, o
):
    """BPE of one image's flat symbols (``n`` starting ids) into ``out[o:]``; returns the end of
    what it wrote. ``pair_ranks`` (`_symbol_pair_ranks`, or empty) gives the first merges of a
    small alphabet by symbols, one read each instead of a hash probe."""
    table, left, right, merged, vocab_size = merges
    mask = np.uint64(table.size // 2 - 1)
    ids = np.empty(n, np.int32)
    nxt = np.empty(n, np.int32)
    prv = np.empty(n, np.int32)
    # Each position enters a bucket once at the start and at most twice per merge (n - 1 merges).
    entry_pos = np.empty(3 * n + 1, np.int32)
    entry_next = np.empty(3 * n + 1, np.int32)
    head = np.full(left.size, _EMPTY, np.int32)

    p = 0
    for i in range(symbols.size):
        s = symbols[i]
        first = p  # this symbol's first id
        for k in range(char_start[s], char_start[s + 1]):
            ids[p] = char_ids[k]
            prv[p] = p - 1
            nxt[p] = p + 1
            p += 1
        if i == 0 or (split_rows and i % row_len == 0):  # a word starts with its row
            prv[first] = _EMPTY
            if first:
                nxt[first - 1] = _EMPTY
    if n:
        nxt[n - 1] = _EMPTY

    entries = 0
    lowest = left.size
    k = char_ids.size
    for p in range(n - 1):
        if nxt[p] != _EMPTY:
            if pair_ranks.size:  # one id per symbol: position p holds symbol p
                r = pair_ranks[symbols[p] * k + symbols[p + 1]]
            else:
                r = _rank(table, mask, vocab_size, ids[p], ids[p + 1])
            if r != _EMPTY:
                entries = _enqueue(head, entry_pos, entry_next, entries, r, p)
                lowest = min(lowest, r)

    for r in range(lowest, left.size):
        e = head[r]
        a, b, t = left[r], right[r], merged[r]
        while e != _EMPTY:
            p = entry_pos[e]
            e = entry_next[e]
            q = nxt[p]
            if ids[p] != a or q == _EMPTY or ids[q] != b:
                continue  # this pair was merged away since it entered the bucket
            if a == b:  # a run "a a a": merged leftmost first, as HF does
                while prv[p] != _EMPTY and ids[prv[p]] == a:
                    p = prv[p]
            while True:
                q = nxt[p]
                ids[p] = t
                ids[q] = _EMPTY
                k = nxt[q]
                nxt[p] = k
                if k != _EMPTY:
                    prv[k] = p
                before = prv[p]
                if before != _EMPTY:
                    r2 = _rank(table, mask, vocab_size, ids[before], t)
                    if r2 != _EMPTY:
                        entries = _enqueue(head, entry_pos, entry_next, entries, r2, before)
                if k == _EMPTY:
                    break
                r3 = _rank(table, mask, vocab_size, t, ids[k])
                if r3 != _EMPTY:
                    entries = _enqueue(head, entry_pos, entry_next, entries, r3, p)
                # Only a run of a == b goes on, with the pair after the one just merged.
                if a != b or nxt[k] == _EMPTY or ids[k] != a or ids[nxt[k]] != a:
                    break
                p = k

    words_left = symbols.size // row_len if split_rows else 1
    for p in range(n):
        if ids[p] == _EMPTY:
            continue
        out[o] = ids[p]
        o += 1
        if nxt[p] == _EMPTY:  # the end of a word: a row separator follows all but the last
            words_left -= 1
            if sep_id != _EMPTY and words_left > 0:
                out[o] = sep_id
                o += 1
    return o


@_jit(inline="always")
def _holding_slack(tolerance):
    """Squared errors of 8-bit colours are whole numbers: held <= own + tolerance ⇔ held <= own +
    ⌊tolerance⌋, a comparison of integers (no conversion on the chain from one pixel to the next).
    Above 3·255² every colour is held; the clamp keeps ⌊tolerance⌋ within int64."""
    return np.int64(np.floor(min(tolerance, 3.0 * 255 * 255)))


@_jit()
def _image_symbols(pixels, order, level_of, weights, colour_ids, colours, tolerance, out):
    """One image's symbols along the scan ``order`` into ``out``.

    Each pixel's own symbol is its grid cell (``level_of``, ``weights``) or, when ``colour_ids``
    is given (a palette's 2^24 colour → id table, indexed ``r << 16 | g << 8 | b``), the id of its
    colour: one table read, in the same loop. With ``tolerance`` > 0 a pixel keeps the symbol
    before it along the scan when that colour's squared error exceeds its own symbol's by at
    most ``tolerance``: runs grow where a colour sits between two symbols, so BPE merges more.
    """
    channels = pixels.shape[1]
    hold = tolerance > 0
    slack = _holding_slack(tolerance)
    prev = 0
    for j in range(order.size):
        p = order[j]
        if colour_ids.size:
            s = np.int64(
                colour_ids[
                    (np.int64(pixels[p, 0]) << 16)
                    | (np.int64(pixels[p, 1]) << 8)
                    | np.int64(pixels[p, 2])
                ]
            )
        else:
            s = 0
            for c in range(channels):
                s += level_of[pixels[p, c]] * weights[c]
        if hold and j > 0:
            # Colours are 8-bit values (bin centres, rounded centroids): the squared errors are
            # exact integers (`_holding_slack`). Where s == prev both errors are equal and prev
            # is kept either way, so there is no branch on it (it would be mispredicted at about
            # every other pixel).
            own = 0
            held = 0
            for c in range(channels):
                x = np.int64(pixels[p, c])
                d = x - colours[s, c]
                own += d * d
                d = x - colours[prev, c]
                held += d * d
            if held <= own + slack:
                s = prev
        out[j] = s
        prev = s


@_jit()
def _image_symbols_held_rgb(pixels, order, colour_ids, colours, tolerance, out):
    """`_image_symbols` for a palette's RGB ids with runs held (``tolerance`` > 0); same symbols.

    Each pixel's decision waits on the one before it (the held colour), so the held colour
    travels in registers and the decision is a select rather than a branch (whether a pixel
    switches colour is unpredictable). Where the pixel's own id is the held one both errors
    are equal and it is kept either way.
    """
    slack = _holding_slack(tolerance)
    if order.size == 0:
        return
    p = order[0]
    r, g, b = np.int64(pixels[p, 0]), np.int64(pixels[p, 1]), np.int64(pixels[p, 2])
    prev = np.int64(colour_ids[(r << 16) | (g << 8) | b])
    pr, pg, pb = colours[prev, 0], colours[prev, 1], colours[prev, 2]
    out[0] = prev
    for j in range(1, order.size):
        p = order[j]
        r = np.int64(pixels[p, 0])
        g = np.int64(pixels[p, 1])
        b = np.int64(pixels[p, 2])
        s = np.int64(colour_ids[(r << 16) | (g << 8) | b])
        sr, sg, sb = colours[s, 0], colours[s, 1], colours[s, 2]
        own = (r - sr) * (r - sr) + (g - sg) * (g - sg) + (b - sb) * (b - sb)
        held = (r - pr) * (r - pr) + (g - pg) * (g - pg) + (b - pb) * (b - pb)
        keep = held <= own + slack
        prev = prev if keep else s
        pr = pr if keep else sr
        pg = pg if keep else sg
        pb = pb if keep else sb
        out[j] = prev


# Each stage has a parallel and a serial loop over images: threads pay only for batches; one image
# on a parallel loop waits for every thread to be scheduled, which on busy cores costs far more
# than the image itself.
@_jit(parallel=True)
def _symbols_parallel(pixels, order, level_of, weights, colour_ids, colours, tolerance, out):
    for i in prange(pixels.shape[0]):
        if colour_ids.size and tolerance > 0:
            _image_symbols_held_rgb(pixels[i], order, colour_ids, colours, tolerance, out[i])
        else:
            _image_symbols(
                pixels[i], order, level_of, weights, colour_ids, colours, tolerance, out[i]
            )


@_jit()
def _symbols_serial(pixels, order, level_of, weights, colour_ids, colours, tolerance, out):
    for i in range(pixels.shape[0]):
        if colour_ids.size and tolerance > 0:
            _image_symbols_held_rgb(pixels[i], order, colour_ids, colours, tolerance, out[i])
        else:
            _image_symbols(
                pixels[i], order, level_of, weights, colour_ids, colours, tolerance, out[i]
            )


@_jit(parallel=True)
def _merge_parallel(
    symbols,
    n_ids,
    starts,
    width,
    split_rows,
    sep_id,
    char_start,
    char_ids,
    pair_ranks,
    merges,
    out,
    counts,
):
    for i in prange(symbols.shape[0]):
        end = _encode_image(
            symbols[i],
            n_ids[i],
            width,
            split_rows,
            sep_id,
            char_start,
            char_ids,
            pair_ranks,
            merges,
            out,
            starts[i],
        )
        counts[i] = end - starts[i]


@_jit()
def _merge_serial(
    symbols,
    n_ids,
    starts,
    width,
    split_rows,
    sep_id,
    char_start,
    char_ids,
    pair_ranks,
    merges,
    out,
    counts,
):
    for i in range(symbols.shape[0]):
        end = _encode_image(
            symbols[i],
            n_ids[i],
            width,
            split_rows,
            sep_id,
            char_start,
            char_ids,
            pair_ranks,
            merges,
            out,
            starts[i],
        )
        counts[i] = end - starts[i]


PARALLEL_MIN_IMAGES = 8  # fewer images than this are encoded on the calling thread
SMALL_ALPHABET = 256  # symbols, at most, for which the first merges come from a k×k table
_NO_PAIR_RANKS = np.zeros(0, np.int32)
_NO_LEVELS = np.zeros(0, np.int64)  # a palette has no grid levels …
_NO_COLOUR_TABLE = np.zeros(0, np.int16)  # … and the grid no colour table


class ColourTableQuantizer(Protocol):
    """A quantiser whose symbols are looked up per RGB colour (a palette), not per channel; the
    rest is what image BPE asks of any quantiser (`toksuite.encoders.symbols.Quantizer` has it)."""

    channels: int

    @property
    def n_symbols(self) -> int: ...

    @property
    def colours(self) -> np.ndarray: ...

    def describe(self) -> str: ...

    def image(self, symbols: np.ndarray) -> np.ndarray: ...

    def quantize(self, image: np.ndarray) -> np.ndarray: ...

    def colour_table(self, images: np.ndarray) -> np.ndarray:
        """The 2^24 colour → symbol table (``r << 16 | g << 8 | b``), valid for ``images``."""
        ...


def scan_symbols(
    images: np.ndarray,
    quantizer: Quantizer | ColourTableQuantizer,
    order: np.ndarray | None = None,
    *,
    colours: np.ndarray | None = None,
    tolerance: float = 0.0,
) -> np.ndarray:
    """N×H×W×C uint8 images → N×(H·W) int64 symbols read along ``order`` (default row by row).

    Symbols are ``quantizer``'s grid cells, or, for a quantiser with a ``colour_table``, the ids
    it gives each RGB colour; ``tolerance`` > 0 holds runs along the scan (see `_image_symbols`),
    comparing the pixel with ``colours`` (symbol × channel, whole numbers: 8-bit colours).
    """
    n, height, width, channels = images.shape
    order = np.arange(height * width) if order is None else order
    if colours is None:
        colours = np.zeros((1, channels), np.int64)
    assert np.array_equal(np.asarray(colours, np.int64), colours), "colours are 8-bit values"
    images = np.ascontiguousarray(images, np.uint8)
    if isinstance(quantizer, Quantizer):
        level_of, weights = quantizer.level_of.astype(np.int64), quantizer.weights.astype(np.int64)
        colour_ids = _NO_COLOUR_TABLE
    else:
        level_of, weights = _NO_LEVELS, _NO_LEVELS
        colour_ids = quantizer.colour_table(images)
    out = np.empty((n, height * width), np.int64)
    stage = _symbols_parallel if n >= PARALLEL_MIN_IMAGES else _symbols_serial
    stage(
        images.reshape(n, height * width, channels),
        np.ascontiguousarray(order, np.int64),
        level_of,
        weights,
        colour_ids,
        np.ascontiguousarray(colours, np.int64),
        float(tolerance),
        out,
    )
    return out


class MergeTable:
    """A fitted BPE tokenizer's merges and symbol ids, in the arrays the kernel reads."""

    def __init__(self, char_start, char_ids, merges, split_rows: bool, sep_id: int) -> None:
        self.char_start, self.char_ids, self.merges = char_start, char_ids, merges
        self.split_rows, self.sep_id = split_rows, sep_id
        # One id per symbol (no byte fallback): each image starts with one id per pixel, and a
        # small alphabet's first merges are read from a k×k table (k ≤ 256: at most 256 KiB).
        self.one_id_per_symbol = bool((np.diff(char_start) == 1).all())
        small = self.one_id_per_symbol and char_ids.size <= SMALL_ALPHABET
        self.pair_ranks = _symbol_pair_ranks(char_ids, merges) if small else _NO_PAIR_RANKS

    @classmethod
    def from_tokenizer(
        cls,
        tokenizer: Any,
        characters: list[str],
        *,
        split_rows: bool,
        separator: str | None = None,
    ) -> MergeTable | None:
        """The table for ``tokenizer`` (HF ``Tokenizer``) on symbols written as ``characters``.

        None when numba is missing or the tokenizer does something the kernel does not (then HF
        encodes). ``separator``: the row-separator character kept as a token, if any.
        """
        if numba is None:
            return None
        spec = json.loads(tokenizer.to_str())
        model = spec["model"]
        if (
            model.get("type") != "BPE"
            or model.get("dropout") is not None
            or model.get("continuing_subword_prefix")
            or model.get("end_of_word_suffix")
            or model.get("ignore_merges")
            or spec.get("normalizer") is not None
            or spec.get("added_tokens")
        ):
            return None
        vocab: dict[str, int] = model["vocab"]
        pairs = [m.split(" ") if isinstance(m, str) else m for m in model["merges"]]
        if any(len(pair) != 2 or pair[0] + pair[1] not in vocab for pair in pairs):
            return None
        left = np.array([vocab[a] for a, _ in pairs], np.int32)
        right = np.array([vocab[b] for _, b in pairs], np.int32)
        merged = np.array([vocab[a + b] for a, b in pairs], np.int32)
        # The rank walk needs every merge that makes a token to come before every merge that
        # uses it (true of trained tokenizers). made_by: the last merge making each token, -1 for
        # tokens in the vocabulary from the start.
        ranks = np.arange(len(merged))
        made_by = np.full(max(vocab.values()) + 1, -1, np.int64)
        np.maximum.at(made_by, merged, ranks)
        if (made_by[left] >= ranks).any() or (made_by[right] >= ranks).any():
            return None
        # Each symbol's starting ids: its character's id, or the ids of its UTF-8 bytes.
        char_start, char_ids = [0], []
        for ch in characters:
            if ch in vocab:
                char_ids.append(vocab[ch])
            else:
                byte_ids = [vocab.get(f"<0x{b:02X}>") for b in ch.encode()]
                if not model.get("byte_fallback") or None in byte_ids:
                    return None
                char_ids += [b for b in byte_ids if b is not None]  # none is, checked above
            char_start.append(len(char_ids))
        sep_id = _EMPTY
        if separator is not None:
            if separator not in vocab:
                return None
            sep_id = vocab[separator]
        bits = max(4, int(np.ceil(np.log2(max(1, len(pairs)) * 3))))  # load ≤ 1/3: short probes
        vocab_size = np.int64(max(vocab.values()) + 1)
        table = _build_pairs(left, right, vocab_size, bits)
        return cls(
            np.array(char_start, np.int64),
            np.array(char_ids, np.int32),
            (table, left, right, merged, vocab_size),
            split_rows,
            sep_id,
        )

    def encode(
        self, images: np.ndarray, quantizer: Quantizer, order: np.ndarray | None = None
    ) -> list[np.ndarray]:
        """N×H×W×C uint8 images → each image's ids, its pixels made symbols by ``quantizer`` and
        read in ``order`` (flat pixel indices, a scan order; default row by row)."""
        return self.encode_symbols(scan_symbols(images, quantizer, order), images.shape[2])

    def encode_symbols(self, symbols: np.ndarray, width: int) -> list[np.ndarray]:
        """N×P symbols (each image's, along its scan) in words of ``width`` → each image's ids."""
        n = len(symbols)
        height = symbols.shape[1] // width
        # Each image's starting ids (byte fallback: several per symbol) bound what it writes.
        if self.one_id_per_symbol:
            n_ids = np.full(n, symbols.shape[1], np.int64)
        else:
            n_ids = np.diff(self.char_start)[symbols].sum(axis=1)
        room = n_ids + (height - 1 if self.sep_id != _EMPTY else 0)
        starts = np.zeros(n + 1, np.int64)
        starts[1:] = np.cumsum(room)
        out = np.empty(starts[n], np.int32)
        counts = np.empty(n, np.int64)
        stage = _merge_parallel if n >= PARALLEL_MIN_IMAGES else _merge_serial
        stage(
            symbols,
            n_ids,
            starts,
            width,
            self.split_rows,
            self.sep_id,
            self.char_start,
            self.char_ids,
            self.pair_ranks,
            self.merges,
            out,
            counts,
        )
        return [out[s : s + c] for s, c in zip(starts[:-1], counts, strict=True)]
