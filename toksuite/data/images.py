"""Reading and writing single image files with clear errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from toksuite.errors import DataError
from toksuite.io import atomic_path

MAX_PIXELS = 64_000_000  # a sane upper bound; larger is almost surely a mistake or a bomb


def read_image(path: str | Path, channels: int | None = None) -> np.ndarray:
    """One image file → uint8 H×W×C (C = ``channels``, or 1/3 as stored)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise DataError(f"{path}: {im.width}×{im.height} is too large an image")
                im.load()
                image = _convert(im, channels, path)
    except DataError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{path}: not a readable image (or too large)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: corrupt or truncated image ({exc})") from None
    return image


def _convert(im: Image.Image, channels: int | None, path: Path) -> np.ndarray:
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # Composite on white: transparent pixels have no colour of their own.
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im.convert("RGBA"))
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode != "F" else max(float(arr.max()), 1.0)
        im = Image.fromarray(np.clip(arr / top * 255 + 0.5, 0, 255).astype(np.uint8), "L")
    want = channels or (1 if im.mode in ("L", "1") else 3)
    return np.asarray(im.convert("L" if want == 1 else "RGB"), dtype=np.uint8).reshape(
        im.height, im.width, want
    )


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write a uint8 H×W×C array as PNG, atomically."""
    image = np.asarray(image, dtype=np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(image).save(tmp, format="PNG")
