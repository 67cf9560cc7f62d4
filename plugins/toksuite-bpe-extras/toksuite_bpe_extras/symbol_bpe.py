"""What the encoders of this package share: BPE over one symbol per pixel, read along a scan order.

A subclass says how a pixel becomes a symbol (`_symbol_grids`) and back (`_grid_to_image`);
this class reads the symbol grid along the scan order, turns each symbol into one private-use
character (toksuite's collision-free alphabet), cuts the sequence into words of ``segment``
symbols, and lets HF ``tokenizers`` learn BPE merges inside words. The pre-tokenizer splits on
``"\\n"`` and drops it, so segment ends cost no token and never become part of one.

Why segments: the built-in ``bpe-rgb`` splits at row ends, i.e. into words of W symbols. Cutting
every scan into words of W symbols by default (``segment=None``) gives the same number of words
of the same length, so a comparison with ``bpe-rgb`` measures the scan order alone. ``segment=0``
keeps each image one word (merges may span anything; the trainer is several times slower).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from toksuite.encoders import (
    SCAN_ORDERS,
    Decoded,
    HFTokenizerEncoder,
    TokenGrammar,
    codepoints_to_text,
    fit_length,
    from_scan,
    scan_order,
    symbol_codepoints,
    text_to_symbols,
)
from toksuite.errors import EncoderParamError

SEGMENT_END = "\n"  # outside the private-use alphabet, so never a symbol


class SymbolBPEEncoder(HFTokenizerEncoder):
    """BPE over per-pixel symbols along a scan order. Subclasses define the symbols.

    Fitting, encoding in chunks, decoding through the token table, the grammar cache and saving
    ``tokenizer.json`` come from toksuite's `HFTokenizerEncoder`; this class says how an image
    becomes text and how a token's symbols become pixels again.
    """

    def __init__(
        self,
        *,
        vocab_size: int,
        scan: str,
        segment: int | None,
        min_frequency: int,
        max_fit_images: int | None,
    ) -> None:
        super().__init__()
        if scan not in SCAN_ORDERS:
            raise EncoderParamError(f"{self.name}: scan must be one of {SCAN_ORDERS}, got {scan!r}")
        if segment is not None and (not isinstance(segment, int) or segment < 0):
            raise EncoderParamError(f"{self.name}: segment must be None or >= 0, got {segment!r}")
        if not isinstance(min_frequency, int) or min_frequency < 1:
            raise EncoderParamError(f"{self.name}: min_frequency must be >= 1, got {min_frequency}")
        if max_fit_images is not None and max_fit_images < 1:
            raise EncoderParamError(f"{self.name}: max_fit_images must be >= 1 or None")
        self.target_vocab_size = vocab_size
        self.scan = scan
        self.segment = segment
        self.min_frequency = min_frequency
        self.max_fit_images = max_fit_images

    # ------------------------------------------------------------------ subclass API
    @property
    def n_symbols(self) -> int:
        """Symbols per pixel: ids ``0..n_symbols-1``, each in the tokenizer's initial alphabet."""
        raise NotImplementedError

    def _fit_symbols(self, images: Sequence[np.ndarray], seed: int) -> None:
        """Learn whatever maps pixels to symbols (a palette); nothing by default."""

    def _symbol_grids(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Checked H×W×C images → H×W integer symbol grids."""
        raise NotImplementedError

    def _grid_to_image(self, grid: np.ndarray) -> np.ndarray:
        """An H×W grid of valid symbols → H×W×C uint8 image."""
        raise NotImplementedError

    def _check_vocab(self) -> None:
        if self.target_vocab_size < self.n_symbols:
            raise EncoderParamError(
                f"{self.name}: vocab_size={self.target_vocab_size} is smaller than its "
                f"{self.n_symbols} pixel symbols"
            )

    # ------------------------------------------------------------------ text
    def _text(self, grid: np.ndarray) -> str:
        """One symbol grid → the text the tokenizer sees: symbols along the scan, in segments."""
        height, width = grid.shape
        codepoints = symbol_codepoints(grid.reshape(-1)[scan_order(self.scan, height, width)])
        step = width if self.segment is None else self.segment
        if step and step < codepoints.size:
            cuts = np.arange(step, codepoints.size, step)
            codepoints = np.insert(codepoints, cuts, np.uint32(ord(SEGMENT_END)))
        return codepoints_to_text(codepoints)

    def _texts(self, images: Sequence[np.ndarray]) -> Iterable[str]:
        # One call to _symbol_grids per chunk: a palette subclass quantises a batch at once.
        return map(self._text, self._symbol_grids([self.check_image(image) for image in images]))

    def image_to_text(self, image: np.ndarray) -> str:
        """The text the tokenizer sees for ``image`` (public: HF users tokenise exactly this)."""
        self._check_fitted()
        return next(iter(self._texts([image])))

    # ------------------------------------------------------------------ fitting
    def _prepare_fit(self, images: Sequence[np.ndarray], seed: int) -> None:
        self._fit_symbols([self.check_image(image) for image in images], seed)
        self._check_vocab()

    def _train(self, texts: Iterator[str], n_texts: int) -> Any:
        from tokenizers import Tokenizer, models, pre_tokenizers, trainers

        alphabet = list(codepoints_to_text(symbol_codepoints(np.arange(self.n_symbols))))
        trainer = trainers.BpeTrainer(
            vocab_size=self.target_vocab_size,
            min_frequency=self.min_frequency,
            initial_alphabet=alphabet,
            limit_alphabet=len(alphabet),
            show_progress=False,
        )
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.Split(SEGMENT_END, "removed")
        tokenizer.train_from_iterator(texts, trainer, length=n_texts)
        return tokenizer

    # ------------------------------------------------------------------ decoding
    def _token_symbols(self, token: str) -> np.ndarray:
        symbols = text_to_symbols(token)
        symbols[symbols >= self.n_symbols] = -1  # outside the alphabet: the base refuses it
        return symbols

    def _symbols_to_image(self, symbols: np.ndarray, shape: tuple[int, int, int]) -> Decoded:
        height, width, _ = shape
        # Cut, or pad by repeating the last pixel of the scan (symbol 0 when there is none).
        symbols, note = fit_length(symbols, height * width)
        flat = from_scan(symbols, self.scan, height, width)
        notes = (note,) if note else ()
        return Decoded(self._grid_to_image(flat.reshape(height, width)), len(notes), notes)

    # ------------------------------------------------------------------ grammar
    def _build_grammar(self, height: int, width: int) -> TokenGrammar:
        """What a sampler may write next: tokens whose pixels fit what is left of the segment.

        Units are pixels along the scan, so ``unit_pixels`` is the scan order itself.
        """
        assert self._table is not None
        n = height * width
        step = width if self.segment is None else self.segment
        segments = (
            [n] if not step or step >= n else [step] * (n // step) + [n % step] * (n % step > 0)
        )
        tokens = np.split(self._table.flat, self._table.offsets[1:])
        return TokenGrammar.from_atoms(
            tokens, segments=segments, unit_pixels=scan_order(self.scan, height, width)
        )
