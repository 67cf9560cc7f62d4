"""pixels-grey4: one token per grey pixel, quantised to 16 levels (a vocabulary of 16).

The smallest useful toksuite encoder, written the way any outside package would write one:
subclass `Encoder`, fill in four methods, register the class from a hook.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import toksuite
from toksuite.encoders import Decoded, Encoder

LEVELS = 16
STEP = 256 // LEVELS  # each level covers 16 grey values: level = value // 16
# What each level decodes to: the middle of its bin (level 0 → 8, level 15 → 248), which keeps
# the error at most 8 grey values instead of the 15 that the bin's lower edge would cost.
LEVEL_VALUES = (np.arange(LEVELS) * STEP + STEP // 2).astype(np.uint8)


class Grey4Encoder(Encoder):
    """Grey pixels → 16 levels, one token per pixel in raster order: H·W tokens."""

    name = "pixels-grey4"  # the registry key: `toksuite squeeze --encoders pixels-grey4`
    channels = 1  # toksuite converts every image to grey before it reaches this encoder
    description = "one token per grey pixel, 16 levels (the plugin tutorial)"

    def __init__(self) -> None:
        # No parameters and nothing to learn, so no `fit` either: the base class's `fit`
        # returns self and `is_fitted` is always true.
        pass

    @property
    def vocab_size(self) -> int:
        return LEVELS

    def sequence_length(self, height: int, width: int) -> int:
        # Fixed length: the model's context can be sized without encoding anything.
        return height * width

    def encode(self, image: np.ndarray) -> np.ndarray:
        # check_image: uint8, H×W×1 (an H×W array is accepted too), or a clear DataError.
        pixels = self.check_image(image)
        return (pixels.reshape(-1) // STEP).astype(np.int32)

    def quantize(self, image: np.ndarray) -> np.ndarray:
        # Exactly what decode(encode(image)) gives back: toksuite reports PSNR against this.
        return LEVEL_VALUES[self.check_image(image) // STEP]

    def decode_checked(self, ids: Sequence[int] | np.ndarray, shape: Sequence[int]) -> Decoded:
        # A model can generate anything; decode must still return an image of `shape`, so it
        # repairs what it can and counts each repair instead of raising.
        height, width, _ = self.output_shape(shape)
        # Ids outside the vocabulary dropped, then cut or padded to one id per pixel.
        ids, notes = self.repair_ids(ids, height * width)
        image = LEVEL_VALUES[ids].reshape(height, width, 1)
        return Decoded(image, repairs=len(notes), notes=tuple(notes))


@toksuite.hookimpl
def toksuite_register_encoders(register):
    """toksuite calls this once at start-up; register classes, not instances."""
    register(Grey4Encoder)
