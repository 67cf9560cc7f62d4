"""Small image metrics shared by the measurements."""

from __future__ import annotations

import math

import numpy as np


def psnr(reference: np.ndarray, image: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for uint8 images (peak 255); inf when identical."""
    diff = reference.astype(np.float64) - image.astype(np.float64)
    mse = float(np.mean(diff * diff))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)
