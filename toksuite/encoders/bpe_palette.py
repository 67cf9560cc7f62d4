"""Image BPE over a fitted palette, read along a Hilbert curve, with runs held: ``bpe-palette``.

Three changes to the paper's image BPE, each measured on CelebA faces (docs/paper.md, "The
squeeze–fidelity frontier"):

* **Colours**: k colours fitted by k-means (iGPT's palette, the built-in ``kmeans`` encoder)
  instead of the uniform grid of L levels per channel. For the same PSNR a palette needs far fewer
  symbols (128 colours: 31.6 dB, against 30.6 dB for the grid's 1,000), and fewer symbols leave
  more of the vocabulary to merges.
* **Scan**: along a Hilbert curve, so a token covers a compact patch rather than a strip of a row.
* **Run holding** (``run_tolerance``): a pixel keeps the colour of the pixel before it along the
  scan when that colour's squared error (summed over R, G, B, 8-bit units) exceeds its nearest
  colour's by at most ``run_tolerance``. Smooth skin and background no longer flicker between two
  neighbouring colours, runs grow, and BPE merges them: a rate–distortion trade made before BPE,
  whose cost is in the PSNR that toksuite reports beside the squeeze. ``run_tolerance=0`` is the
  plain nearest colour.

Encoding goes through the same compiled merge kernel as ``bpe-rgb``: in the loop that reads the
pixels along the scan, a table of all 2^24 colours (`toksuite.encoders.colour_table`, computed
once per palette, exactly the k-means encoder's ids) gives each pixel's nearest colour, the same
loop holds runs, and the kernel merges.
``decode(encode(x)) == quantize(x)``, where ``quantize`` paints each pixel with its held colour.
Saved state: ``tokenizer.json`` (HF) and ``centroids.npy`` (the palette, as ``kmeans`` saves it).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Self

import numpy as np

from toksuite.encoders.bpe import AlphabetMode, RowMode, _SymbolBPEEncoder
from toksuite.encoders.hf_base import fit_sample
from toksuite.encoders.kmeans import KMeansEncoder
from toksuite.encoders.scan import ScanOrder

DEFAULT_RUN_TOLERANCE = 200.0  # see docs/paper.md: PSNR above the recipe's, squeeze 1.3×+ of it
# The palette's k-means is fitted on fewer pixels and stopped sooner than the ``kmeans`` encoder's
# (1,000,000 pixels, k-means++ on 200,000, tol 1e-4): 128 colours need far fewer, the PSNR of the
# palette on held-out faces stays within a few hundredths of a dB, and the fit takes several times
# less (docs/benchmarks.md §13), so fitting costs no more than ``bpe-rgb``'s.
PALETTE_SAMPLE_PIXELS, PALETTE_INIT_PIXELS, PALETTE_TOL = 250_000, 50_000, 1e-3


class PaletteQuantizer:
    """A fitted k-means palette behind the grid quantiser's interface: ids ↔ colours."""

    channels = 3

    def __init__(self, palette: KMeansEncoder) -> None:
        self.palette = palette

    @property
    def n_symbols(self) -> int:
        return self.palette.k

    def describe(self) -> str:
        return f"k={self.palette.k}"

    def colour_table(self, images: np.ndarray) -> np.ndarray:
        """Each RGB colour's nearest palette id (what the merge kernel reads per pixel)."""
        return self.palette.colour_table(images)

    @property
    def colours(self) -> np.ndarray:
        return self.palette.palette_.astype(np.int64)

    def image(self, symbols: np.ndarray) -> np.ndarray:
        return self.palette.palette_[np.asarray(symbols, np.int64)]

    def quantize(self, image: np.ndarray) -> np.ndarray:
        return self.palette.quantize(image)


class BPEPaletteEncoder(_SymbolBPEEncoder):
    """Image BPE whose symbols are k fitted colours, read along ``scan``, runs held."""

    name = "bpe-palette"
    channels = 3
    description = "image BPE over k fitted colours along a Hilbert curve, runs held (squeezes most)"

    def __init__(
        self,
        *,
        vocab_size: int = 10000,
        k: int = 128,
        scan: ScanOrder = "hilbert",
        run_tolerance: float = DEFAULT_RUN_TOLERANCE,
        rows: RowMode = "split",
        alphabet: AlphabetMode = "seen",
        min_symbol_count: int = 1,
        max_alphabet_share: float = 0.35,
        min_frequency: int = 2,
        max_token_length: int | None = None,
        max_fit_images: int | None = None,
        sample_pixels: int = PALETTE_SAMPLE_PIXELS,
        init_pixels: int = PALETTE_INIT_PIXELS,
        kmeans_tol: float = PALETTE_TOL,
    ) -> None:
        self.k = k
        self.sample_pixels = sample_pixels
        self.init_pixels = init_pixels
        self.kmeans_tol = kmeans_tol
        # KMeansEncoder checks k, the pixel counts and the tolerance.
        self.palette_ = KMeansEncoder(
            k=k, sample_pixels=sample_pixels, init_pixels=init_pixels, tol=kmeans_tol
        )
        super().__init__(
            vocab_size=vocab_size,
            rows=rows,
            alphabet=alphabet,
            min_symbol_count=min_symbol_count,
            max_alphabet_share=max_alphabet_share,
            min_frequency=min_frequency,
            max_token_length=max_token_length,
            max_fit_images=max_fit_images,
            scan=scan,
            run_tolerance=run_tolerance,
        )
        del self.levels  # the grid's parameter; this encoder has none

    def _make_quantizer(self) -> PaletteQuantizer:
        return PaletteQuantizer(self.palette_)

    @property
    def is_fitted(self) -> bool:
        return self.palette_.is_fitted and super().is_fitted

    def fit(self, images: Sequence[np.ndarray] | np.ndarray, *, seed: int = 0) -> Self:
        # The palette learns from the images the merges learn from.
        order = fit_sample(self.name, len(images), self.max_fit_images, seed)
        self.palette_.fit([self.check_image(images[int(i)]) for i in order], seed=seed)
        return super().fit(images, seed=seed)

    def _save_state(self, directory: Path) -> None:
        super()._save_state(directory)
        self.palette_._save_state(directory)

    def _load_state(self, directory: Path) -> None:
        self.palette_._load_state(directory)
        super()._load_state(directory)
