"""The paper's exact BPE recipe, kept for reproduction: ``chr(symbol)`` text + byte-level BPE.

Each pixel's RGB symbol ``r·L² + g·L + b`` (0..999 for L = 10) becomes the character
``chr(symbol)``, an image becomes that text (no row separators), and HF's ``ByteLevelBPETokenizer``
(GPT-2's byte-level pre-tokeniser and 256-byte base alphabet) learns the merges. The GPT-2
pre-tokeniser splits the text wherever the Unicode category of these characters changes (letters,
digits, punctuation, whitespace), so no token can span such a boundary, and characters above
U+007F take two bytes, so the first merges only rebuild them: both cost squeeze against
`toksuite.encoders.bpe`.

The seed code remapped symbol 10 to 20 and 101 to 102 (to dodge ``'\\n'`` and ``'e'``), which
merged two pairs of colours. Here those two symbols go to the unused code points ``chr(L³)`` and
``chr(L³ + 1)`` instead, so all L³ symbols survive a round trip.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import numpy as np

from toksuite.encoders.base import Decoded
from toksuite.encoders.grammar import NOT_AN_ATOM, TokenGrammar
from toksuite.encoders.hf_base import HFTokenizerEncoder
from toksuite.encoders.symbols import Quantizer, codepoints_to_text, fit_length
from toksuite.errors import EncoderParamError

SEED_REMAPPED = (10, 101)  # the symbols the seed code collided with '\n' (20) and 'e' (102)


@cache
def byte_decoder() -> dict[str, int]:
    """GPT-2's printable stand-in character for each byte → that byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


class ByteLevelBPEEncoder(HFTokenizerEncoder):
    """The paper's byte-level BPE on ``chr(symbol)`` text (RGB), minus the seed's collisions."""

    name = "bpe-bytelevel"
    channels = 3
    description = "the paper's exact recipe: chr(symbol) text, HF ByteLevelBPETokenizer (RGB)"

    def __init__(
        self,
        *,
        vocab_size: int = 30000,
        levels: int = 10,
        min_frequency: int = 2,
        max_fit_images: int | None = None,
        split_categories: bool = True,
    ) -> None:
        super().__init__()
        self.target_vocab_size = vocab_size
        self.levels = levels
        self.min_frequency = min_frequency
        self.max_fit_images = max_fit_images
        # GPT-2's pre-tokeniser regex, part of the paper's recipe; False drops it (an ablation:
        # what the splits at Unicode category changes cost, everything else unchanged).
        self.split_categories = split_categories
        self.quantizer = Quantizer(levels, self.channels)
        if vocab_size < 256:
            raise EncoderParamError(f"vocab_size={vocab_size} is below the 256 byte tokens")
        n = self.quantizer.n_symbols
        # Code point of every symbol, and the way back (code point → symbol, -1 elsewhere).
        self.codepoint_of = np.arange(n, dtype=np.uint32)
        for k, s in enumerate(s for s in SEED_REMAPPED if s < n):
            self.codepoint_of[s] = n + k
        self.symbol_of = np.full(n + len(SEED_REMAPPED), -1, np.int64)
        self.symbol_of[self.codepoint_of] = np.arange(n)

    def image_to_text(self, image: np.ndarray) -> str:
        symbols = self.quantizer.symbols(self.check_image(image))
        return codepoints_to_text(self.codepoint_of[symbols.reshape(-1)])

    def quantize(self, image: np.ndarray) -> np.ndarray:
        return self.quantizer.quantize(self.check_image(image))

    def _train(self, texts: Iterator[str], n_texts: int) -> Any:
        from tokenizers import ByteLevelBPETokenizer, pre_tokenizers

        wrapper = ByteLevelBPETokenizer()  # the paper's defaults: no prefix space, no lowercasing
        if not self.split_categories:
            wrapper._tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(
                add_prefix_space=False, use_regex=False
            )
        wrapper.train_from_iterator(
            texts,
            vocab_size=self.target_vocab_size,
            min_frequency=self.min_frequency,
            show_progress=False,
            length=n_texts,
        )
        return wrapper._tokenizer  # the plain Tokenizer: what tokenizer.json holds

    def _token_symbols(self, token: str) -> np.ndarray:
        # A token is a run of bytes (drawn as GPT-2's stand-in characters), possibly half of a
        # character. Keep its bytes; decoding joins the bytes of a sequence before reading UTF-8.
        table = byte_decoder()
        return np.array([table.get(c, -1) for c in token], np.int64)

    def _symbols_to_image(self, symbols: np.ndarray, shape: tuple[int, int, int]) -> Decoded:
        # Here the "symbols" from the token table are bytes of UTF-8 text.
        h, w, _ = shape
        notes: list[str] = []
        text = symbols.astype(np.uint8).tobytes().decode("utf-8", errors="replace")
        codepoints = np.frombuffer(text.encode("utf-32-le"), "<u4").astype(np.int64)
        inside = codepoints < self.symbol_of.size
        pixels = np.full(codepoints.shape, -1, np.int64)
        pixels[inside] = self.symbol_of[codepoints[inside]]
        bad = int((pixels < 0).sum())
        if bad:
            notes.append(f"{bad} characters that are no pixel (broken UTF-8 or unknown) dropped")
        flat, note = fit_length(pixels[pixels >= 0], h * w)
        if note:
            notes.append(note)
        return Decoded(self.quantizer.image(flat.reshape(h, w)), len(notes), tuple(notes))

    def _build_grammar(self, height: int, width: int) -> TokenGrammar:
        assert self._table is not None
        flat = self._table.flat  # bytes of UTF-8 text (-1: a character no byte stands for)
        tokens = np.split(np.where(flat >= 0, -1 - flat, NOT_AN_ATOM), self._table.offsets[1:])
        codepoints = np.flatnonzero(self.symbol_of >= 0)  # the characters that are pixels
        return TokenGrammar.from_atoms(
            tokens,
            segments=[height * width],  # the text has no row breaks: tokens may span rows
            unit_pixels=np.arange(height * width),
            characters=[chr(c).encode() for c in codepoints.tolist() if not 0xD800 <= c < 0xE000],
        )


class ByteLevelGreyBPEEncoder(ByteLevelBPEEncoder):
    """The same recipe on grey levels (``chr(level)``), as the paper used for its grey images."""

    name = "bpe-bytelevel-grey"
    channels = 1
    description = "the paper's exact recipe on grey levels: chr(level) text, ByteLevelBPETokenizer"
