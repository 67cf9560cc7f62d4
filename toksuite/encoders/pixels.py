"""Raw pixels: one token per grey pixel, or one per sub-pixel (iGPT's raw RGB sequence)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from toksuite.encoders.base import ID_DTYPE, Decoded, Encoder


class _PixelEncoder(Encoder):
    """Ids are the 0–255 values themselves in raster order (R, G, B per pixel for RGB)."""

    def __init__(self) -> None:
        pass

    @property
    def vocab_size(self) -> int:
        return 256

    def encode(self, image: np.ndarray) -> np.ndarray:
        return self.check_image(image).reshape(-1).astype(ID_DTYPE)

    def quantize(self, image: np.ndarray) -> np.ndarray:
        return self.check_image(image).copy()

    def sequence_length(self, height: int, width: int) -> int:
        return height * width * self.channels

    def decode_checked(self, ids: Sequence[int] | np.ndarray, shape: Sequence[int]) -> Decoded:
        h, w, c = self.output_shape(shape)
        ids = self.ids_array(ids)
        notes = []
        bad = (ids < 0) | (ids >= 256)
        if bad.any():
            notes.append(f"{int(bad.sum())} ids outside 0..255 dropped")
            ids = ids[~bad]
        need = h * w * c
        if ids.size != need:
            notes.append(f"{ids.size} values for {need}: {'cut' if ids.size > need else 'padded'}")
            # Pad with the last value seen (or black): the least surprising continuation.
            fill = ids[-1] if ids.size else 0
            ids = np.concatenate([ids[:need], np.full(max(0, need - ids.size), fill)])
        image = ids.astype(np.uint8).reshape(h, w, c)
        return Decoded(image, repairs=len(notes), notes=tuple(notes))


class GreyPixelEncoder(_PixelEncoder):
    """One token per grey pixel, 256 values: H·W tokens."""

    name = "pixels-grey"
    channels = 1
    description = "one token per grey pixel (256 values)"


class RGBPixelEncoder(_PixelEncoder):
    """One token per sub-pixel, 256 values: 3·H·W tokens (iGPT's raw sequence)."""

    name = "pixels-rgb"
    aliases = ("pixels",)
    channels = 3
    description = "one token per sub-pixel R, G, B (256 values), iGPT's raw sequence"
