"""Which token ids may come next: the grammar a sampler follows so that every sample is an image.

A `TokenGrammar` describes the sequences an encoder can decode without repair, for one image size,
as a small automaton over token ids:

* **units** are what a sequence is made of once decoded: pixels (BPE, palettes) or values (one
  token per sub-pixel). ``unit_pixels[j]`` is the flat raster index of the pixel unit ``j`` belongs
  to, so the same tables say which pixels each token covers (`Walk.coverage`).
* **segments** are runs of units no token may straddle: the rows of a row-split BPE, one segment
  for an encoder whose tokens may cross rows, one segment of ``sequence_length`` for a fixed-length
  encoder. With a **separator** id, exactly that id sits between segments and nowhere else.
* **states** carry what a token can leave half done: state 0 is "between units"; a state ``s > 0``
  means a unit (a character spelled by byte-fallback tokens) is started and the next tokens must
  finish it. ``next_state[s, v]`` is the state after id ``v`` from state ``s`` (``-1``: ``v`` may
  not follow), ``units[s, v]`` the units it completes.

Token ``v`` may come next when it is allowed from the current state, what it completes (plus the
unit it leaves open) fits in what is left of the segment, and an image can still be finished in the
tokens left: `fewest_tokens` is the exact least number of tokens that finish one, by dynamic
programming over the tokens that start and end between units. Following any allowed id therefore
never leads to a dead end, and the sequence stops exactly when the last unit is complete.

A default grammar serves every fixed-length encoder (`TokenGrammar.fixed_length`: any id, exactly
``sequence_length`` tokens); the BPE encoders build theirs from their token tables
(`TokenGrammar.from_atoms`). The sampler (`toksuite.constrain`) applies it as a logits mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from toksuite.errors import DataError

__all__ = ["NOT_AN_ATOM", "State", "TokenGrammar", "Walk"]

UNREACHABLE = np.int64(1) << 40  # "no way to finish": far above any token count, safe to add to
NOT_AN_ATOM = -(10**6)  # an atom that is neither a unit nor a byte: its token is never allowed


class State(NamedTuple):
    """Where a sequence stands: segment, units done in it, automaton state (0: between units)."""

    segment: int
    used: int
    node: int


@dataclass
class Walk:
    """A sequence read through a grammar: units done before and after each token."""

    before: np.ndarray  # units complete before token t
    after: np.ndarray  # units complete after token t
    open_after: np.ndarray  # True where token t leaves a unit half done
    state: State
    complete: bool
    unit_pixels: np.ndarray | None

    def coverage(self) -> tuple[np.ndarray, np.ndarray]:
        """(token index, flat pixel index) pairs: token t carries (part of) that pixel.

        A token carries the units it completes, the unit it finishes when it starts inside one,
        and the unit it leaves open; separators carry none. One pixel carried by k tokens (the
        three values of an RGB pixel, the bytes of a fallback character) appears k times.
        """
        if self.unit_pixels is None:
            raise DataError("this grammar does not say which pixels its units are")
        start = self.before
        stop = self.after + self.open_after
        counts = stop - start
        tokens = np.repeat(np.arange(len(start)), counts)
        offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        units = np.repeat(start, counts) + offsets
        return tokens, self.unit_pixels[units]


@dataclass(eq=False)
class TokenGrammar:
    """An encoder's valid sequences for one image size; see the module docstring."""

    next_state: np.ndarray  # int32 S×V
    units: np.ndarray  # int32 S×V
    segments: np.ndarray  # int64 K: units per segment
    separator: int | None = None
    unit_pixels: np.ndarray | None = None  # int64, one per unit: its flat pixel index
    fill: np.ndarray = field(init=False, repr=False)  # fewest tokens for r units, state 0 to 0
    close: np.ndarray = field(init=False, repr=False)  # fewest tokens to finish an open unit
    tail: np.ndarray = field(init=False, repr=False)  # fewest tokens for the segments after k

    def __post_init__(self) -> None:
        self.next_state = np.ascontiguousarray(self.next_state, np.int32)
        self.units = np.ascontiguousarray(self.units, np.int32)
        self.segments = np.asarray(self.segments, np.int64)
        if self.separator is not None:
            self.next_state[:, self.separator] = -1  # placed by the segment rule alone
        # A token that completes nothing and leaves the state as it was makes no progress.
        stuck = (self.units == 0) & (self.next_state == np.arange(len(self.units))[:, None])
        self.next_state[stuck] = -1
        self.fill = _fewest_fills(self.next_state, self.units, int(self.segments.max()))
        self.close = _fewest_closes(self.next_state, self.units)
        per_segment = self.fill[self.segments]
        seps = 0 if self.separator is None else 1
        after = np.concatenate([np.cumsum(per_segment[::-1])[::-1][1:], [0]])
        gaps = seps * (len(self.segments) - 1 - np.arange(len(self.segments)))
        self.tail = np.concatenate([after + gaps, [0]]).astype(np.int64)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def fixed_length(cls, vocab_size: int, length: int, pixels: int) -> TokenGrammar:
        """Any id, exactly ``length`` tokens; ``pixels`` per image maps units to pixels."""
        per_pixel = length // pixels if pixels and length % pixels == 0 else 0
        return cls(
            next_state=np.zeros((1, vocab_size), np.int32),
            units=np.ones((1, vocab_size), np.int32),
            segments=np.array([length]),
            unit_pixels=np.arange(length) // per_pixel if per_pixel else None,
        )

    @classmethod
    def from_atoms(
        cls,
        tokens: Sequence[np.ndarray],
        *,
        segments: Sequence[int],
        unit_pixels: np.ndarray | None,
        characters: Sequence[bytes] = (),
        separator: int | None = None,
    ) -> TokenGrammar:
        """The grammar of a vocabulary whose tokens are runs of atoms.

        An atom ``a >= 0`` is one whole unit (a symbol); byte ``b`` is written ``-1 - b``
        (``-1 .. -256``), and bytes must spell, in order, one of ``characters`` (the UTF-8 of the
        units a byte fallback may write), each character one unit. A token with any other atom
        (below ``-256``: unknown, a separator) is never allowed; the ``separator`` id goes
        between segments.
        """
        child = _byte_trie(characters)  # S×256: next node, 0 = character complete, -1 = none
        n_states, vocab = len(child), len(tokens)
        lengths = np.array([len(t) for t in tokens], np.int64)
        next_state = np.full((n_states, vocab), -1, np.int64)
        units = np.zeros((n_states, vocab), np.int64)
        # Runs of symbols follow state 0 only and complete one unit per symbol.
        plain = np.array([len(t) > 0 and bool((t >= 0).all()) for t in tokens], bool)
        next_state[0, plain], units[0, plain] = 0, lengths[plain]
        # Tokens with bytes are read through the trie from every state at once, atom by atom.
        mixed = np.flatnonzero(~plain & (lengths > 0))
        longest = int(lengths[mixed].max()) if mixed.size else 0
        atoms = np.full((mixed.size, max(longest, 1)), NOT_AN_ATOM, np.int64)
        for row, v in enumerate(mixed.tolist()):  # the byte tokens (every token, byte-level)
            atoms[row, : lengths[v]] = tokens[v]
        state = np.repeat(np.arange(n_states)[:, None], mixed.size, 1)
        done = np.zeros(state.shape, np.int64)
        valid = np.ones(state.shape, bool)
        for j in range(longest):
            active = (j < lengths[mixed])[None, :] & valid
            atom = np.broadcast_to(atoms[None, :, j], state.shape)
            is_symbol, is_byte = atom >= 0, (atom < 0) & (atom >= -256)
            nxt = np.where(is_byte, child[state, np.clip(-1 - atom, 0, 255)], -1)
            ok = (is_symbol & (state == 0)) | (is_byte & (nxt >= 0))
            valid &= ~active | ok
            step = active & valid
            done += step & (is_symbol | (nxt == 0))
            state = np.where(step & is_byte, nxt, state)
        next_state[:, mixed] = np.where(valid, state, -1)
        units[:, mixed] = done
        return cls(next_state, units, np.asarray(segments), separator, unit_pixels)

    # ------------------------------------------------------------------ properties
    @property
    def vocab_size(self) -> int:
        return self.next_state.shape[1]

    @property
    def total_units(self) -> int:
        return int(self.segments.sum())

    def start(self) -> State:
        return State(0, 0, 0)

    def done(self, state: State) -> bool:
        return state.segment >= len(self.segments)

    def fewest_tokens(self, state: State) -> int:
        """The least number of tokens that finish the image from ``state`` (exact)."""
        if self.done(state):
            return 0
        left = int(self.segments[state.segment]) - state.used - (state.node > 0)
        if left < 0:
            return int(UNREACHABLE)
        return int(self.close[state.node] + self.fill[left] + self.tail[state.segment])

    # ------------------------------------------------------------------ one state (reference)
    def allowed(self, state: State, tokens_left: int | None = None) -> np.ndarray:
        """Bool mask over ids of what may follow ``state`` with ``tokens_left`` tokens to go.

        The sampler's device mask (`toksuite.constrain`) computes the same thing for a batch.
        """
        mask = np.zeros(self.vocab_size, bool)
        if self.done(state):
            return mask
        budget = UNREACHABLE if tokens_left is None else tokens_left
        segment_end = state.used == self.segments[state.segment]
        if segment_end:  # only a pending separator stands here (others advance at once)
            if self.tail[state.segment] <= budget:  # the separator itself, then the rest
                mask[self.separator] = True
            return mask
        nxt = self.next_state[state.node]
        left = int(self.segments[state.segment]) - state.used - self.units[state.node]
        left = left - (nxt > 0)
        cost = (
            self.close[np.maximum(nxt, 0)]
            + self.fill[np.clip(left, 0, None)]
            + self.tail[state.segment]
        )
        return (nxt >= 0) & (left >= 0) & (cost <= budget - 1)

    def step(self, state: State, token: int) -> State | None:
        """The state after ``token``, or None when it may not come here (budget aside)."""
        if self.done(state) or not 0 <= token < self.vocab_size:
            return None
        k, used, node = state
        if used == self.segments[k]:  # a separator is due
            return self._settle(State(k + 1, 0, 0)) if token == self.separator else None
        nxt = int(self.next_state[node, token])
        used += int(self.units[node, token])
        if nxt < 0 or used + (nxt > 0) > self.segments[k]:
            return None
        return self._settle(State(k, used, nxt))

    def _settle(self, state: State) -> State:
        """Move past a full segment, unless a separator has to come first."""
        k, used, node = state
        last = self.separator is None or k == len(self.segments) - 1
        return State(k + 1, 0, 0) if node == 0 and used == self.segments[k] and last else state

    def coverage(self, ids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`Walk.coverage` of a complete sequence; DataError when it is not one.

        A grammar without open-unit states (no byte fallback) is read in one vectorised pass that
        checks every id and the unit count; the others are walked token by token.
        """
        ids = np.asarray(ids, np.int64).reshape(-1)
        if len(self.next_state) == 1:
            safe = np.clip(ids, 0, self.vocab_size - 1)
            separator = ids == self.separator if self.separator is not None else ids < -1
            inside = (ids >= 0) & (ids < self.vocab_size)
            counts = np.where(separator, 0, self.units[0, safe]).astype(np.int64)
            ok = inside & (separator | (self.next_state[0, safe] == 0))
            if ok.all() and counts.sum() == self.total_units:
                after = np.cumsum(counts)
                zero = np.zeros(len(ids), np.int64)
                return Walk(
                    after - counts,
                    after,
                    zero,
                    State(len(self.segments), 0, 0),
                    True,
                    self.unit_pixels,
                ).coverage()
        walk = self.walk(ids)
        if not walk.complete:
            raise DataError(f"{len(ids)} tokens end before the image is complete")
        return walk.coverage()

    def walk(self, ids: Sequence[int] | np.ndarray) -> Walk:
        """Read ``ids`` from the start; DataError at the first id that may not come there."""
        ids = np.asarray(ids, np.int64).reshape(-1)
        state = self.start()
        before = np.zeros(len(ids), np.int64)
        after = np.zeros(len(ids), np.int64)
        open_after = np.zeros(len(ids), np.int64)
        done_units = 0
        segment_starts = np.concatenate([[0], np.cumsum(self.segments)])
        for t, token in enumerate(ids.tolist()):
            before[t] = done_units
            nxt = self.step(state, token)
            if nxt is None:
                raise DataError(f"token {t} (id {token}) may not come there")
            state = nxt
            done_units = (
                int(segment_starts[state.segment]) + state.used
                if not self.done(state)
                else self.total_units
            )
            after[t], open_after[t] = done_units, state.node > 0
        return Walk(before, after, open_after, state, self.done(state), self.unit_pixels)


# ---------------------------------------------------------------------------- tables
def _byte_trie(characters: Sequence[bytes]) -> np.ndarray:
    """S×256 transitions over the characters' bytes: node, 0 = a character ends, -1 = none."""
    nodes: dict[bytes, int] = {b"": 0}
    for char in characters:
        for cut in range(1, len(char)):
            nodes.setdefault(char[:cut], len(nodes))
    child = np.full((len(nodes), 256), -1, np.int32)
    for char in characters:
        for cut in range(1, len(char) + 1):
            here = nodes[char[: cut - 1]]
            child[here, char[cut - 1]] = 0 if cut == len(char) else nodes[char[:cut]]
    return child


def _fewest_fills(next_state: np.ndarray, units: np.ndarray, longest: int) -> np.ndarray:
    """fill[r]: fewest tokens that complete exactly r units, from state 0 back to state 0."""
    sizes = np.unique(units[0][(next_state[0] == 0) & (units[0] > 0)])
    if sizes.tolist() == [1]:  # one unit a token (fixed-length encoders)
        return np.arange(longest + 1, dtype=np.int64)
    fill = np.full(longest + 1, UNREACHABLE, np.int64)
    fill[0] = 0
    for r in range(1, longest + 1):
        usable = sizes[sizes <= r]
        if usable.size:
            fill[r] = min(int(UNREACHABLE), 1 + int(fill[r - usable].min()))
    return fill


def _fewest_closes(next_state: np.ndarray, units: np.ndarray) -> np.ndarray:
    """close[s]: fewest tokens from state s back to 0 that complete exactly the open unit."""
    n = len(next_state)
    close = np.full(n, UNREACHABLE, np.int64)
    close[0] = 0
    finishes = ((next_state == 0) & (units == 1)).any(1)
    close[1:][finishes[1:]] = 1
    for _ in range(n):  # Bellman-Ford over the few byte states
        inner = (units == 0) & (next_state > 0)
        via = np.where(inner, close[np.maximum(next_state, 0)], UNREACHABLE).min(1) + 1
        updated = np.minimum(close, np.where(np.arange(n) > 0, via, 0))
        if (updated == close).all():
            break
        close = updated
    return np.minimum(close, UNREACHABLE)
