"""What the encoders of this package share: BPE over one symbol per pixel, read along a scan order.

A subclass says how a pixel becomes a symbol (`_symbol_grids`) and back (`_symbols_to_image`);
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

import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
from toksuite.encoders.base import Decoded, Encoder
from toksuite.encoders.bpe import fit_sample
from toksuite.encoders.grammar import TokenGrammar
from toksuite.encoders.scan import SCAN_ORDERS, from_scan, scan_order
from toksuite.encoders.symbols import (
    codepoints_to_text,
    fit_length,
    symbol_codepoints,
    text_to_symbols,
)
from toksuite.encoders.token_table import TokenTable, split_valid_ids
from toksuite.errors import EncoderParamError, ManifestError
from toksuite.progress import progress_bar, status

TOKENIZER_FILE = "tokenizer.json"
SEGMENT_END = "\n"  # outside the private-use alphabet, so never a symbol
ENCODE_CHUNK = 512  # images per call into the Rust tokenizer: bounds memory, keeps it parallel


class SymbolBPEEncoder(Encoder):
    """BPE over per-pixel symbols along a scan order. Subclasses define the symbols."""

    def __init__(
        self,
        *,
        vocab_size: int,
        scan: str,
        segment: int | None,
        min_frequency: int,
        max_fit_images: int | None,
    ) -> None:
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
        self.tokenizer_: Any = None

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

    def _symbols_to_image(self, grid: np.ndarray) -> np.ndarray:
        """An H×W grid of valid symbols → H×W×C uint8 image."""
        raise NotImplementedError

    # ------------------------------------------------------------------ parameters
    def get_params(self) -> dict[str, Any]:
        # ``vocab_size`` names both the parameter (a target) and the fitted size (the property).
        params = {
            s.name: getattr(self, s.name) for s in self.param_specs() if s.name != "vocab_size"
        }
        return {"vocab_size": self.target_vocab_size, **params}

    def _check_vocab(self) -> None:
        if self.target_vocab_size < self.n_symbols:
            raise EncoderParamError(
                f"{self.name}: vocab_size={self.target_vocab_size} is smaller than its "
                f"{self.n_symbols} pixel symbols"
            )

    @property
    def is_fitted(self) -> bool:
        return self.tokenizer_ is not None

    @property
    def vocab_size(self) -> int:
        self._check_fitted()
        return int(self.tokenizer_.get_vocab_size())

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

    def image_to_text(self, image: np.ndarray) -> str:
        """The text the tokenizer sees for ``image`` (public: HF users tokenise exactly this)."""
        self._check_fitted()
        return self._text(self._symbol_grids([self.check_image(image)])[0])

    # ------------------------------------------------------------------ fitting
    def fit(self, images: Sequence[np.ndarray] | np.ndarray, *, seed: int = 0) -> Self:
        from tokenizers import Tokenizer, models, pre_tokenizers, trainers

        order = fit_sample(self.name, len(images), self.max_fit_images, seed)
        chosen = [self.check_image(images[int(i)]) for i in order]
        started = time.perf_counter()
        self._fit_symbols(chosen, seed)
        self._check_vocab()
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

        with progress_bar(f"{self.name}: learning merges", len(chosen)) as advance:

            def texts() -> Iterator[str]:
                for start in range(0, len(chosen), ENCODE_CHUNK):
                    grids = self._symbol_grids(chosen[start : start + ENCODE_CHUNK])
                    yield from map(self._text, grids)
                    advance(len(grids))

            tokenizer.train_from_iterator(texts(), trainer, length=len(chosen))
        self._set_tokenizer(tokenizer)
        status(
            f"{self.name}: {self.vocab_size} tokens from {len(chosen)} images "
            f"in {time.perf_counter() - started:.1f}s"
        )
        return self

    def _set_tokenizer(self, tokenizer: Any) -> None:
        vocab = tokenizer.get_vocab()
        table: list[np.ndarray] = [np.zeros(0, np.int64)] * len(vocab)
        for token, i in vocab.items():
            symbols = text_to_symbols(token)
            if ((symbols < 0) | (symbols >= self.n_symbols)).any():
                raise ManifestError(f"{self.name}: token {i} lies outside the symbol alphabet")
            table[i] = symbols
        self._table = TokenTable(table)
        self.tokenizer_ = tokenizer

    # ------------------------------------------------------------------ encoding
    def encode(self, image: np.ndarray) -> np.ndarray:
        return self.encode_batch([image])[0]

    def encode_batch(self, images: Iterable[np.ndarray]) -> list[np.ndarray]:
        self._check_fitted()
        # The encode_batch_fast path skips character offsets we never use; older tokenizers lack it.
        encode = getattr(self.tokenizer_, "encode_batch_fast", self.tokenizer_.encode_batch)
        out: list[np.ndarray] = []
        chunk: list[np.ndarray] = []

        def flush() -> None:
            texts = [self._text(grid) for grid in self._symbol_grids(chunk)]
            out.extend(np.asarray(e.ids, np.int32) for e in encode(texts))
            chunk.clear()

        for image in images:
            chunk.append(self.check_image(image))
            if len(chunk) == ENCODE_CHUNK:
                flush()
        if chunk:
            flush()
        return out

    def decode_checked(self, ids: Sequence[int] | np.ndarray, shape: Sequence[int]) -> Decoded:
        self._check_fitted()
        height, width, _ = self.output_shape(shape)
        ids, notes = split_valid_ids(self.ids_array(ids), len(self._table))
        need = height * width
        # Cut, or pad by repeating the last pixel of the scan (symbol 0 when there is none).
        symbols, note = fit_length(self._table.expand(ids), need)
        notes += [note] if note else []
        flat = from_scan(symbols, self.scan, height, width)
        image = self._symbols_to_image(flat.reshape(height, width))
        return Decoded(image, repairs=len(notes), notes=tuple(notes))

    # ------------------------------------------------------------------ grammar
    def grammar(self, height: int, width: int) -> TokenGrammar:
        """What a sampler may write next: tokens whose pixels fit what is left of the segment.

        Units are pixels along the scan, so ``unit_pixels`` is the scan order itself.
        """
        self._check_fitted()
        n = height * width
        step = width if self.segment is None else self.segment
        segments = (
            [n] if not step or step >= n else [step] * (n // step) + [n % step] * (n % step > 0)
        )
        tokens = np.split(self._table.flat, self._table.offsets[1:])
        return TokenGrammar.from_atoms(
            tokens, segments=segments, unit_pixels=scan_order(self.scan, height, width)
        )

    # ------------------------------------------------------------------ persistence
    def _save_state(self, directory: Path) -> None:
        self.tokenizer_.save(str(directory / TOKENIZER_FILE))

    def _load_state(self, directory: Path) -> None:
        from tokenizers import Tokenizer

        path = Path(directory) / TOKENIZER_FILE
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises plain Exception on a missing or bad file
            raise ManifestError(f"{path}: cannot read the tokenizer ({exc})") from None
        self._set_tokenizer(tokenizer)
