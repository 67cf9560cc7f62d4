"""Real faces for the benchmarks: CelebA aligned images framed as in the paper (112×112).

The 178×218 aligned image is cropped to the 140×140 box at (19, 39) and resized to 112×112
(bicubic). Grey images use PIL's luma ("L"). Images are loaded fresh on every run (nothing cached).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "celeba-6k"
CROP_BOX = (19, 39, 159, 179)


def load_faces(
    root: Path, split: str, limit: int, *, size: int = 112, grey: bool = False, seed: int = 0
) -> np.ndarray:
    """Up to ``limit`` faces from ``root/split/<identity>/*.jpg``, spread over identities."""
    paths = sorted((root / split).glob("*/*.jpg"))
    if not paths:
        raise SystemExit(f"no images under {root / split}")
    pick = np.sort(np.random.default_rng(seed).permutation(len(paths))[:limit])
    images = []
    for i in pick:
        with Image.open(paths[i]) as im:
            face = im.convert("RGB").crop(CROP_BOX).resize((size, size), Image.BICUBIC)
            images.append(np.asarray(face.convert("L"))[..., None] if grey else np.asarray(face))
    return np.stack(images)
