"""A batch of sequences stepped through an encoder's `TokenGrammar` on the device, as a logits mask.

`GrammarMask.allowed` is `TokenGrammar.allowed` for every row at once (a few gathers over a
rows × vocabulary table, no host round trip); `advance` moves each row by the id it took and marks
rows that took an id the grammar forbids (possible only when sampling unconstrained).

What masking does to the distribution: each step samples the model's next-token distribution
restricted to the allowed ids and renormalised, so a sample is drawn from the model conditioned
on validity one step at a time. That is close to, not exactly, the model conditioned on the whole
sample being valid: a step does not know how likely the model is to go wrong later. The ratio of
the unconstrained to the constrained probability of each chosen id is kept (`log_weight`): its
product over a sample, averaged over samples, is an unbiased estimate of the probability that an
unconstrained sample with the same settings is well formed (importance sampling), without drawing
a single unconstrained sample.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from toksuite.encoders.grammar import UNREACHABLE, State, TokenGrammar


class GrammarMask:
    """Rows of a batch in a grammar: segment, units done, open-unit state, tokens left."""

    def __init__(
        self,
        grammar: TokenGrammar,
        states: Sequence[State],
        tokens_left: Sequence[int],
        *,
        width: int,
        device: torch.device,
    ) -> None:
        def tensor(a) -> torch.Tensor:
            return torch.as_tensor(np.asarray(a, np.int64), device=device)

        self.vocab = grammar.vocab_size
        self.width = width  # the model's vocabulary: the grammar's ids, then BOS (never allowed)
        self.separator = grammar.separator
        self.n_segments = len(grammar.segments)
        self.next_state = tensor(grammar.next_state)
        self.units = tensor(grammar.units)
        # Per state and id, what `allowed` needs: the units the id uses up (those it completes
        # plus the one it leaves open) and the fewest tokens that close what it leaves open.
        allowed_at = grammar.next_state >= 0
        need = grammar.units + (grammar.next_state > 0)
        self.need = tensor(np.where(allowed_at, need, UNREACHABLE))
        self.close_after = tensor(
            np.where(allowed_at, grammar.close[np.maximum(grammar.next_state, 0)], UNREACHABLE)
        )
        self.segments = tensor(np.concatenate([grammar.segments, [0]]))  # row K: done
        self.fill, self.tail = tensor(grammar.fill), tensor(grammar.tail)
        # Bounds of what the costing can add, so that rows far from their budget skip it.
        self.fill_peak = tensor(np.maximum.accumulate(grammar.fill))
        self.most_close = int(grammar.close[grammar.close < UNREACHABLE].max())
        self.segment = tensor([s.segment for s in states])
        self.used = tensor([s.used for s in states])
        self.node = tensor([s.node for s in states])
        self.left = tensor(tokens_left)
        self.broken = torch.zeros(len(states), dtype=torch.bool, device=device)
        self.log_weight = torch.zeros(len(states), dtype=torch.float64, device=device)
        self._no_bos = torch.zeros((1, width - self.vocab), dtype=torch.bool, device=device)
        # One segment of one unit per token (every fixed-length encoder): the allowed ids never
        # change and no budget can bind once the image fits, so the mask is computed once.
        self.uniform = (
            len(grammar.segments) == 1
            and len(grammar.next_state) == 1
            and bool((grammar.units[0][allowed_at[0]] == 1).all())
            and all(
                fewest <= left
                for fewest, left in zip(
                    (grammar.fewest_tokens(s) for s in states), tokens_left, strict=True
                )
            )
        )
        if self.uniform:
            static = torch.zeros(self.width, dtype=torch.bool, device=device)
            static[: self.vocab] = torch.as_tensor(allowed_at[0], device=device)
            self._static = static

    @property
    def done(self) -> torch.Tensor:
        """Rows whose image is complete (never a broken row)."""
        return (self.segment >= self.n_segments) & ~self.broken

    def _pending(self) -> torch.Tensor:
        """Rows at the end of a segment that wait for the separator."""
        full = self.used == self.segments[self.segment]
        return full & (self.segment < self.n_segments) & (self.separator is not None)

    def allowed(self) -> torch.Tensor:
        """rows × width bool: the ids each row may take now (everything, for finished rows)."""
        if self.uniform:
            return self._static.expand(len(self.segment), self.width)
        k = self.segment
        rem = self.segments[k] - self.used
        single = self.need.shape[0] == 1  # no byte states: one row serves every sequence
        left = rem[:, None] - (self.need[0] if single else self.need[self.node])  # units after
        ok = left >= 0
        # The budget binds only near the end of the tokens: skip the costing everywhere else.
        slack = self.left - self.tail[k]
        if bool((self.most_close + self.fill_peak[rem.clamp(min=0)] >= slack).any()):
            close = self.close_after[0] if single else self.close_after[self.node]
            ok &= close + self.fill[left.clamp(min=0)] < slack[:, None]
        pending = self._pending()
        ok &= ~pending[:, None]
        if self.separator is not None:
            ok[:, self.separator] = pending & (self.tail[k] <= self.left)
        # A finished or broken row is still fed (the batch moves together); what it takes is
        # thrown away, but it needs some id, so everything stays allowed there.
        idle = ((k >= self.n_segments) | self.broken)[:, None]
        return torch.cat([ok, self._no_bos.expand(len(k), -1)], 1) | idle

    def advance(self, ids: torch.Tensor) -> None:
        """Move every row by the id it took (``ids``: rows), marking forbidden ids as broken."""
        active = (self.segment < self.n_segments) & ~self.broken
        if self.uniform:  # one unit a token: count them
            self.broken |= active & ~self._static[ids]
            self.used = self.used + (active & ~self.broken).long()
            self.segment = (self.used == self.segments[0]).long()
            self.left = self.left - active.long()
            return
        k, used, node = self.segment, self.used, self.node
        in_vocab = ids < self.vocab
        safe = ids.clamp(max=self.vocab - 1)
        nxt = self.next_state[node, safe]
        used_after = used + self.units[node, safe]
        pending = self._pending()
        normal = (
            in_vocab & ~pending & (nxt >= 0) & (used_after + (nxt > 0).long() <= self.segments[k])
        )
        separator = (
            pending & (ids == self.separator) if self.separator is not None else pending & False
        )
        ok = normal | separator
        self.broken |= active & ~ok
        move = active & ok
        k = torch.where(move & separator, k + 1, k)
        used = torch.where(move & normal, used_after, torch.where(move & separator, 0, used))
        node = torch.where(move & normal, nxt, torch.where(move & separator, 0, node))
        # A full segment closes at once, unless a separator must come first.
        full = (node == 0) & (used == self.segments[k]) & (k < self.n_segments)
        if self.separator is not None:
            full &= k == self.n_segments - 1
        self.segment = torch.where(move & full, k + 1, k)
        self.used = torch.where(move & full, 0, used)
        self.node = node
        self.left = self.left - active.long()
