"""Checks of the encoder contract that plugin authors can run on their own encoders.

`check_encoder` runs the whole contract on one encoder class or instance; the other functions are
its parts, for tests that want one of them on their own images. Each raises AssertionError with a
message on failure. toksuite's own tests run `check_encoder` on every registered encoder (the
installed plugins' included), and the example plugins' tests on theirs::

    from toksuite.testing import check_encoder

    def test_contract():
        check_encoder(MyEncoder, params={"vocab_size": 1100})
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from toksuite.encoders.base import Encoder
from toksuite.hookspecs import hookimpl

__all__ = [
    "MALFORMED",
    "check_constrained_sampling",
    "check_decode_repairs",
    "check_encoder",
    "check_grammar_accepts",
    "check_round_trip",
    "check_save_load",
    "smooth_images",
]

# Sequences a model may generate for a 6×5 image: (name, ids, must be counted as repaired).
MALFORMED: tuple[tuple[str, Any, bool], ...] = (
    ("empty", [], True),
    ("negative", [-1, -5], True),
    ("huge", [10**9], True),
    ("beyond 64 bits", [2**70, 3], True),
    ("short", list(range(3)), False),
    ("long", list(range(500)), False),
    ("very long", [0] * 1000, False),
    ("floats", np.array([0.0, 1.5, 2.0]), False),
    ("a 2-D array", np.zeros((2, 3), np.int64), False),
)
# Odd sizes on purpose: 1×1, 1×N, N×1, non-square.
SHAPES = ((1, 1), (1, 7), (7, 1), (5, 4), (6, 9), (12, 12))


def smooth_images(channels: int, n: int = 40, size: int = 12, seed: int = 0) -> np.ndarray:
    """n images of one colour each plus mild noise: structure for BPE merges and palettes."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, 1, 1, channels), dtype=np.uint8)
    noise = rng.integers(0, 40, (n, size, size, channels))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def check_encoder(
    encoder: Encoder | type[Encoder],
    *,
    params: Mapping[str, Any] | None = None,
    fit_images: Sequence[np.ndarray] | np.ndarray | None = None,
    images: Sequence[np.ndarray] | None = None,
    seed: int = 0,
) -> Encoder:
    """Run the encoder contract on ``encoder`` (a class, built with ``params``, or an instance)
    and return it fitted.

    An unfitted encoder is fitted on ``fit_images`` (default: `smooth_images`). Then, on
    ``images`` (default: random and smooth images of odd sizes): ids are 1-D integers in
    ``[0, vocab_size)``, ``decode(encode(x)) == quantize(x)`` with no repair, the length matches
    `sequence_length`, `encode_batch` equals `encode`, and `grammar` accepts the output. Every
    malformed sequence in `MALFORMED` decodes to the requested shape and counts its repairs; a
    constrained sampler's sequences decode with no repair; `save` then `load_encoder` (through
    the registry, which is given the class when it does not know it) keeps ids and fingerprint.
    """
    if isinstance(encoder, type):
        encoder = encoder(**dict(params or {}))
    elif params:
        raise TypeError("check_encoder: params are for a class, not an instance")
    if not encoder.is_fitted:
        train = smooth_images(encoder.channels) if fit_images is None else fit_images
        encoder = encoder.fit(train, seed=seed)
    if images is None:
        rng = np.random.default_rng(seed + 1)
        shapes = [(*hw, encoder.channels) for hw in SHAPES]
        images = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in shapes]
        images += list(smooth_images(encoder.channels, n=3, seed=seed + 2))
    for image in images:
        check_round_trip(encoder, image)
        if encoder.grammar(*image.shape[:2]) is not None:
            check_grammar_accepts(encoder, image)
    batched = encoder.encode_batch(images)
    assert len(batched) == len(images), f"{encoder.name}: encode_batch lost images"
    for image, ids in zip(images, batched, strict=True):
        np.testing.assert_array_equal(ids, encoder.encode(image), f"{encoder.name}: batch differs")
    check_decode_repairs(encoder)
    if encoder.grammar(3, 5) is not None:
        check_constrained_sampling(encoder, 3, 5, rows=4, seed=seed)
    check_save_load(encoder, images[0])
    return encoder


def check_round_trip(encoder: Encoder, image: np.ndarray) -> None:
    """Ids in range, lossless on the quantisation, the announced length, nothing repaired."""
    ids = encoder.encode(image)
    assert ids.ndim == 1 and np.issubdtype(ids.dtype, np.integer), f"{encoder.name}: ids {ids!r}"
    assert ids.size, f"{encoder.name}: no ids for an image of shape {image.shape}"
    assert ids.min() >= 0 and ids.max() < encoder.vocab_size, f"{encoder.name}: id out of range"
    decoded = encoder.decode_checked(ids, image.shape)
    assert decoded.repairs == 0, f"{encoder.name}: its own output needed repairs {decoded.notes}"
    assert decoded.image.dtype == np.uint8 and decoded.image.shape[:2] == image.shape[:2]
    np.testing.assert_array_equal(
        decoded.image, encoder.quantize(image), f"{encoder.name}: decode(encode(x)) != quantize(x)"
    )
    fixed = encoder.sequence_length(*image.shape[:2])
    assert fixed is None or fixed == ids.size, f"{encoder.name}: {ids.size} ids, announced {fixed}"


def check_decode_repairs(encoder: Encoder, shape: tuple[int, int] = (6, 5)) -> None:
    """Every sequence of `MALFORMED` decodes to an image of ``shape`` without raising, and the
    repairs are counted: one note each, and at least one where the sequence cannot be right."""
    for what, ids, must_repair in MALFORMED:
        decoded = encoder.decode_checked(ids, shape)
        where = f"{encoder.name}, {what} sequence"
        assert decoded.image.shape == (*shape, encoder.channels), f"{where}: wrong shape"
        assert decoded.image.dtype == np.uint8, f"{where}: {decoded.image.dtype} image"
        assert decoded.repairs == len(decoded.notes), f"{where}: repairs and notes disagree"
        assert decoded.ok == (decoded.repairs == 0)
        if must_repair:
            assert decoded.repairs > 0, f"{where}: not counted as repaired"
        np.testing.assert_array_equal(encoder.decode(ids, shape), decoded.image)


def check_save_load(encoder: Encoder, image: np.ndarray, directory: str | Path | None = None):
    """`save` writes the manifest and plain files atomically, and `load_encoder` gives back an
    encoder of the same class and parameters that encodes ``image`` to the same ids."""
    from toksuite.registry import load_encoder

    with tempfile.TemporaryDirectory() as tmp, _registered(type(encoder)):
        target = Path(directory or tmp) / "encoder"
        encoder.save(target)
        files = [p.name for p in target.rglob("*") if p.is_file()]
        assert "toksuite.json" in files, f"{encoder.name}: no manifest in {files}"
        assert not any(p.suffix in (".pkl", ".pickle") for p in target.rglob("*")), "pickle"
        assert not list(target.parent.glob(".*tmp*")), "a half-written directory is left"
        loaded = load_encoder(target)
        assert type(loaded) is type(encoder), f"loaded a {type(loaded).__name__}"
        assert loaded.get_params() == encoder.get_params(), "parameters differ after loading"
        np.testing.assert_array_equal(loaded.encode(image), encoder.encode(image))
        np.testing.assert_array_equal(loaded.quantize(image), encoder.quantize(image))
        assert loaded.fingerprint() == encoder.fingerprint(), "fingerprint differs after loading"


class _OneEncoder:
    """A plugin that registers one class: lets the registry load an encoder not installed."""

    def __init__(self, cls: type[Encoder]) -> None:
        self.cls = cls

    @hookimpl
    def toksuite_register_encoders(self, register):
        register(self.cls)


@contextmanager
def _registered(cls: type[Encoder]) -> Iterator[None]:
    """The process-wide registry knows ``cls`` by its name while the block runs."""
    from toksuite import registry
    from toksuite.errors import ToksuiteError

    try:
        known = registry.get_encoder_class(cls.name) is cls
    except ToksuiteError:
        known = False
    if known:
        yield
        return
    previous = registry._HOST  # restored as it was, even when it was not built yet
    host = registry.PluginHost(autoload=False, extra_plugins={"checked": _OneEncoder(cls)})
    assert not host.failures, f"{cls.__name__} cannot be registered: {host.failures[0].line()}"
    registry.reset_host(host)
    try:
        yield
    finally:
        registry.reset_host(previous)


def check_grammar_accepts(encoder, image: np.ndarray) -> None:
    """``encode(image)`` follows ``grammar(H, W)`` to the end, and its tokens cover every pixel."""
    height, width = image.shape[:2]
    ids = encoder.encode(image)
    grammar = encoder.grammar(height, width)
    assert grammar is not None, f"{encoder.name}: no grammar"
    assert grammar.walk(ids).complete, f"{encoder.name}: encode's output ends early"
    tokens, pixels = encoder.token_pixels(ids, image.shape)
    assert set(pixels.tolist()) == set(range(height * width)), "some pixel is carried by no token"
    assert tokens.min() >= 0 and tokens.max() < ids.size


def check_constrained_sampling(encoder, height: int, width: int, *, rows: int = 12, seed: int = 0):
    """Random scores through the device mask (`toksuite.constrain`), budgets from the fewest
    tokens an image needs up: every sequence decodes with no repair and the grammar accepts it,
    within its budget, and the mask agrees with `TokenGrammar.allowed` (the reference)."""
    import torch

    from toksuite.constrain import GrammarMask

    grammar = encoder.grammar(height, width)
    fewest = grammar.fewest_tokens(grammar.start())
    budgets = [fewest + slack for slack in range(rows)]
    states = [grammar.start()] * rows
    width_ids = encoder.vocab_size + 1  # BOS last: never allowed
    mask = GrammarMask(grammar, states, budgets, width=width_ids, device=torch.device("cpu"))
    generator = torch.Generator().manual_seed(seed)
    sequences: list[list[int]] = [[] for _ in range(rows)]
    while not bool(mask.done.all()):
        allowed = mask.allowed()
        for i in np.flatnonzero(~mask.done.numpy())[:3]:  # the reference, on a few rows
            reference = grammar.allowed(states[i], budgets[i] - len(sequences[i]))
            assert (allowed[i, : encoder.vocab_size].numpy() == reference).all(), "mask differs"
            assert not allowed[i, -1], "BOS allowed"
        scores = torch.randn(rows, width_ids, generator=generator) * 3
        ids = torch.multinomial(torch.softmax(scores.masked_fill(~allowed, -torch.inf), -1), 1)
        for i in np.flatnonzero(~mask.done.numpy()):
            sequences[i].append(int(ids[i, 0]))
            states[i] = grammar.step(states[i], int(ids[i, 0]))
        mask.advance(ids[:, 0])
    assert not bool(mask.broken.any()), "a constrained row took a forbidden id"
    for sequence, budget in zip(sequences, budgets, strict=True):
        assert len(sequence) <= budget, f"{len(sequence)} tokens for a budget of {budget}"
        decoded = encoder.decode_checked(sequence, (height, width))
        assert decoded.repairs == 0, decoded.notes
        assert grammar.walk(sequence).complete
