"""Image grids as PNG: samples in a near-square grid, completions as prompt | completion | truth.

Cells are upscaled by an integer factor with nearest-neighbour (8×8 digits are unreadable at 1:1,
and smoothing would invent pixels the model never produced), separated by thin white lines.
Grey images give a grey ("L") PNG, RGB images an RGB one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from toksuite.io import atomic_path

SEPARATOR = 255  # white lines: digits are white on black, photos rarely white at the edges
BLANK = 128  # mid grey: the part of a prompt the model has not seen
MIN_CELL = 32  # upscale small images until their longer side has at least this many pixels
GAP = 2  # separator width in output pixels
BLOCK_GAP = 3 * GAP  # between blocks of completion triples, so the triples stay visually grouped


def upscale_factor(height: int, width: int, min_cell: int = MIN_CELL) -> int:
    """The smallest integer factor that makes the longer side at least ``min_cell`` pixels."""
    return max(1, math.ceil(min_cell / max(height, width)))


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling of an H×W×C image by an integer factor."""
    if factor == 1:
        return image
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def compose(
    cells: Sequence[Sequence[np.ndarray | None]],
    *,
    scale: int,
    gap: int = GAP,
    column_gaps: Sequence[int] | None = None,
) -> np.ndarray:
    """A canvas of equally sized H×W×C cells in rows; ``None`` leaves a cell as separator colour.

    ``column_gaps[j]`` is the separator width to the left of column j (the outer border is
    ``gap``); by default every separator is ``gap`` wide.
    """
    first = next(c for row in cells for c in row if c is not None)
    h, w, c = first.shape
    n_rows, n_cols = len(cells), max(len(row) for row in cells)
    lefts = list(column_gaps) if column_gaps is not None else [gap] * n_cols
    ch, cw = h * scale, w * scale
    x0 = np.cumsum(lefts) + cw * np.arange(n_cols)
    width = int(x0[-1] + cw + gap)
    height = n_rows * ch + (n_rows + 1) * gap
    canvas = np.full((height, width, c), SEPARATOR, np.uint8)
    for i, row in enumerate(cells):
        y = gap + i * (ch + gap)
        for j, cell in enumerate(row):
            if cell is not None:
                canvas[y : y + ch, int(x0[j]) : int(x0[j]) + cw] = upscale(cell, scale)
    return canvas


def sample_grid(images: Sequence[np.ndarray], *, scale: int | None = None) -> np.ndarray:
    """Unconditional samples in a near-square grid, row by row."""
    n = len(images)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    h, w = images[0].shape[:2]
    cells = [
        [images[r * cols + k] if r * cols + k < n else None for k in range(cols)]
        for r in range(rows)
    ]
    return compose(cells, scale=scale or upscale_factor(h, w))


def prompt_image(image: np.ndarray, prompt_rows: int) -> np.ndarray:
    """The prompt as the model saw it: the top ``prompt_rows`` rows, the rest blank grey."""
    shown = np.full_like(image, BLANK)
    shown[:prompt_rows] = image[:prompt_rows]
    return shown


def completion_grid(
    prompts: Sequence[np.ndarray],
    completions: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    *,
    rows_per_block: int = 8,
    scale: int | None = None,
) -> np.ndarray:
    """The paper's Figure 4 layout: one row per held-out image, prompt | completion | ground truth.

    More than ``rows_per_block`` images wrap into further blocks of three columns side by side,
    with a wider gap between blocks.
    """
    n = len(prompts)
    blocks = math.ceil(n / rows_per_block)
    rows = min(n, rows_per_block)
    cells: list[list[np.ndarray | None]] = [[None] * (3 * blocks) for _ in range(rows)]
    for i, triple in enumerate(zip(prompts, completions, truths, strict=True)):
        block, row = divmod(i, rows_per_block)
        cells[row][3 * block : 3 * block + 3] = triple
    column_gaps = [BLOCK_GAP if j and j % 3 == 0 else GAP for j in range(3 * blocks)]
    h, w = prompts[0].shape[:2]
    return compose(cells, scale=scale or upscale_factor(h, w), column_gaps=column_gaps)


def save_png(canvas: np.ndarray, path: str | Path) -> Path:
    """Write an H×W×1 (grey) or H×W×3 (RGB) uint8 canvas as PNG, atomically."""
    from PIL import Image

    path = Path(path)
    image = Image.fromarray(canvas[:, :, 0] if canvas.shape[2] == 1 else canvas)
    with atomic_path(path, suffix=".png") as tmp:
        image.save(tmp, format="PNG")
    return path
