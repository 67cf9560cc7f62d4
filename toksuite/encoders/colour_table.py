"""Every 8-bit RGB colour's nearest centroid, computed once in compiled code: a 2^24 id table.

A palette encoder spends most of its time finding each pixel's nearest centroid. With the full
table, that is one read per pixel, cheap enough to do inside the merge kernel's symbol loop
(`toksuite.encoders.bpe_kernel`) instead of in a separate pass over the batch.

The table must give exactly the ids of `toksuite.encoders.kmeans_fit.nearest_centroid` (a k-d
tree, with near-ties settled by brute force in float64, lowest index winning). Rather than
compare every one of the 16.7 million colours with all k centroids, the colour cube is cut into
cells (8³ colours, then 2³ within each), and a centroid is dropped from a cell when even its
nearest point of the cell is farther than the farthest point of the cell from some other
centroid: it can then never be the nearest, nor tie with it. The few candidates left are
compared colour by colour with the same float64 arithmetic as the brute force
(``((x - c) ** 2).sum()``, channels added in order), the lowest index winning ties, so ties
between equidistant centroids resolve as the reference does.
"""

from __future__ import annotations

import numpy as np

try:  # numba is a dependency; without it the palette's ids come from the k-d tree instead
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised where numba is not installed
    numba = None  # type: ignore[assignment]

COLOURS = 1 << 24  # every 8-bit RGB colour, indexed r << 16 | g << 8 | b
_CELL = 8  # colour values per cell side: 32³ cells of 8³ colours
_SUB = 2  # values per sub-cell side, pruned again from its cell's candidates
_SLACK = 1e-9  # pruning keeps anything within rounding of the bound: never drops the nearest


def _jit(**options):
    return njit(cache=True, **options) if numba is not None else (lambda f: f)


@_jit(inline="always")
def _prune(centroids, candidates, n, lo, side, keep):
    """Of ``candidates[:n]``, those that may be nearest to some colour of the box ``lo`` ..
    ``lo + side - 1`` (per channel) into ``keep``, in index order; returns how many."""
    best = np.inf
    for i in range(n):
        j = candidates[i]
        far = 0.0
        for c in range(3):
            a = lo[c] - centroids[j, c]
            b = lo[c] + side - 1 - centroids[j, c]
            far += max(a * a, b * b)
        best = min(best, far)
    bound = best * (1 + _SLACK) + _SLACK
    kept = 0
    for i in range(n):
        j = candidates[i]
        near = 0.0
        for c in range(3):
            below = lo[c] - centroids[j, c]
            above = centroids[j, c] - (lo[c] + side - 1)
            gap = max(0.0, below, above)
            near += gap * gap
        if near <= bound:
            keep[kept] = j
            kept += 1
    return kept


@_jit(parallel=True)
def _fill(centroids, out):
    k = centroids.shape[0]
    cells = 256 // _CELL
    for cell in prange(cells**3):
        lo = np.empty(3, np.float64)
        lo[0] = cell // (cells * cells) * _CELL
        lo[1] = cell // cells % cells * _CELL
        lo[2] = cell % cells * _CELL
        everyone = np.arange(k)
        cell_keep = np.empty(k, np.int64)
        n_cell = _prune(centroids, everyone, k, lo, _CELL, cell_keep)
        sub_keep = np.empty(k, np.int64)
        sub_lo = np.empty(3, np.float64)
        for sr in range(0, _CELL, _SUB):
            for sg in range(0, _CELL, _SUB):
                for sb in range(0, _CELL, _SUB):
                    sub_lo[0], sub_lo[1], sub_lo[2] = lo[0] + sr, lo[1] + sg, lo[2] + sb
                    n_sub = _prune(centroids, cell_keep, n_cell, sub_lo, _SUB, sub_keep)
                    for r in range(int(sub_lo[0]), int(sub_lo[0]) + _SUB):
                        for g in range(int(sub_lo[1]), int(sub_lo[1]) + _SUB):
                            for b in range(int(sub_lo[2]), int(sub_lo[2]) + _SUB):
                                out[(r << 16) | (g << 8) | b] = _nearest(
                                    centroids, sub_keep, n_sub, r, g, b
                                )


@_jit(inline="always")
def _nearest(centroids, candidates, n, r, g, b):
    # The reference's brute force: ((x - c) ** 2).sum() in float64, channels in order; a strict
    # < keeps the lowest index of equal distances (candidates are in index order).
    best_j = candidates[0]
    best_d = np.inf
    for i in range(n):
        j = candidates[i]
        dr = np.float64(r) - centroids[j, 0]
        dg = np.float64(g) - centroids[j, 1]
        db = np.float64(b) - centroids[j, 2]
        d = dr * dr
        d = d + dg * dg
        d = d + db * db
        if d < best_d:
            best_d = d
            best_j = j
    return best_j


def colour_table(centroids: np.ndarray) -> np.ndarray | None:
    """The 2^24 colour → nearest-centroid table, or None when numba is missing.

    uint8 for at most 256 centroids (16 MiB), else int16 (32 MiB): the merge kernel reads it once
    per pixel, and half the bytes keep more of it in cache.
    """
    if numba is None:
        return None
    centroids = np.ascontiguousarray(centroids, np.float64)
    assert centroids.ndim == 2 and centroids.shape[1] == 3 and 1 <= len(centroids) <= 1 << 15
    out = np.empty(COLOURS, np.uint8 if len(centroids) <= 256 else np.int16)
    _fill(centroids, out)
    return out
