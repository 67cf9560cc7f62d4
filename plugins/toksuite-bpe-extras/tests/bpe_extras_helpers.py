"""Shared by the tests: small smooth images and encoders fitted on them (cached)."""

from __future__ import annotations

import functools

import numpy as np


def smooth_images(n: int = 40, size: int = 12, seed: int = 0) -> np.ndarray:
    """Images of one colour each plus mild noise, so that BPE and k-means have structure to find."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, 1, 1, 3), dtype=np.uint8)
    noise = rng.integers(0, 40, (n, size, size, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


@functools.cache
def fitted(name: str, **params):
    """One fitted encoder per name and parameters, shared by the tests (fitting takes a moment)."""
    from toksuite_bpe_extras.scan_bpe import HilbertBPEEncoder, SnakeBPEEncoder

    classes = {c.name: c for c in (SnakeBPEEncoder, HilbertBPEEncoder)}
    return classes[name](**params).fit(smooth_images(), seed=0)
