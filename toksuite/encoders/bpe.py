"""Image BPE (the paper's encoder): pixels → quantised symbols → text → HF ``tokenizers`` BPE.

Each pixel becomes one symbol (see `toksuite.encoders.symbols`), each symbol one private-use
character, each image one string, and BPE merges are learned on those strings by HF ``tokenizers``.
Every symbol is in the initial alphabet, so every pixel has an id even before any merge and ids
``0..L^C - 1`` are the symbols themselves (the trainer numbers its alphabet in code-point order).

Rows (``rows=``):

* ``"split"`` (default): rows are joined by ``"\\n"`` and the tokenizer's pre-tokenizer splits there
  and drops the separator, so no token spans two rows and no token is spent on row ends.
* ``"separator"``: the ``"\\n"`` is kept as a token of its own, so a decoder can see row boundaries
  and repair rows of the wrong length in generated sequences; costs H - 1 tokens per image.
* ``"joined"``: one string per image, merges may span rows.

Why ``split`` is the default (RGB CelebA faces at 112×112, vocab 30,000, squeeze on 500 held-out
faces, fit time on a shared 2-core machine): fitted on 500 faces, split 3.84× (fit 12 s), separator
3.71× (12 s; the H - 1 separator tokens), joined 3.86× (55 s); on 2,000 faces split gives 3.90× in
53 s. Joined squeezes a hair more but fits 4-5× slower, because the trainer rescans a whole
12,544-symbol word for every merge that touches it; split keeps words one row long.

The fitted ``tokenizer_`` is a plain HF ``Tokenizer`` whose pre-tokenizer lives in its
``tokenizer.json``, so ``transformers.PreTrainedTokenizerFast(tokenizer_file=...)`` opens a saved
encoder without toksuite and gives the same ids for `image_to_text` of an image.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np

from toksuite.encoders.base import ID_DTYPE, Decoded, Encoder
from toksuite.encoders.symbols import (
    Quantizer,
    codepoints_to_text,
    fit_length,
    symbol_codepoints,
    text_to_symbols,
)
from toksuite.errors import EncoderParamError, ManifestError
from toksuite.progress import progress_bar, status

TOKENIZER_FILE = "tokenizer.json"
ROW_SEPARATOR = "\n"  # not in the private-use alphabet, so it can never collide with a symbol
SEPARATOR_MARK = -2  # a row separator in a decode table (symbols are >= 0, unknown is -1)
ENCODE_CHUNK = 512  # images per call into the Rust tokenizer: bounds memory, keeps it parallel

RowMode = Literal["split", "separator", "joined"]


class TokenTable:
    """Every token id's symbols, flattened, so decoding a sequence is a few numpy gathers."""

    def __init__(self, token_symbols: Sequence[np.ndarray]) -> None:
        self.lengths = np.array([len(s) for s in token_symbols], np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.flat = np.concatenate([*token_symbols, np.zeros(0, np.int64)]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.lengths)

    def expand(self, ids: np.ndarray) -> np.ndarray:
        """The symbols of ``ids`` (all valid) concatenated, without a Python loop over tokens."""
        lens = self.lengths[ids]
        total = int(lens.sum())
        if total == 0:
            return np.zeros(0, np.int64)
        # Position j of the output reads flat[offset of its token + (j - start of its token)].
        starts = np.repeat(self.offsets[ids] - (np.cumsum(lens) - lens), lens)
        return self.flat[starts + np.arange(total)]


def split_valid_ids(ids: np.ndarray, vocab_size: int) -> tuple[np.ndarray, list[str]]:
    """Drop ids outside ``[0, vocab_size)``; a note when any were dropped."""
    bad = (ids < 0) | (ids >= vocab_size)
    if not bad.any():
        return ids, []
    return ids[~bad], [f"{int(bad.sum())} ids outside 0..{vocab_size - 1} dropped"]


def rows_from_marked(symbols: np.ndarray, height: int, width: int) -> tuple[np.ndarray, list[str]]:
    """Symbols with SEPARATOR_MARK between rows → H×W symbols; rows cut/padded to W."""
    breaks = np.flatnonzero(symbols == SEPARATOR_MARK)
    rows = np.split(symbols, breaks)
    rows = [rows[0], *(r[1:] for r in rows[1:])]  # drop the separator each later row starts with
    notes: list[str] = []
    bad_rows = sum(1 for r in rows[:height] if r.size != width)
    if bad_rows:
        notes.append(f"{bad_rows} rows of the wrong length repaired")
    if len(rows) != height:
        notes.append(f"{len(rows)} rows for {height}: {'cut' if len(rows) > height else 'padded'}")
    fixed = [fit_length(r, width)[0] for r in rows[:height]]
    while len(fixed) < height:  # missing rows repeat the last one (or are black)
        fixed.append(fixed[-1] if fixed else np.zeros(width, np.int64))
    return np.stack(fixed), notes


class HFTokenizerEncoder(Encoder):
    """What the image-BPE encoders share: fit on texts, fast batch encode, save/load tokenizer.json.

    Subclasses define `image_to_text` and `_token_symbols` (the symbols each token stands for).
    """

    target_vocab_size: int  # the ``vocab_size`` parameter; the property is the fitted size
    max_fit_images: int | None

    def __init__(self) -> None:
        self.tokenizer_: Any = None
        self._table: TokenTable | None = None

    # ------------------------------------------------------------------ subclass API
    def image_to_text(self, image: np.ndarray) -> str:
        """The text the tokenizer sees for ``image`` (public: HF users tokenise exactly this)."""
        raise NotImplementedError

    def _train(self, texts: Iterator[str], n_texts: int) -> Any:
        """A fitted ``tokenizers.Tokenizer``."""
        raise NotImplementedError

    def _token_symbols(self, token: str) -> np.ndarray:
        """Symbols of one vocabulary entry (SEPARATOR_MARK for a row separator, -1 unknown)."""
        raise NotImplementedError

    def _symbols_to_image(self, symbols: np.ndarray, shape: tuple[int, int, int]) -> Decoded:
        raise NotImplementedError

    # ------------------------------------------------------------------ fitting
    @property
    def is_fitted(self) -> bool:
        return self.tokenizer_ is not None

    def fit(self, images: Sequence[np.ndarray] | np.ndarray, *, seed: int = 0) -> Self:
        n = len(images)
        if n == 0:
            raise EncoderParamError(f"{self.name}: fit needs at least one image")
        order = np.arange(n)
        if self.max_fit_images is not None and n > self.max_fit_images:
            # A seeded sample, kept in data order so the same seed picks the same images.
            order = np.sort(np.random.default_rng(seed).permutation(n)[: self.max_fit_images])
        started = time.perf_counter()
        with progress_bar(f"{self.name}: learning merges", len(order)) as advance:

            def texts() -> Iterator[str]:
                for i in order:
                    yield self.image_to_text(images[int(i)])
                    advance(1)

            self._set_tokenizer(self._train(texts(), len(order)))
        status(
            f"{self.name}: {self.vocab_size} tokens from {len(order)} images "
            f"in {time.perf_counter() - started:.1f}s"
        )
        return self

    def _set_tokenizer(self, tokenizer: Any) -> None:
        vocab = tokenizer.get_vocab()
        tokens = [""] * len(vocab)
        for token, i in vocab.items():
            tokens[i] = token
        self._table = TokenTable([self._token_symbols(t) for t in tokens])
        if (self._table.flat == -1).any():
            raise ManifestError(f"{self.name}: the tokenizer has tokens outside its alphabet")
        self.tokenizer_ = tokenizer

    @property
    def vocab_size(self) -> int:
        self._check_fitted()
        return int(self.tokenizer_.get_vocab_size())

    def get_params(self) -> dict[str, Any]:
        # ``vocab_size`` names both the parameter (a target) and the fitted size (a property).
        params = {
            s.name: getattr(self, s.name) for s in self.param_specs() if s.name != "vocab_size"
        }
        return {"vocab_size": self.target_vocab_size, **params}

    # ------------------------------------------------------------------ encoding
    def encode(self, image: np.ndarray) -> np.ndarray:
        return self.encode_batch([image])[0]

    def encode_batch(self, images: Iterable[np.ndarray]) -> list[np.ndarray]:
        self._check_fitted()
        # The encode_batch_fast path skips character offsets we never use; older tokenizers lack it.
        encode = getattr(self.tokenizer_, "encode_batch_fast", self.tokenizer_.encode_batch)
        out: list[np.ndarray] = []
        chunk: list[str] = []
        for image in images:
            chunk.append(self.image_to_text(image))
            if len(chunk) == ENCODE_CHUNK:
                out += [np.asarray(e.ids, ID_DTYPE) for e in encode(chunk)]
                chunk = []
        if chunk:
            out += [np.asarray(e.ids, ID_DTYPE) for e in encode(chunk)]
        return out

    def decode_checked(self, ids: Sequence[int] | np.ndarray, shape: Sequence[int]) -> Decoded:
        self._check_fitted()
        assert self._table is not None
        out_shape = self.output_shape(shape)
        ids, notes = split_valid_ids(self.ids_array(ids), len(self._table))
        decoded = self._symbols_to_image(self._table.expand(ids), out_shape)
        notes += decoded.notes
        return Decoded(decoded.image, repairs=len(notes), notes=tuple(notes))

    # ------------------------------------------------------------------ persistence
    def _save_state(self, directory: Path) -> None:
        self.tokenizer_.save(str(directory / TOKENIZER_FILE))

    def _load_state(self, directory: Path) -> None:
        from tokenizers import Tokenizer

        path = directory / TOKENIZER_FILE
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises plain Exception on a bad file
            raise ManifestError(f"{path}: cannot read the tokenizer ({exc})") from None
        self._set_tokenizer(tokenizer)


class _SymbolBPEEncoder(HFTokenizerEncoder):
    """BPE over the private-use symbol alphabet (grey or RGB by ``channels``)."""

    def __init__(
        self,
        *,
        vocab_size: int = 10000,
        levels: int = 10,
        rows: RowMode = "split",
        min_frequency: int = 2,
        max_token_length: int | None = None,
        max_fit_images: int | None = None,
    ) -> None:
        super().__init__()
        self.target_vocab_size = vocab_size
        self.levels = levels
        self.rows = rows
        self.min_frequency = min_frequency
        self.max_token_length = max_token_length
        self.max_fit_images = max_fit_images
        self.quantizer = Quantizer(levels, self.channels)
        if rows not in ("split", "separator", "joined"):
            raise EncoderParamError(f"rows must be split, separator or joined, got {rows!r}")
        alphabet = self.quantizer.n_symbols + (rows == "separator")
        if vocab_size < alphabet:
            raise EncoderParamError(
                f"vocab_size={vocab_size} is smaller than the {alphabet} symbols of levels={levels}"
            )

    # ------------------------------------------------------------------ text
    def image_to_text(self, image: np.ndarray) -> str:
        codepoints = symbol_codepoints(self.quantizer.symbols(self.check_image(image)))
        if self.rows == "joined":
            return codepoints_to_text(codepoints)
        # Rows joined by the separator: one extra column of "\n", then drop the last one.
        sep = np.full((codepoints.shape[0], 1), ord(ROW_SEPARATOR), np.uint32)
        return codepoints_to_text(np.hstack([codepoints, sep]).reshape(-1)[:-1])

    def quantize(self, image: np.ndarray) -> np.ndarray:
        return self.quantizer.quantize(self.check_image(image))

    def _token_symbols(self, token: str) -> np.ndarray:
        symbols = text_to_symbols(token)
        symbols[symbols >= self.quantizer.n_symbols] = -1
        symbols[np.frombuffer(token.encode("utf-32-le"), "<u4") == ord(ROW_SEPARATOR)] = (
            SEPARATOR_MARK
        )
        return symbols

    def _symbols_to_image(self, symbols: np.ndarray, shape: tuple[int, int, int]) -> Decoded:
        h, w, _ = shape
        if self.rows == "separator":
            grid, notes = rows_from_marked(symbols, h, w)
        else:
            # No separator is in the vocabulary here, so every symbol is a pixel.
            flat, note = fit_length(symbols[symbols >= 0], h * w)
            grid, notes = flat.reshape(h, w), [note] if note else []
        return Decoded(self.quantizer.image(grid), len(notes), tuple(notes))

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
        """The initial alphabet: every symbol's character (and the separator when kept)."""
        chars = codepoints_to_text(symbol_codepoints(np.arange(self.quantizer.n_symbols)))
        return list(chars) + ([ROW_SEPARATOR] if self.rows == "separator" else [])

    def _train(self, texts: Iterator[str], n_texts: int) -> Any:
        from tokenizers import trainers

        alphabet = self.alphabet()
        options: dict[str, Any] = {}
        if self.max_token_length is not None:
            options["max_token_length"] = self.max_token_length
        trainer = trainers.BpeTrainer(
            vocab_size=self.target_vocab_size,
            min_frequency=self.min_frequency,
            initial_alphabet=alphabet,
            limit_alphabet=len(alphabet),
            show_progress=False,  # its bar writes to the terminal; ours goes to stderr
            **options,
        )
        tokenizer = self._new_tokenizer()
        tokenizer.train_from_iterator(texts, trainer, length=n_texts)
        return tokenizer


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
