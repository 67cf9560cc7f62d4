"""The base class of encoders built on a Hugging Face ``tokenizers`` model (image BPE).

An image becomes text (one character per pixel symbol, in some scan order), a ``tokenizers``
model learns merges on those texts, and a token's id stands for the symbols of its characters.
What every such encoder shares lives here: choosing the fit images, fitting with a progress bar,
encoding in chunks through the Rust tokenizer, decoding through a table of each token's symbols
(ids out of range dropped and counted), one grammar per image size, and saving the tokenizer as a
plain ``tokenizer.json`` that ``transformers.PreTrainedTokenizerFast`` opens without toksuite.

The built-in ``bpe-*`` encoders subclass `HFTokenizerEncoder`, and so can a plugin: it fills in
the abstract methods (how an image becomes text, how to train, what a token's symbols are, how
symbols become an image, the grammar) and inherits the rest.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from toksuite.encoders.base import ID_DTYPE, Decoded, Encoder, split_valid_ids
from toksuite.encoders.grammar import TokenGrammar
from toksuite.encoders.token_table import TokenTable
from toksuite.errors import EncoderParamError, ManifestError
from toksuite.progress import progress_bar, status

__all__ = ["ENCODE_CHUNK", "TOKENIZER_FILE", "HFTokenizerEncoder", "fit_sample"]

TOKENIZER_FILE = "tokenizer.json"
ENCODE_CHUNK = 512  # images per call into the Rust tokenizer: bounds memory, keeps it parallel


def fit_sample(name: str, n_images: int, max_fit_images: int | None, seed: int) -> np.ndarray:
    """Indices of the images a BPE fit learns from: all, or a seeded sample of ``max_fit_images``.

    The sample keeps data order, so the same seed picks the same images.
    """
    if n_images == 0:
        raise EncoderParamError(f"{name}: fit needs at least one image")
    if max_fit_images is not None and max_fit_images < 1:
        raise EncoderParamError(
            f"{name}: max_fit_images must be >= 1 or None, got {max_fit_images}"
        )
    order = np.arange(n_images)
    if max_fit_images is not None and n_images > max_fit_images:
        order = np.sort(np.random.default_rng(seed).permutation(n_images)[:max_fit_images])
    return order


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class HFTokenizerEncoder(Encoder):
    """What the image-BPE encoders share: fit on texts, fast batch encode, save/load tokenizer.json.

    Subclasses set ``target_vocab_size`` (the ``vocab_size`` parameter; the `vocab_size` property
    is the fitted size) and ``max_fit_images``, call ``super().__init__()``, and implement the
    abstract methods below, plus `quantize`.
    """

    target_vocab_size: int
    max_fit_images: int | None

    def __init__(self) -> None:
        self.tokenizer_: Any = None
        self._table: TokenTable | None = None

    # ------------------------------------------------------------------ subclass API
    @abstractmethod
    def image_to_text(self, image: np.ndarray) -> str:
        """The text the tokenizer sees for ``image`` (public: HF users tokenise exactly this)."""

    @abstractmethod
    def _train(self, texts: Iterator[str], n_texts: int) -> Any:
        """A ``tokenizers.Tokenizer`` trained on ``texts`` (``n_texts`` of them, streamed)."""

    @abstractmethod
    def _token_symbols(self, token: str) -> np.ndarray:
        """Symbols of one vocabulary entry (SEPARATOR_MARK for a row separator, -1 unknown)."""

    @abstractmethod
    def _symbols_to_image(self, symbols: np.ndarray, shape: tuple[int, int, int]) -> Decoded:
        """The symbols of a sequence's tokens, concatenated, → an image of ``shape`` (H, W, C),
        repairing and counting what does not fit."""

    @abstractmethod
    def _build_grammar(self, height: int, width: int) -> TokenGrammar:
        """The grammar of an H×W image's sequences (see `grammar`)."""

    def _prepare_fit(self, images: Sequence[np.ndarray], seed: int) -> None:  # noqa: B027
        """Look at the training images before `_train` streams their text (count symbols, fit a
        palette); nothing by default."""

    def _texts(self, images: Sequence[np.ndarray]) -> Iterable[str]:
        """The texts of some images, in order; override where a batch is faster than one by one."""
        return map(self.image_to_text, images)

    # ------------------------------------------------------------------ grammar
    def grammar(self, height: int, width: int) -> TokenGrammar:
        """Tokens whose pixels fit what is left of the row (or image), byte-fallback tokens only
        where they spell a character, separators only at row ends; built once per size."""
        self._check_fitted()
        cache = self.__dict__.setdefault("_grammars", {})
        if (height, width) not in cache:
            cache[(height, width)] = self._build_grammar(height, width)
        return cache[(height, width)]

    # ------------------------------------------------------------------ fitting
    @property
    def is_fitted(self) -> bool:
        return self.tokenizer_ is not None

    def fit(self, images: Sequence[np.ndarray] | np.ndarray, *, seed: int = 0) -> Self:
        order = fit_sample(self.name, len(images), self.max_fit_images, seed)
        chosen = [images[int(i)] for i in order]
        started = time.perf_counter()
        with progress_bar(f"{self.name}: learning merges", len(order)) as advance:

            def texts() -> Iterator[str]:
                for chunk in _chunks(chosen, ENCODE_CHUNK):
                    for text in self._texts(chunk):
                        yield text
                        advance(1)

            self._prepare_fit(chosen, seed)
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
        self.__dict__.pop("_grammars", None)  # grammars of the previous tokenizer

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
        # Handing split rows over as pre-tokenized words (no Split regex), a BPE cache of 0, more
        # Rust threads or other chunk sizes gave no measurable gain (benchmarks/bench_encode.py).
        encode = getattr(self.tokenizer_, "encode_batch_fast", self.tokenizer_.encode_batch)
        out: list[np.ndarray] = []
        for chunk in _chunks(images, ENCODE_CHUNK):
            out += [np.asarray(e.ids, ID_DTYPE) for e in encode(list(self._texts(chunk)))]
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

        path = Path(directory) / TOKENIZER_FILE
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises plain Exception on a missing or bad file
            raise ManifestError(f"{path}: cannot read the tokenizer ({exc})") from None
        self._set_tokenizer(tokenizer)
