"""Token grammars on vocabularies small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from toksuite.constrain import GrammarMask
from toksuite.encoders.grammar import TokenGrammar
from toksuite.errors import DataError

A, AA, AAA, SEP, LEAD, CONT = range(6)


def toy() -> TokenGrammar:
    """Two rows of 3 pixels, a separator between them; "a" runs of 1-3 pixels, and one more
    pixel value spelled by two byte tokens (0xEE 0x80), as a byte fallback writes it."""
    byte = lambda b: np.array([-1 - b])  # noqa: E731
    tokens = [np.array([0]), np.array([0, 0]), np.array([0, 0, 0]), np.array([-(10**6)])]
    tokens += [byte(0xEE), byte(0x80)]
    return TokenGrammar.from_atoms(
        tokens,
        segments=[3, 3],
        unit_pixels=np.arange(6),
        characters=[b"\xee\x80"],
        separator=SEP,
    )


def allowed_ids(grammar, state, tokens_left=None):
    return np.flatnonzero(grammar.allowed(state, tokens_left)).tolist()


def walk_to(grammar, ids):
    return grammar.walk(ids).state


def test_known_answers_of_a_toy_grammar():
    g = toy()
    assert allowed_ids(g, g.start()) == [A, AA, AAA, LEAD]  # no separator, no lone continuation
    assert allowed_ids(g, walk_to(g, [AAA])) == [SEP]  # the row is full: only the separator
    assert allowed_ids(g, walk_to(g, [AA])) == [A, LEAD]  # one pixel left in the row
    assert allowed_ids(g, walk_to(g, [AA, LEAD])) == [CONT]  # finish the character first
    assert g.fewest_tokens(g.start()) == 3  # "aaa", separator, "aaa"
    # With exactly 3 tokens to go, only "aaa" leaves a way to finish in time.
    assert allowed_ids(g, g.start(), tokens_left=3) == [AAA]
    assert allowed_ids(g, g.start(), tokens_left=2) == []
    assert g.walk([AAA, SEP, A, LEAD, CONT, A]).complete
    assert not g.walk([AAA, SEP, A]).complete
    with pytest.raises(DataError, match="token 1"):
        g.walk([AA, AA])  # the second "aa" crosses the row end


def test_coverage_lists_the_pixels_each_token_carries():
    tokens, pixels = toy().coverage([AA, LEAD, CONT, SEP, A, AA])
    assert list(zip(tokens.tolist(), pixels.tolist(), strict=True)) == [
        (0, 0), (0, 1), (1, 2), (2, 2), (4, 3), (5, 4), (5, 5)
    ]  # fmt: skip
    with pytest.raises(DataError, match="before the image is complete"):
        toy().coverage([AA])


def test_fixed_length_grammar_is_any_id_exactly_length_times():
    g = TokenGrammar.fixed_length(vocab_size=4, length=6, pixels=3)  # two tokens a pixel
    assert allowed_ids(g, g.start()) == [0, 1, 2, 3]
    assert g.fewest_tokens(g.start()) == 6
    assert g.walk([3, 2, 1, 0, 0, 0]).complete
    assert g.coverage([3, 2, 1, 0, 0, 0])[1].tolist() == [0, 0, 1, 1, 2, 2]
    assert g.step(g.walk([0] * 6).state, 0) is None  # nothing after the last token


def test_the_device_mask_steps_like_the_reference():
    g = toy()
    states = [g.start(), walk_to(g, [AAA]), walk_to(g, [AA, LEAD]), walk_to(g, [AAA, SEP, AA])]
    mask = GrammarMask(g, states, [9, 9, 9, 9], width=7, device=torch.device("cpu"))
    allowed = mask.allowed()
    for i, state in enumerate(states):
        assert np.flatnonzero(allowed[i, :6].numpy()).tolist() == allowed_ids(g, state, 9)
        assert not allowed[i, 6]  # BOS
    mask.advance(torch.tensor([AAA, SEP, CONT, A]))
    assert mask.done.tolist() == [False, False, False, True]
    assert (mask.segment.tolist(), mask.used.tolist()) == ([0, 1, 0, 2], [3, 0, 3, 0])
    mask.advance(torch.tensor([A, A, A, A]))  # "a" where only the separator may go: broken
    assert mask.broken.tolist() == [True, False, True, False]
