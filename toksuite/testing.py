"""Checks of the encoder contract that plugin authors can run on their own encoders.

Each raises AssertionError with a message on failure; toksuite's own tests run them on every
built-in encoder, the example plugins on theirs.
"""

from __future__ import annotations

import numpy as np


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
