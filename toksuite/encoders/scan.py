"""Scan orders: the order in which an H×W grid of pixels becomes a 1-D sequence.

Each order is a permutation of the flat (row-major) pixel indices ``0..H·W-1``: ``flat[order]``
reads the pixels along the scan and ``out[order] = sequence`` puts them back. Every order here is
a bijection for every H, W >= 1, square or not, power of two or not.

* ``raster``: rows left to right, top to bottom (what the paper and iGPT use).
* ``snake`` (boustrophedon): like raster, but every other row right to left, so consecutive
  pixels are always neighbours, even across a row end.
* ``hilbert``: a generalized Hilbert curve ("gilbert", after Jakub Červený's algorithm) that
  fills any rectangle, not only 2^n squares. Consecutive pixels are neighbours (a rare diagonal
  step where both sides are odd), and any stretch of the sequence covers a compact patch rather
  than a thin strip, which is what BPE merges along the sequence can exploit.
"""

from __future__ import annotations

import functools
from typing import Literal

import numpy as np

__all__ = ["SCAN_ORDERS", "ScanOrder", "from_scan", "gilbert_xy", "scan_order"]

ScanOrder = Literal["raster", "snake", "hilbert"]
SCAN_ORDERS: tuple[str, ...] = ("raster", "snake", "hilbert")


@functools.lru_cache(maxsize=32)
def scan_order(scan: str, height: int, width: int) -> np.ndarray:
    """Flat pixel indices in scan order (read-only int64 array of length H·W; cached)."""
    if scan not in SCAN_ORDERS:
        raise ValueError(f"unknown scan order {scan!r} (choose from {', '.join(SCAN_ORDERS)})")
    if height < 1 or width < 1:
        raise ValueError(f"scan order of an empty {height}×{width} grid")
    grid = np.arange(height * width, dtype=np.int64).reshape(height, width)
    if scan == "raster":
        order = grid.reshape(-1)
    elif scan == "snake":
        grid[1::2] = grid[1::2, ::-1]
        order = grid.reshape(-1)
    else:
        xs, ys = gilbert_xy(width, height)
        order = ys * width + xs
    order.setflags(write=False)  # shared through the cache: nobody may change it
    return order


def from_scan(values: np.ndarray, scan: str, height: int, width: int) -> np.ndarray:
    """H·W values read along ``scan`` → the same values in raster order (flat)."""
    raster = np.empty(height * width, values.dtype)
    raster[scan_order(scan, height, width)] = values
    return raster


def gilbert_xy(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """x and y of every cell of a width×height rectangle along a generalized Hilbert curve.

    The rectangle is split recursively along its longer side into pieces whose curves join end to
    start; a piece one cell thin is filled straight. A piece's path relative to its first cell
    depends only on its two side vectors, and a large curve repeats few distinct pieces, so each
    is computed once and shifted into place (112×112 in milliseconds, 1024×1024 in a fraction of
    a second).
    """
    memo: dict[tuple[int, int, int, int], tuple[np.ndarray, np.ndarray]] = {}

    def piece(ax: int, ay: int, bx: int, by: int) -> tuple[np.ndarray, np.ndarray]:
        # (ax, ay) runs along the major side, (bx, by) along the minor one; path starts at (0, 0).
        key = (ax, ay, bx, by)
        if key in memo:
            return memo[key]
        w, h = abs(ax + ay), abs(bx + by)
        dax, day = _sign(ax), _sign(ay)
        dbx, dby = _sign(bx), _sign(by)
        if h == 1 or w == 1:
            n, dx, dy = (w, dax, day) if h == 1 else (h, dbx, dby)
            steps = np.arange(n, dtype=np.int64)
            memo[key] = (dx * steps, dy * steps)
            return memo[key]
        ax2, ay2, bx2, by2 = ax // 2, ay // 2, bx // 2, by // 2
        w2, h2 = abs(ax2 + ay2), abs(bx2 + by2)
        if 2 * w > 3 * h:
            # Long and thin: cut across the major side into two halves, both walked the same way.
            if w2 % 2 and w > 2:  # an even first half keeps the curve's end where it must be
                ax2, ay2 = ax2 + dax, ay2 + day
            parts = [(0, 0, ax2, ay2, bx, by), (ax2, ay2, ax - ax2, ay - ay2, bx, by)]
        else:
            # Hilbert's step: up the first half of the minor side, across, and back down.
            if h2 % 2 and h > 2:
                bx2, by2 = bx2 + dbx, by2 + dby
            parts = [
                (0, 0, bx2, by2, ax2, ay2),
                (bx2, by2, ax, ay, bx - bx2, by - by2),
                (
                    (ax - dax) + (bx2 - dbx),
                    (ay - day) + (by2 - dby),
                    -bx2,
                    -by2,
                    -(ax - ax2),
                    -(ay - ay2),
                ),
            ]
        paths = [(x, y, *piece(*sides)) for x, y, *sides in parts]
        memo[key] = (
            np.concatenate([x + xs for x, _, xs, _ in paths]),
            np.concatenate([y + ys for _, y, _, ys in paths]),
        )
        return memo[key]

    return piece(width, 0, 0, height) if width >= height else piece(0, height, width, 0)


def _sign(v: int) -> int:
    return (v > 0) - (v < 0)
