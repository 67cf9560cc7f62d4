"""Weighted k-means for RGB palettes: k-means++ seeding and Lloyd's iterations with Hamerly bounds.

Pixels are 8-bit, so a million of them hold far fewer distinct colours (about a third, on CIFAR).
Clustering the distinct colours weighted by their counts is exactly the same objective as
clustering every pixel, on a smaller problem. Nearest centres come from a k-d tree over the
centres: in three dimensions a query touches a handful of them, where the full (points × k)
distance matrix is memory-bound. Lloyd's iterations skip, with Hamerly's bounds (an upper bound to
the assigned centre, a lower bound to every other), the colours whose centre provably cannot
change. The result is plain Lloyd's algorithm, only cheaper per iteration.

Everything is seeded through one ``numpy.random.Generator``, and no decision depends on a
thread-dependent summation order, so the same seed gives bit-identical centroids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

# Rows per block when ties are settled by brute force: (rows × k × 3) float64, ~25 MB at k = 512.
_TIE_ROWS = 2048


@dataclass(frozen=True)
class KMeansResult:
    centroids: np.ndarray  # (k, 3) float64
    inertia: float  # weighted sum of squared distances at the returned centroids
    n_iter: int
    converged: bool
    colours: int  # distinct colours clustered


def pack_rgb(pixels: np.ndarray) -> np.ndarray:
    """(n, 3) uint8 → (n,) int32 codes ``r << 16 | g << 8 | b``."""
    # In place on one column: casting the whole (n, 3) array first is ~18× slower.
    codes = pixels[:, 0].astype(np.int32)
    codes <<= 8
    codes |= pixels[:, 1]
    codes <<= 8
    codes |= pixels[:, 2]
    return codes


def unpack_rgb(codes: np.ndarray) -> np.ndarray:
    """Inverse of `pack_rgb`: (n,) codes → (n, 3) uint8."""
    codes = codes.astype(np.int32, copy=False)
    return np.stack([(codes >> 16) & 255, (codes >> 8) & 255, codes & 255], axis=1).astype(np.uint8)


def distinct_colours(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct colours of (n, 3) uint8 pixels, sorted by code, and how often each occurs."""
    codes, counts = np.unique(pack_rgb(pixels), return_counts=True)
    return unpack_rgb(codes), counts.astype(np.float64)


def nearest_centroid(points: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centroid and the squared distance, in float64; lowest index on ties.

    A k-d tree over the centroids answers each query with exact float64 differences, and 3-D
    queries against a few hundred centres are cheap — far cheaper than the full distance matrix,
    which on 8-bit colours is memory-bound. Where the two nearest are equally far the tree may
    name either, so those rare points are settled by brute force with the lowest index winning.
    """
    points = np.asarray(points, dtype=np.float64)
    centroids = np.asarray(centroids, dtype=np.float64)
    if len(centroids) == 1:
        return np.zeros(len(points), np.int64), ((points - centroids[0]) ** 2).sum(1)
    labels, first, second = _two_nearest(points, centroids)
    tied = np.flatnonzero(second <= first * (1 + 1e-12))
    for start in range(0, len(tied), _TIE_ROWS):
        rows = tied[start : start + _TIE_ROWS]
        d = ((points[rows, None, :] - centroids[None, :, :]) ** 2).sum(2)
        labels[rows] = np.argmin(d, axis=1)
    dist = ((points - centroids[labels]) ** 2).sum(1)
    return labels, dist


def _two_nearest(points: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, ...]:
    """Label of the nearest centroid and the squared distances to the nearest and second-nearest."""
    tree = cKDTree(centroids)
    # Each query is answered on its own, so the result does not depend on the worker count.
    dist, idx = tree.query(points, k=2, p=2, workers=-1)
    return idx[:, 0].astype(np.int64), dist[:, 0] ** 2, dist[:, 1] ** 2


def kmeans_plusplus(
    points: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator
) -> np.ndarray:
    """Greedy weighted k-means++ (Arthur & Vassilvitskii; scikit-learn's 2 + ln k local trials).

    Each new centre is the best of a few candidates drawn with probability ∝ weight × D².
    """
    trials = 2 + int(np.log(k))
    points = np.ascontiguousarray(points, dtype=np.float64)
    columns = [np.ascontiguousarray(points[:, j]) for j in range(3)]
    centres = np.empty((k, 3), dtype=np.float64)
    first = np.searchsorted(np.cumsum(weights), rng.random() * weights.sum(), side="right")
    centres[0] = points[min(int(first), len(points) - 1)]
    closest = ((points - centres[0]) ** 2).sum(1)
    for c in range(1, k):
        cumulative = np.cumsum(weights * closest)
        draws = rng.random(trials) * cumulative[-1]
        candidates = np.minimum(np.searchsorted(cumulative, draws, side="right"), len(points) - 1)
        # (trials, n) squared distances, one coordinate at a time to keep temporaries small.
        d = (columns[0][None, :] - points[candidates, 0, None]) ** 2
        d += (columns[1][None, :] - points[candidates, 1, None]) ** 2
        d += (columns[2][None, :] - points[candidates, 2, None]) ** 2
        np.minimum(d, closest[None, :], out=d)
        # einsum, not BLAS: OpenBLAS's threaded gemv is slow on this shape and its summation order
        # may depend on the thread count, which would break bit-for-bit determinism.
        best = int(np.argmin(np.einsum("ij,j->i", d, weights)))
        closest = d[best]
        centres[c] = points[candidates[best]]
    return centres


def _weighted_means(
    points: np.ndarray, weights: np.ndarray, labels: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    mass = np.bincount(labels, weights=weights, minlength=k)
    sums = np.stack(
        [np.bincount(labels, weights=weights * points[:, j], minlength=k) for j in range(3)], 1
    )
    return sums, mass


def lloyd(
    points: np.ndarray,
    weights: np.ndarray,
    centres: np.ndarray,
    *,
    max_iter: int,
    tol: float,
    on_iteration: Callable[[int, float], None] | None = None,
) -> KMeansResult:
    """Weighted Lloyd iterations from ``centres`` until no colour changes centre, the relative
    drop in inertia is at most ``tol``, or ``max_iter`` iterations; Hamerly's bounds skip the
    colours whose centre provably cannot change."""
    k = len(centres)
    points = np.ascontiguousarray(points, dtype=np.float64)
    centres = np.array(centres, dtype=np.float64)
    labels, _, second = _two_nearest(points, centres)
    lower = np.sqrt(second)
    previous = np.inf
    inertia = float(np.inf)
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        sums, mass = _weighted_means(points, weights, labels, k)
        new = centres.copy()
        filled = mass > 0
        new[filled] = sums[filled] / mass[filled, None]
        if not filled.all():
            new[~filled] = _reseed(points, weights, centres[labels], np.flatnonzero(~filled))
        drift = np.sqrt(((new - centres) ** 2).sum(1))
        centres = new
        # Exact distance to the (moved) assigned centre; the lower bound shrinks by the largest
        # drift of any other centre.
        upper = np.sqrt(((points - centres[labels]) ** 2).sum(1))
        order = np.argsort(drift)[::-1]
        top, runner_up = drift[order[0]], (drift[order[1]] if k > 1 else 0.0)
        lower = lower - np.where(labels == order[0], runner_up, top)
        half_gap = _half_gap_to_nearest_other(centres)
        need = np.flatnonzero(upper > np.maximum(lower, half_gap[labels]))
        changed = 0
        if need.size:
            new_labels, _, second = _two_nearest(points[need], centres)
            changed = int((new_labels != labels[need]).sum())
            labels[need] = new_labels
            upper[need] = np.sqrt(((points[need] - centres[new_labels]) ** 2).sum(1))
            lower[need] = np.sqrt(second)
        inertia = float((weights * upper * upper).sum())
        if on_iteration is not None:
            on_iteration(n_iter, inertia)
        if changed == 0 or previous - inertia <= tol * inertia:
            converged = True
            break
        previous = inertia
    return KMeansResult(centres, inertia, n_iter, converged, len(points))


def _half_gap_to_nearest_other(centres: np.ndarray) -> np.ndarray:
    """Half the distance from each centre to its nearest other centre (Hamerly's s(c))."""
    if len(centres) == 1:
        return np.full(1, np.inf)
    dist, _ = cKDTree(centres).query(centres, k=2)
    return 0.5 * dist[:, 1]


def _reseed(
    points: np.ndarray, weights: np.ndarray, assigned: np.ndarray, empty: np.ndarray
) -> np.ndarray:
    """New positions for empty clusters: the colours that cost the most where they are now
    (largest weight × squared distance), a deterministic choice (stable sort, ties by index)."""
    cost = weights * ((points - assigned) ** 2).sum(1)
    worst = np.argsort(-cost, kind="stable")[: len(empty)]
    return points[worst]


def fit_palette(
    pixels: np.ndarray,
    k: int,
    *,
    rng: np.random.Generator,
    init_pixels: int,
    max_iter: int,
    tol: float,
    on_iteration: Callable[[int, float], None] | None = None,
) -> KMeansResult:
    """k RGB centres for (n, 3) uint8 ``pixels``: weighted k-means over their distinct colours.

    Seeding runs on the distinct colours of at most ``init_pixels`` of the pixels: k-means++ costs
    k passes over its input, and Lloyd's iterations on all colours wash out the difference.
    """
    colours, counts = distinct_colours(pixels)
    points = colours.astype(np.float64)
    if len(colours) <= k:
        # Every distinct colour gets a centre of its own (zero inertia). Spare centres repeat the
        # most common colour; the lowest index wins ties, so they are never used.
        order = np.argsort(-counts, kind="stable")
        centres = np.concatenate([points[order], np.repeat(points[order[:1]], k - len(order), 0)])
        return KMeansResult(centres, 0.0, 0, True, len(colours))
    seed_points, seed_counts = points, counts
    if len(pixels) > init_pixels:
        subset = pixels[np.sort(rng.choice(len(pixels), init_pixels, replace=False))]
        sub_colours, sub_counts = distinct_colours(subset)
        if len(sub_colours) > k:
            seed_points, seed_counts = sub_colours.astype(np.float64), sub_counts
    centres = kmeans_plusplus(seed_points, seed_counts, k, rng)
    return lloyd(points, counts, centres, max_iter=max_iter, tol=tol, on_iteration=on_iteration)
