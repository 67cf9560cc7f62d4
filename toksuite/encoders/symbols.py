"""The paper's pixel quantisation and a collision-free one-character-per-symbol alphabet.

Each channel value ``v`` (0..255) falls in level ``v // step`` with ``step = ceil(256 / L)``; for
the default ``L = 10`` that is the paper's ``v // 26``. An RGB pixel becomes one symbol
``r·L² + g·L + b`` (the paper's pixel ``[150, 112, 255]`` → levels ``[5, 4, 9]`` → 549); a grey
pixel is its level. A level decodes to the centre of its bin, not to its lower edge: on faces the
lower edge costs about 5.6 dB of PSNR for the same tokens.

Symbols become text for HF ``tokenizers`` through Unicode private-use characters (symbol ``s`` ↔
``U+E000 + s``, continuing in plane 15 when the alphabet is larger than the BMP's private-use
area), so no symbol can collide with a character a tokenizer treats specially (the seed code
remapped two colours to dodge ``'\\n'`` and ``'e'``). Every conversion here is vectorised: the
string is built by decoding UTF-32 bytes, which is far faster than a per-pixel ``chr`` loop.
"""

from __future__ import annotations

import math
import re
from functools import cached_property

import numpy as np

from toksuite.errors import EncoderParamError

BMP_PUA_START, BMP_PUA_SIZE = 0xE000, 6400  # U+E000..U+F8FF
PLANE15_PUA_START, PLANE15_PUA_SIZE = 0xF0000, 65534  # U+F0000..U+FFFFD
MAX_SYMBOLS = BMP_PUA_SIZE + PLANE15_PUA_SIZE


class Quantizer:
    """``levels`` bins per channel; pixels ↔ symbols; levels ↔ bin centres."""

    def __init__(self, levels: int, channels: int) -> None:
        if not 2 <= levels <= 256:
            raise EncoderParamError(f"levels must be in 2..256, got {levels}")
        if channels not in (1, 3):
            raise EncoderParamError(f"channels must be 1 or 3, got {channels}")
        if levels**channels > MAX_SYMBOLS:
            raise EncoderParamError(
                f"levels={levels} gives {levels**channels} RGB symbols; at most {MAX_SYMBOLS} fit "
                "the private-use alphabet (levels <= 41 for RGB)"
            )
        self.levels = levels
        self.channels = channels
        self.step = math.ceil(256 / levels)
        # Bin k covers [k·step, min(255, (k+1)·step - 1)]; its centre rounds down.
        lows = np.arange(levels) * self.step
        highs = np.minimum(255, lows + self.step - 1)
        self.centres = np.clip((lows + highs) // 2, 0, 255).astype(np.uint8)
        # Level of every byte value, as a lookup table (faster than integer division).
        self.level_of = (np.arange(256) // self.step).astype(np.int32)
        self.weights = np.array([levels**2, levels, 1] if channels == 3 else [1], np.int32)

    @property
    def n_symbols(self) -> int:
        return self.levels**self.channels

    def describe(self) -> str:
        return f"levels={self.levels}"

    @cached_property
    def colours(self) -> np.ndarray:
        """Every symbol's decoded colour, symbol × channel (what run holding compares); built
        once, as `scan_symbols` reads it for every image."""
        colours = self.image(np.arange(self.n_symbols)).reshape(self.n_symbols, self.channels)
        return np.ascontiguousarray(colours, np.int64)

    def symbols(self, image: np.ndarray) -> np.ndarray:
        """H×W×C uint8 → H×W int32 symbols."""
        lv = self.level_of[image]
        if self.channels == 1:
            return lv[..., 0]
        return lv @ self.weights

    def image(self, symbols: np.ndarray) -> np.ndarray:
        """H×W symbols (all in range) → H×W×C uint8 image of bin centres."""
        symbols = np.asarray(symbols, np.int64)
        if self.channels == 1:
            return self.centres[symbols][..., None]
        digits = np.stack(
            [
                symbols // self.levels**2,
                (symbols // self.levels) % self.levels,
                symbols % self.levels,
            ],
            axis=-1,
        )
        return self.centres[digits]

    def quantize(self, image: np.ndarray) -> np.ndarray:
        """Each channel value replaced by the centre of its bin."""
        return self.centres[self.level_of[image]]


def symbol_codepoints(symbols: np.ndarray) -> np.ndarray:
    """Symbols → private-use code points (uint32)."""
    s = np.asarray(symbols, np.uint32)
    return np.where(
        s < BMP_PUA_SIZE, s + BMP_PUA_START, s - BMP_PUA_SIZE + PLANE15_PUA_START
    ).astype(np.uint32)


def codepoints_to_text(codepoints: np.ndarray) -> str:
    """A uint32 code-point array → str, via UTF-32 (no per-character Python work)."""
    return np.ascontiguousarray(codepoints, dtype="<u4").tobytes().decode("utf-32-le")


def text_to_codepoints(text: str) -> np.ndarray:
    """str → uint32 code points (the inverse of `codepoints_to_text`)."""
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")


def symbols_to_text(symbols: np.ndarray) -> str:
    """Symbols → one private-use character each."""
    return codepoints_to_text(symbol_codepoints(np.asarray(symbols).reshape(-1)))


def text_to_symbols(text: str) -> np.ndarray:
    """Private-use characters → symbols (int64); any other character becomes -1."""
    cp = text_to_codepoints(text).astype(np.int64)
    out = np.full(cp.shape, -1, np.int64)
    bmp = (cp >= BMP_PUA_START) & (cp < BMP_PUA_START + BMP_PUA_SIZE)
    out[bmp] = cp[bmp] - BMP_PUA_START
    p15 = (cp >= PLANE15_PUA_START) & (cp < PLANE15_PUA_START + PLANE15_PUA_SIZE)
    out[p15] = cp[p15] - PLANE15_PUA_START + BMP_PUA_SIZE
    return out


def fit_length(values: np.ndarray, need: int) -> tuple[np.ndarray, str | None]:
    """Cut or pad (repeating the last value, else 0) to ``need`` values; a note when it did."""
    if values.size == need:
        return values, None
    if values.size > need:
        return values[:need], f"{values.size} pixels for {need}: cut"
    fill = values[-1] if values.size else 0
    padded = np.concatenate([values, np.full(need - values.size, fill, values.dtype)])
    return padded, f"{values.size} pixels for {need}: padded"


# ---------------------------------------------------------------------- byte fallback
# A symbol left out of a tokenizer's alphabet is written as the UTF-8 bytes of its character, one
# token per byte, named as sentencepiece and HF ``byte_fallback`` name them (``<0xEE>``).
BYTE_TOKEN = re.compile(r"<0x([0-9A-F]{2})>")


def byte_token(value: int) -> str:
    """The vocabulary entry of one byte under HF ``byte_fallback``: 0xEE → ``"<0xEE>"``."""
    return f"<0x{value:02X}>"


def utf8_bytes(symbols: np.ndarray) -> list[int]:
    """The distinct byte values in the UTF-8 of the symbols' characters, sorted."""
    text = symbols_to_text(np.asarray(symbols, np.int64))
    return sorted(set(text.encode("utf-8")))


def utf8_to_symbols(data: bytes) -> tuple[np.ndarray, int]:
    """UTF-8 bytes → the symbols they spell, and how many characters were no symbol (dropped).

    Broken UTF-8 (a lone lead byte, a stray continuation byte) never raises: each broken piece
    becomes U+FFFD, which is no symbol, and is counted.
    """
    symbols = text_to_symbols(data.decode("utf-8", errors="replace"))
    return symbols[symbols >= 0], int((symbols < 0).sum())
