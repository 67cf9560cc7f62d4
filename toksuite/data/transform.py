"""Shared per-source steps: colour conversion, crop/resize, limit and a deterministic split.

Order, the same for every source: pick the split, apply ``limit`` (a seeded random subset of each
split, kept in source order), then convert channels, then crop/resize — so nothing is decoded or
resized that is then thrown away.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from toksuite.data.base import Dataset, LoadOptions
from toksuite.data.images import Geometry, array_to_pil, transform_image
from toksuite.errors import DataError
from toksuite.progress import progress_bar

T = TypeVar("T")
R = TypeVar("R")


def to_channels(images: np.ndarray, channels: int | None) -> np.ndarray:
    """N×H×W×C (or H×W×C) uint8 → the requested channel count.

    RGB → grey uses ITU-R 601 luma with PIL's exact fixed-point rounding, so arrays and files give
    identical pixels; grey → RGB repeats the plane.
    """
    if channels is None or images.shape[-1] == channels:
        return images
    if channels == 1:
        rgb = images.astype(np.uint32)
        luma = rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000
        return (luma >> 16).astype(np.uint8)[..., None]
    if channels == 3 and images.shape[-1] == 1:
        return np.repeat(images, 3, axis=-1)
    raise DataError(f"cannot convert {images.shape[-1]}-channel images to {channels} channels")


def split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic train/test indices (sorted) for a source without its own split."""
    if not 0.0 <= test_fraction < 1.0:
        raise DataError(f"test fraction {test_fraction} must be in [0, 1)")
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    if n > 1 and test_fraction > 0:
        n_test = min(max(n_test, 1), n - 1)  # both splits non-empty whenever possible
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def limit_indices(indices: np.ndarray, limit: int | None, seed: int, salt: int) -> np.ndarray:
    """At most ``limit`` of ``indices``: a seeded random subset, kept in source order.

    A random subset rather than the first ``limit``: folders and archives are often sorted by
    class, and the first N would hold only a few classes.
    """
    indices = np.asarray(indices, dtype=np.int64)
    if limit is None or len(indices) <= limit:
        return indices
    pick = np.random.default_rng([seed, salt]).choice(len(indices), size=limit, replace=False)
    return indices[np.sort(pick)]


def split_and_limit(n: int, options: LoadOptions) -> tuple[np.ndarray, np.ndarray]:
    train, test = split(n, options.test_fraction, options.seed)
    return (
        limit_indices(train, options.limit, options.seed, 0),
        limit_indices(test, options.limit, options.seed, 1),
    )


def worker_count(options: LoadOptions) -> int:
    # Decoding and resizing release the GIL, so threads scale with cores; I/O likes a few more.
    return max(1, options.workers or min(16, (os.cpu_count() or 1) + 2))


def parallel_map(
    fn: Callable[[T], R], items: Sequence[T] | np.ndarray, options: LoadOptions, description: str
) -> Iterable[R]:
    """``map(fn, items)`` on a thread pool with a progress bar; results in input order."""
    with progress_bar(description, len(items), show=options.progress) as advance:
        if len(items) < 64 or worker_count(options) == 1:
            for item in items:
                yield fn(item)
                advance(1)
            return
        with ThreadPoolExecutor(worker_count(options)) as pool:
            try:
                for result in pool.map(fn, items):
                    yield result
                    advance(1)
            finally:
                pool.shutdown(cancel_futures=True)


def apply_geometry(images: np.ndarray, options: LoadOptions, name: str) -> np.ndarray:
    """Channels, then crop box and resize + centre-crop, on an N×H×W×C uint8 array."""
    images = to_channels(images, options.channels)
    geometry = Geometry(options.crop, options.resolution, None)
    if not geometry.changes_size or len(images) == 0:
        return images
    if options.resolution is None:  # crop only: plain slicing, no resampling
        assert options.crop is not None  # changes_size without a resolution
        left, top, width, height = options.crop
        if left + width > images.shape[2] or top + height > images.shape[1]:
            raise DataError(
                f"{name}: crop box {left},{top},{width},{height} does not fit "
                f"{images.shape[2]}×{images.shape[1]} images"
            )
        return np.ascontiguousarray(images[:, top : top + height, left : left + width])

    def one(image: np.ndarray) -> np.ndarray:
        return transform_image(array_to_pil(image), geometry, name)

    h, w = options.resolution
    out = np.empty((len(images), h, w, images.shape[-1]), np.uint8)
    for i, image in enumerate(parallel_map(one, images, options, f"resizing {name}")):
        out[i] = image
    return out


def finish(
    spec: str,
    images: np.ndarray,
    labels: np.ndarray | None,
    options: LoadOptions,
    class_names: list[str] | None = None,
) -> Dataset:
    """A source without its own split: split, limit, then channels and geometry."""
    train, test = split_and_limit(len(images), options)
    return finish_split(
        spec,
        images[train],
        None if labels is None else labels[train],
        images[test],
        None if labels is None else labels[test],
        options,
        class_names,
        limited=True,
    )


def finish_split(
    spec: str,
    x_train: np.ndarray,
    y_train: np.ndarray | None,
    x_test: np.ndarray,
    y_test: np.ndarray | None,
    options: LoadOptions,
    class_names: list[str] | None = None,
    *,
    limited: bool = False,
) -> Dataset:
    """A source with its own split: limit each split, then channels and geometry."""
    if not limited:
        tr = limit_indices(np.arange(len(x_train)), options.limit, options.seed, 0)
        te = limit_indices(np.arange(len(x_test)), options.limit, options.seed, 1)
        # Index only when the limit drops images: x[all indices] would copy the whole split
        # (and read a memory-mapped one into memory).
        if len(tr) < len(x_train):
            x_train, y_train = x_train[tr], None if y_train is None else y_train[tr]
        if len(te) < len(x_test):
            x_test, y_test = x_test[te], None if y_test is None else y_test[te]
    return Dataset(
        spec,
        apply_geometry(x_train, options, spec),
        apply_geometry(x_test, options, spec),
        None if y_train is None else np.asarray(y_train, dtype=np.int64),
        None if y_test is None else np.asarray(y_test, dtype=np.int64),
        class_names,
    )


def resize_crop(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize N×H×W×C so the shorter side fits, then centre-crop to ``size`` (H, W)."""
    return apply_geometry(images, LoadOptions(resolution=size, progress=False), "images")
