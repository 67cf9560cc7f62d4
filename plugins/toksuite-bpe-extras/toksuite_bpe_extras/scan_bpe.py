"""Image BPE read along a snake or a Hilbert curve instead of row by row.

Pixels are quantised exactly as the built-in ``bpe-rgb`` does (``levels`` bins per channel, one
symbol per pixel, bins decode to their centres), so quantisation and PSNR are identical and only
the scan order differs. BPE merges pairs that are next to each other in the sequence; along a
Hilbert curve, a token of 4 or 16 symbols tends to be a compact 2×2 or 4×4 patch instead of a
strip of one row, and patches of a smooth image repeat more often than strips do.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from toksuite.encoders import Quantizer

from toksuite_bpe_extras.symbol_bpe import SymbolBPEEncoder


class _ScanBPERGBEncoder(SymbolBPEEncoder):
    """The paper's RGB symbols (r·L² + g·L + b), BPE along this class's scan order."""

    channels = 3
    scan_order_name: str

    def __init__(
        self,
        *,
        vocab_size: int = 10000,
        levels: int = 10,
        segment: int | None = None,
        min_frequency: int = 2,
        max_fit_images: int | None = None,
    ) -> None:
        super().__init__(
            vocab_size=vocab_size,
            scan=self.scan_order_name,
            segment=segment,
            min_frequency=min_frequency,
            max_fit_images=max_fit_images,
        )
        self.levels = levels
        self.quantizer = Quantizer(levels, self.channels)  # validates levels
        self._check_vocab()

    @property
    def n_symbols(self) -> int:
        return self.quantizer.n_symbols

    def quantize(self, image: np.ndarray) -> np.ndarray:
        return self.quantizer.quantize(self.check_image(image))

    def _symbol_grids(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        return [self.quantizer.symbols(image) for image in images]

    def _grid_to_image(self, grid: np.ndarray) -> np.ndarray:
        return self.quantizer.image(grid)


class SnakeBPEEncoder(_ScanBPERGBEncoder):
    """Image BPE on RGB symbols read in a snake (boustrophedon): every other row reversed."""

    name = "bpe-rgb-snake"
    scan_order_name = "snake"
    description = "image BPE (L³ RGB symbols) along a snake scan: odd rows right to left"


class HilbertBPEEncoder(_ScanBPERGBEncoder):
    """Image BPE on RGB symbols read along a generalized Hilbert curve (any H×W)."""

    name = "bpe-rgb-hilbert"
    scan_order_name = "hilbert"
    description = "image BPE (L³ RGB symbols) along a Hilbert curve: tokens are compact patches"
