"""The encoder interface: an image (uint8, H×W×C) to a 1-D array of token ids, and back.

Contract (checked by the property tests for every registered encoder):

* ``decode(encode(x), x.shape) == quantize(x)`` bit for bit — lossless on its own output;
* ``0 <= id < vocab_size`` for every id ``encode`` returns;
* ``decode`` never raises on a malformed sequence (model output): it returns an image of the
  requested shape and counts what it had to repair (`decode_checked`);
* every sequence ``grammar(H, W)`` lets a sampler build decodes with no repair, and ``encode``'s
  own output is one of them (`toksuite.encoders.grammar`).
"""

from __future__ import annotations

import hashlib
import inspect
import tempfile
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Self, get_args, get_origin

import numpy as np

from toksuite.encoders.grammar import TokenGrammar
from toksuite.encoders.symbols import fit_length
from toksuite.errors import DataError, EncoderParamError, ManifestError, NotFittedError
from toksuite.io import atomic_dir
from toksuite.limits import check_size
from toksuite.manifest import MANIFEST, identity_bytes, new_manifest
from toksuite.params import normalise_key

__all__ = ["ID_DTYPE", "Decoded", "Encoder", "ParamSpec", "split_valid_ids"]

ID_DTYPE = np.int32


def split_valid_ids(ids: np.ndarray, vocab_size: int) -> tuple[np.ndarray, list[str]]:
    """Drop ids outside ``[0, vocab_size)``; a note when any were dropped."""
    bad = (ids < 0) | (ids >= vocab_size)
    if not bad.any():
        return ids, []
    return ids[~bad], [f"{int(bad.sum())} ids outside 0..{vocab_size - 1} dropped"]


@dataclass(frozen=True)
class Decoded:
    """What `Encoder.decode_checked` returns: the image and how much of the input was repaired."""

    image: np.ndarray
    repairs: int = 0
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the sequence was well-formed and nothing had to be repaired."""
        return self.repairs == 0


@dataclass(frozen=True)
class ParamSpec:
    """One constructor parameter, as shown by ``toksuite encoders`` and parsed from ``-p k=v``."""

    name: str
    annotation: Any
    default: Any
    choices: tuple[Any, ...] = field(default=())

    @property
    def type_name(self) -> str:
        if self.choices:
            return "|".join(str(c) for c in self.choices)
        return getattr(self.annotation, "__name__", str(self.annotation)).replace("typing.", "")

    def parse(self, text: str) -> Any:
        """Convert a CLI string to this parameter's type (raises EncoderParamError)."""
        return _convert(self.name, self.annotation, text)


def _convert(name: str, annotation: Any, text: str) -> Any:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if text.lower() in ("none", "null", "") and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(name, arg, text)
            except EncoderParamError:
                continue
        raise EncoderParamError(f"parameter {name}: cannot read {text!r} as {annotation}")
    if origin is Literal:
        for choice in args:
            if str(choice) == text:
                return choice
        raise EncoderParamError(
            f"parameter {name}: {text!r} is not one of {', '.join(map(str, args))}"
        )
    if annotation is bool:
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise EncoderParamError(f"parameter {name}: {text!r} is not a boolean")
    if annotation in (int, float, str):
        try:
            return annotation(text)
        except ValueError:
            raise EncoderParamError(
                f"parameter {name}: {text!r} is not a valid {annotation.__name__}"
            ) from None
    raise EncoderParamError(f"parameter {name}: type {annotation} cannot be set from text")


class Encoder(ABC):
    """Base class of every encoder, built-in or plugin.

    Subclasses take their parameters as keyword-only ``__init__`` arguments with type annotations
    and JSON-serialisable defaults, store each under the same attribute name (scikit-learn habit),
    and keep fitted state in attributes ending in ``_``.
    """

    name: ClassVar[str]
    channels: ClassVar[int]
    aliases: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""

    # ------------------------------------------------------------------ parameters
    @classmethod
    def param_specs(cls) -> list[ParamSpec]:
        hints = typing.get_type_hints(cls.__init__)
        specs = []
        for p in inspect.signature(cls.__init__).parameters.values():
            if p.name == "self" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            ann = hints.get(p.name, str)
            choices = get_args(ann) if get_origin(ann) is Literal else ()
            specs.append(ParamSpec(p.name, ann, p.default, tuple(choices)))
        return specs

    @classmethod
    def parse_params(cls, pairs: Iterable[str]) -> dict[str, Any]:
        """Turn ``["vocab_size=30000", "rows=split"]`` into typed keyword arguments."""
        specs = {s.name: s for s in cls.param_specs()}
        params: dict[str, Any] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            key = normalise_key(key)
            if not sep:
                raise EncoderParamError(f"parameter {pair!r}: expected KEY=VALUE")
            if key not in specs:
                known = ", ".join(specs) or "none"
                raise EncoderParamError(
                    f"encoder {cls.name!r} has no parameter {key!r} (parameters: {known})"
                )
            params[key] = specs[key].parse(value.strip())
        return params

    def get_params(self) -> dict[str, Any]:
        return {s.name: getattr(self, s.name) for s in self.param_specs()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ fitting
    def fit(self, images: Sequence[np.ndarray] | np.ndarray, *, seed: int = 0) -> Self:
        """Learn palette / merges from ``images``. Encoders with nothing to learn return self."""
        return self

    @property
    def is_fitted(self) -> bool:
        """False until `fit` or `load`; encoders with nothing to learn are always fitted."""
        return True

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"encoder {self.name!r} is not fitted: call fit(images) or load a saved one"
            )

    # ------------------------------------------------------------------ the contract
    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of distinct token ids; every id is in ``[0, vocab_size)``."""

    @abstractmethod
    def encode(self, image: np.ndarray) -> np.ndarray:
        """Token ids (1-D, integer) of one uint8 H×W×C image."""

    def encode_batch(self, images: Iterable[np.ndarray]) -> list[np.ndarray]:
        """Encode many images; subclasses override this where batching is faster."""
        return [self.encode(image) for image in images]

    @abstractmethod
    def quantize(self, image: np.ndarray) -> np.ndarray:
        """The image as the encoder sees it: what ``decode(encode(image))`` returns."""

    @abstractmethod
    def decode_checked(self, ids: Sequence[int] | np.ndarray, shape: Sequence[int]) -> Decoded:
        """Decode ids to an image of ``shape`` (H, W[, C]), repairing malformed input."""

    def decode(self, ids: Sequence[int] | np.ndarray, shape: Sequence[int]) -> np.ndarray:
        return self.decode_checked(ids, shape).image

    def sequence_length(self, height: int, width: int) -> int | None:
        """Tokens per image of this size when that is fixed (pixels, palettes), else None."""
        return None

    def grammar(self, height: int, width: int) -> TokenGrammar | None:
        """Which ids may come next in a sequence of an H×W image (constrained sampling).

        The default serves fixed-length encoders: any id, exactly ``sequence_length`` tokens, the
        units in raster order (``sequence_length / (H·W)`` tokens per pixel). Encoders whose
        sequences vary in length (BPE) build their own (`TokenGrammar.from_atoms`); None means
        "no grammar": samples are then drawn unconstrained.
        """
        length = self.sequence_length(height, width)
        if length is None:
            return None
        return TokenGrammar.fixed_length(self.vocab_size, length, height * width)

    def token_pixels(
        self, ids: Sequence[int] | np.ndarray, shape: Sequence[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(token index, flat pixel index) pairs of a well-formed sequence: what each token covers.

        Read from `grammar` (`Walk.coverage`); a pixel that several tokens carry (the values of an
        RGB pixel, the bytes of a byte-fallback character) is listed once per token.
        """
        height, width, _ = self.output_shape(shape)
        grammar = self.grammar(height, width)
        if grammar is None:
            raise DataError(f"{self.name}: no grammar, so no map from tokens to pixels")
        return grammar.coverage(ids)

    # ------------------------------------------------------------------ helpers for subclasses
    def check_image(self, image: np.ndarray) -> np.ndarray:
        """Validate one image and return it as a contiguous uint8 H×W×C array."""
        image = np.asarray(image)
        if image.dtype != np.uint8:
            raise DataError(f"{self.name}: images must be uint8, got {image.dtype}")
        if image.ndim == 2 and self.channels == 1:
            image = image[:, :, None]
        if image.ndim != 3 or image.shape[2] != self.channels:
            raise DataError(
                f"{self.name}: expected an H×W×{self.channels} image, got shape {image.shape}"
            )
        if image.shape[0] == 0 or image.shape[1] == 0:
            raise DataError(f"{self.name}: empty image of shape {image.shape}")
        return np.ascontiguousarray(image)

    def output_shape(self, shape: Sequence[int]) -> tuple[int, int, int]:
        """(H, W, C) for a requested decode shape given as (H, W) or (H, W, C)."""
        try:
            dims = [int(n) for n in shape] if not isinstance(shape, str) else []
        except (TypeError, ValueError):
            dims = []
        if len(dims) not in (2, 3) or min(dims[:2]) < 1:
            raise DataError(f"{self.name}: bad image shape {shape!r}")
        height, width = dims[:2]
        # Checked before the image is allocated: a huge shape is a mistake, not a MemoryError.
        check_size(height, width, f"{self.name}: decode shape", DataError)
        return height, width, self.channels

    @staticmethod
    def ids_array(ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Model output as a 1-D int64 array (anything not integer-like becomes an empty array)."""
        arr = np.asarray(ids).reshape(-1)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            try:
                arr = arr.astype(np.int64)
            except (TypeError, ValueError, OverflowError):  # OverflowError: ids beyond 64 bits
                return np.zeros(0, np.int64)
        return arr.astype(np.int64, copy=False)

    def repair_ids(
        self, ids: Sequence[int] | np.ndarray, length: int
    ) -> tuple[np.ndarray, list[str]]:
        """Model output → exactly ``length`` ids in ``[0, vocab_size)``, and one note per repair.

        Ids outside the vocabulary are dropped; then a sequence that is too long is cut, and one
        that is too short is padded by repeating its last id (id 0 when none is left), the least
        surprising continuation. A fixed-length encoder's `decode_checked` is this call and a
        lookup of what each id stands for.
        """
        ids, notes = split_valid_ids(self.ids_array(ids), self.vocab_size)
        ids, note = fit_length(ids, length)
        return ids, notes + ([note] if note else [])

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Write ``toksuite.json`` and plain artefacts to ``directory`` atomically."""
        self._check_fitted()
        directory = Path(directory)
        with atomic_dir(directory) as tmp:
            new_manifest(self.name, self.get_params()).write(tmp)
            self._save_state(tmp)
        return directory

    def _save_state(self, directory: Path) -> None:  # noqa: B027  (optional hook)
        """Write fitted state as plain files (``.npy``, ``tokenizer.json``); never pickle."""

    def _load_state(self, directory: Path) -> None:  # noqa: B027  (optional hook)
        """Read what `_save_state` wrote."""

    @classmethod
    def load(cls, directory: str | Path) -> Encoder:
        """Load a saved encoder: of this class, or of any registered one when called on Encoder."""
        from toksuite.registry import load_encoder

        encoder = load_encoder(directory)
        if cls is not Encoder and not isinstance(encoder, cls):
            raise ManifestError(f"{directory}: holds a {encoder.name!r} encoder, not {cls.name!r}")
        return encoder

    def fingerprint(self) -> str:
        """SHA-256 of the saved state: equal fingerprints encode identically (cache key)."""
        with tempfile.TemporaryDirectory() as tmp:
            target = Path(tmp) / "enc"
            self.save(target)
            digest = hashlib.sha256()
            for path in sorted(target.rglob("*")):
                if path.is_file():
                    data = path.read_bytes()
                    if path.name == MANIFEST:  # the toksuite version does not change the ids
                        data = identity_bytes(data)
                    digest.update(path.name.encode() + b"\0" + data + b"\0")
        return digest.hexdigest()
