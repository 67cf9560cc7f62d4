"""Reading single image files fast and with clear errors, and the per-image geometry step.

Every source funnels its images through `transform_image`: optional crop box, then resize so the
shorter side fits and centre-crop (done as one `Image.resize(box=...)`, so there is one resampling
pass), after converting the colour mode. Files are read by `read_image`, which asks the JPEG
decoder to downscale in the DCT domain (`Image.draft`) when the target is at least 4× smaller,
keeping 2× the target so the bicubic resize that follows still anti-aliases: decoding then costs
a fraction of the time for the same pixels within ≈45 dB (benchmarks/bench_load.py measures it).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from toksuite.errors import DataError
from toksuite.io import atomic_path
from toksuite.limits import check_size

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
RESAMPLE = Image.Resampling.BICUBIC


@dataclass(frozen=True)
class Geometry:
    """What to do to each image: crop box (left, top, width, height), target (H, W), channels."""

    crop: tuple[int, int, int, int] | None = None
    resolution: tuple[int, int] | None = None
    channels: int | None = None

    @property
    def changes_size(self) -> bool:
        return self.crop is not None or self.resolution is not None


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def read_image(
    path: str | Path, channels: int | None = None, geometry: Geometry | None = None
) -> np.ndarray:
    """One image file → uint8 H×W×C (C = ``channels``, or 1/3 as stored), geometry applied.

    Raises a one-line DataError naming the file for a missing, empty, non-image, corrupt,
    truncated or absurdly large file. Decompression-bomb warnings should be silenced by the caller
    (`toksuite.data.folder` does); the size check here refuses such images before decoding.
    """
    path = Path(path)
    geometry = geometry or Geometry(channels=channels)
    if channels is not None:
        geometry = Geometry(geometry.crop, geometry.resolution, channels)
    try:
        size = path.stat().st_size
    except OSError:
        raise DataError(f"{path}: no such file") from None
    if size == 0:
        raise DataError(f"{path}: empty file (0 bytes)")
    return _decode(path, str(path), geometry)


def decode_image(data: bytes, name: str, geometry: Geometry | None = None) -> np.ndarray:
    """Encoded image bytes (PNG, JPEG …) → uint8 H×W×C, with `read_image`'s checks and errors.

    For images stored inside a container (a parquet or arrow column): ``name`` says which.
    """
    if not data:
        raise DataError(f"{name}: empty image (0 bytes)")
    return _decode(io.BytesIO(data), name, geometry or Geometry())


def _decode(source: Path | io.BytesIO, name: str, geometry: Geometry) -> np.ndarray:
    try:
        with Image.open(source) as im:
            check_size(im.height, im.width, f"{name}: too large to be a sane image", DataError)
            _draft(im, geometry)
            im.load()
            return transform_image(im, geometry, name)
    except DataError:
        raise
    except Image.DecompressionBombError:
        raise DataError(f"{name}: too large to be a sane image (decompression bomb?)") from None
    except UnidentifiedImageError:
        raise DataError(f"{name}: not an image file PIL can read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DataError(f"{name}: corrupt or truncated image ({_one_line(exc)})") from None


def _draft(im: Image.Image, geometry: Geometry) -> None:
    """Let the JPEG decoder downscale by 2, 4 or 8 in the DCT domain when the target allows it.

    The crop box is rescaled afterwards by `transform_image` (it reads ``im.info['draft_scale']``).
    Grey targets are decoded straight to the luma plane (JPEG's Y uses the same 299/587/114 weights
    as PIL's RGB → L), skipping the chroma planes altogether.
    """
    if im.format != "JPEG":
        return
    mode = "L" if geometry.channels == 1 and im.mode in ("RGB", "YCbCr") else None
    size = None
    if geometry.resolution is not None:
        left, top, width, height = geometry.crop or (0, 0, im.width, im.height)
        # Keep at least 2× the target resolution after the draft, so the bicubic resize still
        # does the anti-aliasing (the idea of PIL's reducing_gap=2): drafting all the way down
        # differs visibly from a full decode (≈28 dB at 32×32), this way it does not (≈40+ dB).
        scale = 2 * max(geometry.resolution[0] / height, geometry.resolution[1] / width)
        if scale <= 0.5:
            size = (math.ceil(im.width * scale), math.ceil(im.height * scale))
    if mode is None and size is None:
        return
    original = im.size
    if im.draft(mode, size) is not None and im.size != original:
        im.info["draft_scale"] = original[0] / im.width, original[1] / im.height


def transform_image(im: Image.Image, geometry: Geometry, name: str) -> np.ndarray:
    """Convert colour mode, crop and resize one PIL image; returns uint8 H×W×C.

    The crop box is a hard crop (nothing outside it leaks in through the resampling filter);
    resize + centre-crop is one ``resize(box=...)``, the same as resizing then cropping.
    """
    im = _to_plain_mode(im, geometry.channels, name)
    # After a JPEG draft, one decoded pixel covers (sx, sy) original pixels.
    sx, sy = im.info.get("draft_scale", (1.0, 1.0))
    width, height = round(im.width * sx), round(im.height * sy)
    if geometry.crop is not None:
        left, top, width, height = geometry.crop
        if left + width > round(im.width * sx) or top + height > round(im.height * sy):
            raise DataError(
                f"{name}: crop box {left},{top},{width},{height} does not fit "
                f"a {round(im.width * sx)}×{round(im.height * sy)} image"
            )
        # In drafted pixels the box may fall between pixels: cut the enclosing whole pixels and
        # keep the fractional rest as an offset for the resize box (rounding would shift it).
        cut = (
            math.floor(left / sx),
            math.floor(top / sy),
            math.ceil((left + width) / sx),
            math.ceil((top + height) / sy),
        )
        im = im.crop(cut)
        dx, dy = left / sx - cut[0], top / sy - cut[1]
        if geometry.resolution is None and (dx or dy or im.size != (width, height)):
            im = im.resize(
                (width, height), RESAMPLE, box=(dx, dy, dx + width / sx, dy + height / sy)
            )
    else:
        dx = dy = 0.0
    if geometry.resolution is not None:
        out_h, out_w = geometry.resolution
        scale = max(out_h / height, out_w / width)  # shorter side fits, then centre-crop
        cw, ch = out_w / scale, out_h / scale
        left, top = (width - cw) / 2, (height - ch) / 2
        box = (dx + left / sx, dy + top / sy, dx + (left + cw) / sx, dy + (top + ch) / sy)
        im = im.resize((out_w, out_h), RESAMPLE, box=box)
    arr = np.asarray(im, dtype=np.uint8)
    return arr.reshape(im.height, im.width, 1 if im.mode == "L" else 3)


def _to_plain_mode(im: Image.Image, channels: int | None, name: str) -> Image.Image:
    """Any PIL mode → "L" or "RGB": alpha on white, CMYK → RGB, 16-bit and float scaled."""
    draft_scale = im.info.get("draft_scale")
    want = channels or (1 if im.mode in GREY_MODES else 3)
    try:
        if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
            im.mode == "P" and "transparency" in im.info
        ):
            # Composite on white: transparent pixels have no colour of their own.
            background = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(background, im.convert("RGBA"))
        elif im.mode.startswith("I") or im.mode == "F":
            arr = np.asarray(im, dtype=np.float64)
            if im.mode == "F":
                top = max(float(arr.max()), 1.0)  # floats are usually 0..1
            else:
                top = max(float(arr.max()), 65535.0) if arr.size else 65535.0
            arr = np.clip(arr / top * 255 + 0.5, 0, 255).astype(np.uint8)
            im = Image.fromarray(arr, "L")
        target = "L" if want == 1 else "RGB"
        if im.mode != target:
            im = im.convert(target)
    except (ValueError, OSError) as exc:
        raise DataError(f"{name}: cannot convert image mode {im.mode} ({_one_line(exc)})") from None
    if draft_scale is not None:
        im.info["draft_scale"] = draft_scale
    return im


def array_to_pil(image: np.ndarray) -> Image.Image:
    """uint8 H×W×C (C = 1 or 3) → PIL image in mode L or RGB."""
    return Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)


def write_png(path: str | Path, image: np.ndarray) -> None:
    """Write a uint8 H×W×C array as PNG, atomically."""
    image = np.asarray(image, dtype=np.uint8)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
