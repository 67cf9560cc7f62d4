"""Image BPE (the paper's encoder): pixels → quantised symbols → text → HF ``tokenizers`` BPE.

Each pixel becomes one symbol (see `toksuite.encoders.symbols`), each symbol one private-use
character, each image one string, and BPE merges are learned on those strings by HF ``tokenizers``.

Alphabet (``alphabet=``):

* ``"seen"`` (default): only symbols seen in training (at least ``min_symbol_count`` times, the
  most frequent first, at most ``max_alphabet_share`` of the vocabulary) get an id; the BPE model's
  ``byte_fallback`` writes any other symbol as the UTF-8 bytes of its character (``<0xEE>``,
  ``<0x80>`` …, one token each; exactly the bytes the left-out symbols need are in the vocabulary),
  so every image still encodes losslessly. Faces use ~750 of the 1,000 RGB colours: at vocab 1,000
  the full alphabet leaves no merge (squeeze 1.00); this leaves ~580 (2.14×).
* ``"all"``: every symbol has an id, ``0..L^C - 1`` in code-point order, before any merge.

Rows (``rows=``):

* ``"split"`` (default): rows are joined by ``"\\n"`` and the tokenizer's pre-tokenizer splits there
  and drops the separator, so no token spans two rows and no token is spent on row ends.
* ``"separator"``: the ``"\\n"`` is kept as a token of its own, so a decoder can see row boundaries
  and repair rows of the wrong length in generated sequences; costs H - 1 tokens per image.
* ``"joined"``: one string per image, merges may span rows.

Scan order (``scan=``): ``"raster"`` (default, the paper's), ``"snake"`` or ``"hilbert"``
(`toksuite.encoders.scan`). The pixels are read in scan order before anything else, and "rows"
are then stretches of W pixels along the scan: along a Hilbert curve a token is a compact patch
instead of a strip of one row. The compiled kernel reads the pixels along the scan itself.

Run holding (``run_tolerance=``, default 0: off): along the scan a pixel keeps the symbol of the
pixel before it when that symbol's squared error (summed over channels, 8-bit units) exceeds its
own symbol's by at most the tolerance, so colours between two bins stop flickering and BPE merges
the longer runs; ``quantize`` applies the same rule, and the PSNR it costs is reported beside the
squeeze. ``bpe-palette`` (`toksuite.encoders.bpe_palette`) turns it on over fitted colours.

Why ``split`` is the default: ``joined`` squeezes a hair more but fits several times slower,
because the trainer rescans a whole H·W-symbol word for every merge that touches it, and split
keeps words one row long; ``separator`` pays its H - 1 tokens (docs/benchmarks.md, §2).

Encoding: `toksuite.encoders.bpe_kernel` makes the symbols and applies the fitted merges in
compiled code and returns HF's ids (no token strings, no offsets; docs/benchmarks.md times both);
HF encodes whatever the kernel cannot (no numba, BPE dropout …).

The fitted ``tokenizer_`` is a plain HF ``Tokenizer`` whose pre-tokenizer lives in its
``tokenizer.json``, so ``transformers.PreTrainedTokenizerFast(tokenizer_file=...)`` opens a saved
encoder without toksuite and gives the same ids for `image_to_text` of an image.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property
from typing import Any, Literal

import numpy as np

from toksuite.encoders.base import Decoded
from toksuite.encoders.bpe_kernel import ColourTableQuantizer, MergeTable, scan_symbols
from toksuite.encoders.grammar import NOT_AN_ATOM, TokenGrammar
from toksuite.encoders.hf_base import ENCODE_CHUNK, HFTokenizerEncoder
from toksuite.encoders.scan import SCAN_ORDERS, ScanOrder, from_scan, scan_order
from toksuite.encoders.symbols import (
    BYTE_TOKEN,
    Quantizer,
    codepoints_to_text,
    fit_length,
    symbol_codepoints,
    symbols_to_text,
    text_to_symbols,
    utf8_bytes,
)
from toksuite.encoders.token_table import (
    BYTE_MARK,
    SEPARATOR_MARK,
    resolve_byte_runs,
    rows_from_marked,
    with_byte_fallback,
)
from toksuite.errors import EncoderParamError

ROW_SEPARATOR = "\n"  # not in the private-use alphabet, so it can never collide with a symbol

RowMode = Literal["split", "separator", "joined"]
AlphabetMode = Literal["seen", "all"]


class _SymbolBPEEncoder(HFTokenizerEncoder):
    """BPE over the private-use symbol alphabet (grey or RGB by ``channels``)."""

    def __init__(
        self,
        *,
        vocab_size: int = 10000,
        levels: int = 10,
        rows: RowMode = "split",
        alphabet: AlphabetMode = "seen",
        min_symbol_count: int = 1,
        max_alphabet_share: float = 0.35,
        min_frequency: int = 2,
        max_token_length: int | None = None,
        max_fit_images: int | None = None,
        scan: ScanOrder = "raster",
        run_tolerance: float = 0.0,
    ) -> None:
        super().__init__()
        self.target_vocab_size = vocab_size
        self.levels = levels
        self.rows = rows
        self.scan = scan
        self.run_tolerance = run_tolerance
        self.alphabet_mode = alphabet
        self.min_symbol_count = min_symbol_count
        self.max_alphabet_share = max_alphabet_share
        self.min_frequency = min_frequency
        self.max_token_length = max_token_length
        self.max_fit_images = max_fit_images
        self.quantizer = self._make_quantizer()
        if rows not in ("split", "separator", "joined"):
            raise EncoderParamError(f"rows must be split, separator or joined, got {rows!r}")
        if alphabet not in ("seen", "all"):
            raise EncoderParamError(f"alphabet must be seen or all, got {alphabet!r}")
        if scan not in SCAN_ORDERS:
            raise EncoderParamError(f"scan must be one of {', '.join(SCAN_ORDERS)}, got {scan!r}")
        if not (isinstance(run_tolerance, int | float) and run_tolerance >= 0):
            raise EncoderParamError(f"run_tolerance must be a number >= 0, got {run_tolerance!r}")
        if not 0 < max_alphabet_share <= 1:
            raise EncoderParamError(
                f"max_alphabet_share must be in (0, 1], got {max_alphabet_share}"
            )
        if min_symbol_count < 1:
            raise EncoderParamError(f"min_symbol_count must be >= 1, got {min_symbol_count}")
        separator = rows == "separator"
        if alphabet == "all" and vocab_size < self.quantizer.n_symbols + separator:
            raise EncoderParamError(
                f"vocab_size={vocab_size} is smaller than the "
                f"{self.quantizer.n_symbols + separator} symbols of {self.quantizer.describe()}"
            )
        # "seen" needs room for the byte tokens and at least one symbol.
        least = len(utf8_bytes(np.arange(self.quantizer.n_symbols))) + 1 + separator
        if alphabet == "seen" and vocab_size < least:
            raise EncoderParamError(
                f"vocab_size={vocab_size} is smaller than {least}: the byte-fallback tokens "
                f"of {self.quantizer.describe()} plus one symbol"
            )
        self._symbol_counts: np.ndarray | None = None

    def _set_tokenizer(self, tokenizer: Any) -> None:
        super()._set_tokenizer(tokenizer)
        self.__dict__.pop("_merge_table", None)  # rebuilt from this tokenizer on first use

    @cached_property
    def _merge_table(self) -> MergeTable | None:
        if type(self).image_to_text is not _SymbolBPEEncoder.image_to_text:
            return None  # a subclass writes its own text (another scan order …): HF encodes it
        return MergeTable.from_tokenizer(
            self.tokenizer_,
            self.alphabet()[: self.quantizer.n_symbols],
            split_rows=self.rows != "joined",
            separator=ROW_SEPARATOR if self.rows == "separator" else None,
        )

    def encode_batch(self, images: Iterable[np.ndarray]) -> list[np.ndarray]:
        # The compiled kernel gives HF's ids (see `toksuite.encoders.bpe_kernel`); HF encodes
        # whatever it cannot.
        self._check_fitted()
        table = self._merge_table
        if table is None:
            return super().encode_batch(images)
        out: list[np.ndarray] = []
        group: list[np.ndarray] = []
        for image in images:
            image = self.check_image(image)
            if group and (len(group) == ENCODE_CHUNK or image.shape != group[0].shape):
                out += self._kernel_encode(table, np.stack(group))
                group = []
            group.append(image)
        if group:
            out += self._kernel_encode(table, np.stack(group))
        return out

    def _make_quantizer(self) -> Quantizer | ColourTableQuantizer:
        return Quantizer(self.levels, self.channels)

    def _kernel_encode(self, table: MergeTable, images: np.ndarray) -> list[np.ndarray]:
        return table.encode_symbols(self.scan_symbols(images), images.shape[2])

    def scan_symbols(self, images: np.ndarray) -> np.ndarray:
        """N×H×W×C images → N×(H·W) symbols along the scan, runs held by ``run_tolerance``: what
        the tokenizer reads (compiled; no reordered copy of the images)."""
        return scan_symbols(
            images,
            self.quantizer,
            scan_order(self.scan, *images.shape[1:3]),
            colours=self.quantizer.colours if self.run_tolerance else None,
            tolerance=self.run_tolerance,
        )

    def get_params(self) -> dict[str, Any]:
        # The ``alphabet`` parameter is stored as ``alphabet_mode``: ``alphabet()`` is a method.
        params = super().get_params()
        params["alphabet"] = self.alphabet_mode
        return params

    # ------------------------------------------------------------------ text
    def image_to_text(self, image: np.ndarray) -> str:
        image = self.check_image(image)
        symbols = self.scan_symbols(image[None])[0].reshape(image.shape[:2])
        codepoints = symbol_codepoints(symbols)
        if self.rows == "joined":
            return codepoints_to_text(codepoints)
        # Rows joined by the separator: one extra column of "\n", then drop the last one.
        sep = np.full((codepoints.shape[0], 1), ord(ROW_SEPARATOR), np.uint32)
        return codepoints_to_text(np.hstack([codepoints, sep]).reshape(-1)[:-1])

    def quantize(self, image: np.ndarray) -> np.ndarray:
        image = self.check_image(image)
        if not self.run_tolerance:  # each pixel on its own: no scan needed
            return self.quantizer.quantize(image)
        h, w = image.shape[:2]
        grid = from_scan(self.scan_symbols(image[None])[0], self.scan, h, w).reshape(h, w)
        return self.quantizer.image(grid)

    def _token_symbols(self, token: str) -> np.ndarray:
        if byte := BYTE_TOKEN.fullmatch(token):
            return np.array([BYTE_MARK - int(byte.group(1), 16)], np.int64)
        symbols = text_to_symbols(token)
        symbols[symbols >= self.quantizer.n_symbols] = -1
        symbols[np.frombuffer(token.encode("utf-32-le"), "<u4") == ord(ROW_SEPARATOR)] = (
            SEPARATOR_MARK
        )
        return symbols

    def _symbols_to_image(self, symbols: np.ndarray, shape: tuple[int, int, int]) -> Decoded:
        h, w, _ = shape
        symbols, notes = resolve_byte_runs(symbols)
        # Bytes may spell a private-use character beyond this quantiser's symbols.
        beyond = symbols >= self.quantizer.n_symbols
        if beyond.any():
            notes.append(
                f"{int(beyond.sum())} byte-fallback symbols beyond {self.quantizer.describe()}"
            )
            symbols = symbols[~beyond]
        if self.rows == "separator":
            grid, row_notes = rows_from_marked(symbols, h, w)
            notes += row_notes
        else:
            # No separator is in the vocabulary here, so every symbol is a pixel.
            flat, note = fit_length(symbols[symbols >= 0], h * w)
            grid = flat.reshape(h, w)
            notes += [note] if note else []
        if self.scan != "raster":  # the rows are stretches of the scan: put pixels back
            grid = from_scan(grid.reshape(-1), self.scan, h, w).reshape(h, w)
        return Decoded(self.quantizer.image(grid), len(notes), tuple(notes))

    def _build_grammar(self, height: int, width: int) -> TokenGrammar:
        assert self._table is not None
        flat = self._table.flat
        # Symbols stay units, byte b of a fallback token becomes atom -1 - b, separators none.
        atoms = np.where(
            flat >= 0, flat, np.where(flat <= BYTE_MARK, -1 - (BYTE_MARK - flat), NOT_AN_ATOM)
        )
        tokens = np.split(atoms, self._table.offsets[1:])
        # Bytes may spell only the symbols that have no token of their own (what encode writes).
        single = self._table.lengths == 1
        own = flat[self._table.offsets[single]]
        spelled = np.setdiff1d(np.arange(self.quantizer.n_symbols), own[own >= 0])
        have = set((BYTE_MARK - flat[flat <= BYTE_MARK]).tolist())
        characters = [c.encode() for c in symbols_to_text(spelled) if set(c.encode()) <= have]
        separator = self.rows == "separator"
        return TokenGrammar.from_atoms(
            tokens,
            segments=[width] * height if self.rows != "joined" else [height * width],
            unit_pixels=scan_order(self.scan, height, width),
            characters=characters,
            separator=self.tokenizer_.token_to_id(ROW_SEPARATOR) if separator else None,
        )

    # ------------------------------------------------------------------ training
    def _new_tokenizer(self) -> Any:
        from tokenizers import Tokenizer, models, pre_tokenizers

        tokenizer = Tokenizer(models.BPE())
        if self.rows == "split":
            tokenizer.pre_tokenizer = pre_tokenizers.Split(ROW_SEPARATOR, "removed")
        elif self.rows == "separator":
            tokenizer.pre_tokenizer = pre_tokenizers.Split(ROW_SEPARATOR, "isolated")
        return tokenizer

    def alphabet(self) -> list[str]:
        """Every symbol's character (and the separator when kept): the ``"all"`` alphabet."""
        chars = codepoints_to_text(symbol_codepoints(np.arange(self.quantizer.n_symbols)))
        return list(chars) + ([ROW_SEPARATOR] if self.rows == "separator" else [])

    def _prepare_fit(self, images: Sequence[np.ndarray], seed: int) -> None:
        counts = np.zeros(self.quantizer.n_symbols, np.int64)
        for image in images:
            symbols = self.scan_symbols(self.check_image(image)[None])
            counts += np.bincount(symbols.reshape(-1), minlength=counts.size)
        self._symbol_counts = counts

    def fit_alphabet(self, counts: np.ndarray) -> tuple[np.ndarray, list[int]]:
        """The symbols that get a token of their own, and the bytes the others fall back to.

        ``"seen"``: symbols seen at least ``min_symbol_count`` times, the most frequent first, as
        many as fit the vocabulary next to the byte tokens; every other symbol is written as the
        UTF-8 bytes of its character, and at most ``max_alphabet_share`` of the vocabulary goes to
        symbols. Faces use about 750 of the 1,000 RGB colours, so at a vocab of 1,000 the full
        alphabet leaves no room for a merge (squeeze 1.00), all seen colours leave 180 (1.78), and
        the 356 most frequent (99.6% of pixels) leave 580 (2.14; the paper's recipe: 2.11).
        """
        everything = np.arange(self.quantizer.n_symbols)
        if self.alphabet_mode == "all":
            return everything, []
        room = self.target_vocab_size - (self.rows == "separator")
        # Most frequent first; a stable sort keeps ties in symbol order (deterministic).
        by_count = np.argsort(-counts, kind="stable")
        keep = by_count[: int((counts >= self.min_symbol_count).sum())]
        keep = keep[: max(1, int(self.max_alphabet_share * self.target_vocab_size))]
        if keep.size + len(utf8_bytes(np.setdiff1d(everything, keep))) > room:
            keep = keep[: room - len(utf8_bytes(everything))]  # the byte set can only shrink
        keep = np.sort(keep)
        return keep, utf8_bytes(np.setdiff1d(everything, keep))

    def _train(self, texts: Iterator[str], n_texts: int) -> Any:
        from tokenizers import trainers

        counts = self._symbol_counts
        if counts is None:  # called without fit(): nothing counted, so keep every symbol
            counts = np.ones(self.quantizer.n_symbols, np.int64)
        symbols, fallback_bytes = self.fit_alphabet(counts)
        alphabet = list(codepoints_to_text(symbol_codepoints(symbols)))
        alphabet += [ROW_SEPARATOR] if self.rows == "separator" else []
        options: dict[str, Any] = {}
        if self.max_token_length is not None:
            options["max_token_length"] = self.max_token_length
        trainer = trainers.BpeTrainer(
            vocab_size=self.target_vocab_size - len(fallback_bytes),
            min_frequency=self.min_frequency,
            initial_alphabet=alphabet,
            limit_alphabet=len(alphabet),
            show_progress=False,  # its bar writes to the terminal; ours goes to stderr
            **options,
        )
        tokenizer = self._new_tokenizer()
        tokenizer.train_from_iterator(texts, trainer, length=n_texts)
        return with_byte_fallback(tokenizer, fallback_bytes) if fallback_bytes else tokenizer


class BPEGreyEncoder(_SymbolBPEEncoder):
    """Image BPE on grey levels: one symbol per pixel (its level), merges learned by BPE."""

    name = "bpe-grey"
    channels = 1
    description = "the paper's image BPE on grey levels (L levels, BPE merges via HF tokenizers)"


class BPERGBEncoder(_SymbolBPEEncoder):
    """Image BPE on RGB: one symbol per pixel (r·L² + g·L + b), merges learned by BPE."""

    name = "bpe-rgb"
    aliases = ("bpe",)
    channels = 3
    description = "the paper's image BPE on RGB (L³ colour symbols, BPE merges via HF tokenizers)"
