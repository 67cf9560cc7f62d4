"""Shared per-source steps: colour conversion, resize/crop, limit and a deterministic split."""

from __future__ import annotations

import numpy as np

from toksuite.data.base import Dataset, LoadOptions


def to_channels(images: np.ndarray, channels: int | None) -> np.ndarray:
    """N×H×W×C uint8 → the requested channel count (RGB → grey by ITU-R 601 luma, as PIL)."""
    if channels is None or images.shape[-1] == channels:
        return images
    if channels == 1:
        luma = images[..., 0] * 299 + images[..., 1] * 587 + images[..., 2] * 114
        return ((luma.astype(np.uint32) + 500) // 1000).astype(np.uint8)[..., None]
    return np.repeat(images, 3, axis=-1)


def split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def finish(
    spec: str,
    images: np.ndarray,
    labels: np.ndarray | None,
    options: LoadOptions,
    class_names: list[str] | None = None,
) -> Dataset:
    """Apply channels, split and limit to a source without its own split."""
    images = to_channels(images, options.channels)
    train, test = split(len(images), options.test_fraction, options.seed)
    if options.limit is not None:
        train, test = train[: options.limit], test[: options.limit]
    pick = (lambda a, i: None if a is None else a[i])
    return Dataset(spec, images[train], images[test], pick(labels, train), pick(labels, test),
                   class_names)


def resize_crop(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize N×H×W×C so the shorter side fits, then centre-crop to ``size`` (H, W)."""
    from PIL import Image

    h, w = size
    out = np.empty((len(images), h, w, images.shape[-1]), np.uint8)
    for i, image in enumerate(images):
        im = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        scale = max(h / im.height, w / im.width)
        rw, rh = max(w, round(im.width * scale)), max(h, round(im.height * scale))
        im = im.resize((rw, rh), Image.Resampling.BICUBIC)
        left, top = (rw - w) // 2, (rh - h) // 2
        out[i] = np.asarray(im.crop((left, top, left + w, top + h))).reshape(h, w, -1)
    return out
