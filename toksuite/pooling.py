"""How a probe turns one layer's hidden states (one per token) into one feature vector per image.

Pool names: ``mean``, ``pixel-mean``, ``grid`` or ``gridN``, each optionally prefixed ``ln-``
(layer norm without affine at every position first, as iGPT does).

* ``mean``: every token of the image counts the same (BOS and padding excluded). A BPE token that
  covers 30 pixels weighs as much as one that covers 1, and where a token was is forgotten.
* ``pixel-mean``: every *pixel* counts the same: each token's state is weighted by the pixels it
  covers (`Encoder.token_pixels`; a pixel that k tokens carry gives 1/k to each). For encoders
  with one token per pixel (or per value) it equals ``mean``.
* ``gridN`` (``grid``: N = `DEFAULT_GRID`): the image cut into N×N cells in pixel space, each cell
  the pixel-weighted mean of the tokens that cover its pixels, the N² cells concatenated: every
  encoder keeps coarse position, whatever its tokens' sizes. Features are N² times wider.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from toksuite.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from toksuite.cache import TokenSequences

DEFAULT_POOL = "ln-grid2"  # why: docs/paper.md, "Pooling in pixel space"
DEFAULT_GRID = 2
POOL_PATTERN = re.compile(r"(ln-)?(mean|pixel-mean|grid(\d*))")
POOL_HELP = (
    "mean, pixel-mean or grid[N] (N×N cells; grid = grid2), each with an optional ln- prefix"
)


@dataclass(frozen=True)
class PoolSpec:
    name: str
    layer_norm: bool
    kind: str  # "mean" | "pixel-mean" | "grid"
    cells: int = 1  # a side, in pixel space: the grid's N; pixel-mean is the 1×1 grid

    @property
    def in_pixels(self) -> bool:
        return self.kind != "mean"


def parse_pool(name: str) -> PoolSpec:
    """``"ln-grid2"`` → PoolSpec(layer norm, grid, 2 cells a side); ConfigError otherwise."""
    match = POOL_PATTERN.fullmatch(name.strip())
    if not match or (match.group(3) and int(match.group(3)) < 1):
        raise ConfigError(f"--pool {name!r}: expected {POOL_HELP}")
    kind = "grid" if match.group(2).startswith("grid") else match.group(2)
    cells = int(match.group(3) or DEFAULT_GRID) if kind == "grid" else 1
    return PoolSpec(name.strip(), bool(match.group(1)), kind, cells)


@dataclass
class PixelWeights:
    """Per image: (token index, output slot, weight) triples of a pixel-space pool, in sparse form.

    The slot is the cell (row-major) of an N×N grid, and ``pixel-mean`` is the one-cell grid; the
    weights of one slot sum to the pixels it holds, so dividing by their sum gives a
    pixel-weighted mean. Pools with the same cells (``grid2`` and ``ln-grid2``) share one.
    """

    slots: int
    tokens: list[np.ndarray]
    slot: list[np.ndarray]
    weight: list[np.ndarray]

    def dense(self, index: np.ndarray, length: int, lengths: np.ndarray) -> torch.Tensor:
        """B × length × slots weights at sequence positions (BOS at 0, token t at t + 1).

        Tokens cut off by the context (position >= the row's length) drop out.
        """
        import torch

        out = np.zeros((len(index), length, self.slots), np.float32)
        for row, i in enumerate(index.tolist()):
            position = self.tokens[i] + 1
            keep = position < lengths[row]
            np.add.at(out[row], (position[keep], self.slot[i][keep]), self.weight[i][keep])
        return torch.from_numpy(out)


def pixel_weights(
    encoder,
    sequences: Sequence[np.ndarray] | TokenSequences,
    shape: Sequence[int],
    cells: Sequence[int],
) -> dict[int, PixelWeights]:
    """Cells per side → which tokens of each sequence cover which of those cells, as weights.

    Each sequence is read through the encoder's grammar once, whatever the number of grids.
    """
    height, width = int(shape[0]), int(shape[1])
    grammar = encoder.grammar(height, width)
    if grammar is None:
        raise ConfigError(
            f"--pool: {encoder.name} does not say which pixels its tokens cover, so it has no "
            "pixel-space pooling"
        )
    rows, cols = np.divmod(np.arange(height * width), width)
    cell_of = {n: (rows * n // height) * n + cols * n // width for n in cells}
    out = {n: PixelWeights(n * n, [], [], []) for n in cells}
    for ids in sequences:
        token, pixel = grammar.coverage(ids)
        share = (1.0 / np.bincount(pixel, minlength=height * width)[pixel]).astype(np.float32)
        for n, weights in out.items():  # 1/k for each of the k tokens that carry a pixel
            weights.tokens.append(token)
            weights.slot.append(cell_of[n][pixel])
            weights.weight.append(share)
    return out


def pool_hidden(
    hidden: torch.Tensor,
    lengths: torch.Tensor,
    spec: PoolSpec,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """B×L×D → B×F: ``mean`` over positions 1..length-1, or the pixel-space pool of ``weights``
    (B×L×slots from `PixelWeights.dense` of ``spec.cells``), slots concatenated."""
    import torch

    hidden = hidden.float()
    if spec.layer_norm:
        hidden = torch.nn.functional.layer_norm(hidden, hidden.shape[-1:])
    if spec.in_pixels:
        assert weights is not None
        weights = weights.to(hidden.device)
        pooled = torch.einsum("bls,bld->bsd", weights, hidden)
        pooled = pooled / weights.sum(1).clamp(min=1e-12)[..., None]
        return pooled.reshape(len(hidden), -1)
    positions = torch.arange(hidden.shape[1], device=hidden.device)
    mask = (positions[None, :] >= 1) & (positions[None, :] < lengths[:, None])
    mask = mask.to(hidden.dtype)[..., None]
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
