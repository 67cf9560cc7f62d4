"""Raw pixels: one token per grey pixel, or one per sub-pixel (iGPT's raw RGB sequence).

``levels`` (default 256: the values themselves) quantises each value to that many bins with the
image-BPE encoders' quantiser (`toksuite.encoders.symbols.Quantizer`, bin centres), so that
``pixels-rgb -p levels=10`` models exactly the images ``bpe-rgb`` models: the matched control that
separates what BPE's merges buy from what its quantisation buys.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from toksuite.encoders.base import ID_DTYPE, Decoded, Encoder
from toksuite.encoders.symbols import Quantizer


class _PixelEncoder(Encoder):
    """Ids are the values' levels in raster order (R, G, B per pixel for RGB); with the default
    256 levels, the 0–255 values themselves."""

    def __init__(self, *, levels: int = 256) -> None:
        # One channel's bins: per-value, whatever the image's channels (RGB is 3 values a pixel).
        self.quantizer = Quantizer(levels, 1)
        self.levels = levels

    @property
    def vocab_size(self) -> int:
        return self.levels

    def encode(self, image: np.ndarray) -> np.ndarray:
        values = self.check_image(image).reshape(-1)
        return self.quantizer.level_of[values].astype(ID_DTYPE)

    def quantize(self, image: np.ndarray) -> np.ndarray:
        return self.quantizer.quantize(self.check_image(image))

    def sequence_length(self, height: int, width: int) -> int:
        return height * width * self.channels

    def decode_checked(self, ids: Sequence[int] | np.ndarray, shape: Sequence[int]) -> Decoded:
        h, w, c = self.output_shape(shape)
        ids, notes = self.repair_ids(ids, h * w * c)
        image = self.quantizer.centres[ids].reshape(h, w, c)
        return Decoded(image, repairs=len(notes), notes=tuple(notes))


class GreyPixelEncoder(_PixelEncoder):
    """One token per grey pixel, 256 values: H·W tokens."""

    name = "pixels-grey"
    channels = 1
    description = "one token per grey pixel (256 values, or `levels` bins)"


class RGBPixelEncoder(_PixelEncoder):
    """One token per sub-pixel, 256 values: 3·H·W tokens (iGPT's raw sequence)."""

    name = "pixels-rgb"
    aliases = ("pixels",)
    channels = 3
    description = (
        "one token per sub-pixel R, G, B (256 values, or `levels` bins), iGPT's raw sequence"
    )
