"""One likelihood for every encoder: the model's code length of the quantised image, with its
distortion, and the lossless codecs on the same images as anchors.

An encoder turns an image into ``quantize(image)`` and then into tokens; a model trained on those
tokens gives each held-out image a probability, and ``-log2`` of it is the number of bits an
arithmetic coder driven by the model would spend on that quantised image. That is a property of
the image, not of the tokenisation, so it ranks encoders with different vocabularies and sequence
lengths against each other. Encoders that quantise differently model different images, so the
rate (bits) is reported with the distortion (PSNR of the quantisation), as one point on a
rate–distortion plane. Encoders whose ``quantize()`` agree on the held-out images share a
fingerprint and compare directly on bits alone.

What the code length counts: the sum over the image's tokens of ``-log2 p(token | BOS, the tokens
before it)``. BOS is given, not coded (it is the same for every image). No end-of-image symbol is
coded: the decoder is told the image's shape (H, W, C) out of band, as a PNG header tells it, and
every built-in encoder's sequence is complete exactly when its tokens cover H·W pixels. A model
that gives probability to sequences that are not images pays for it in longer codes.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Sequence

import numpy as np

from toksuite.errors import ConfigError

UNITS = {
    "bits_per_image": "bits per held-out image: the model's code length of the quantised image",
    "bits_per_pixel": "bits per image / (H·W)",
    "bits_per_dim": "bits per image / (H·W·C), C = 1 for grey and 3 for RGB images (the "
    "literature's unit for lossless models)",
    "psnr_db": "PSNR (dB, peak 255) of quantize(x) against x, squared error pooled over all "
    "held-out pixels; null when the encoder is lossless",
}
DEFINITIONS = {
    **UNITS,
    "code_length": "sum over an image's tokens of -log2 p(token | BOS, previous tokens); BOS is "
    "given, not coded, and no end symbol is coded: the decoder knows the image's shape",
    "quantization": "fingerprint of quantize() on the held-out images: rows with the same "
    "fingerprint model the same images, so their bits compare directly",
    "anchors": "Pillow's lossless PNG (compress_level 9) and WebP (lossless, method 6, quality "
    "100) files of each quantised held-out image, one file per image, headers included: bits = "
    "8 × file bytes",
}
CODECS = ("png", "webp")


def code_length_units(bits: np.ndarray, image_shape: Sequence[int]) -> dict[str, float]:
    """Mean bits per image, per pixel and per dimension of per-image code lengths ``bits``."""
    h, w = image_shape[:2]
    c = image_shape[2] if len(image_shape) > 2 else 1
    mean = float(np.mean(bits)) if len(bits) else math.nan
    return {
        "bits_per_image": mean,
        "bits_per_pixel": mean / (h * w),
        "bits_per_dim": mean / (h * w * c),
    }


def quantized(encoder, images: np.ndarray) -> np.ndarray:
    """``encoder.quantize`` of every image, as one N×H×W×C uint8 array."""
    return np.stack([encoder.quantize(x) for x in images]) if len(images) else images.copy()


def psnr_from_mse(mse: float) -> float | None:
    """PSNR in dB (peak 255) of a mean squared error on the 0–255 scale; None when it is 0.

    toksuite's one PSNR: None rather than infinity, since JSON has no infinity and a table shows
    both as "–".
    """
    return None if mse == 0 else 10 * math.log10(255.0**2 / float(mse))


def psnr_db(originals: np.ndarray, quantised: np.ndarray) -> float | None:
    """PSNR (dB, peak 255) of the squared error pooled over all pixels; None when lossless.

    Any shapes that match: a batch of images, one image, or pixels.
    """
    diff = originals.astype(np.float64) - quantised.astype(np.float64)
    return psnr_from_mse(float(np.mean(diff * diff)) if diff.size else 0.0)


def psnr_per_image_db(originals: np.ndarray, quantised: np.ndarray) -> list[float | None]:
    """`psnr_db` of each image on its own (None where an image is reproduced exactly)."""
    return [psnr_db(a[None], b[None]) for a, b in zip(originals, quantised, strict=True)]


def ssim_per_image(originals: np.ndarray, quantised: np.ndarray) -> list[float | None]:
    """Each image's SSIM (scikit-image ``structural_similarity``, data range 255, uniform
    7×7 windows, channels averaged), or None for an image smaller than a 3×3 window.

    Windows shrink to the largest odd size that fits an image under 7 pixels a side.
    """
    from skimage.metrics import structural_similarity

    out: list[float | None] = []
    for a, b in zip(originals, quantised, strict=True):
        side = min(7, a.shape[0], a.shape[1])
        win = side if side % 2 else side - 1
        if win < 3:
            out.append(None)
            continue
        out.append(
            float(
                structural_similarity(
                    a, b, data_range=255, channel_axis=2 if a.ndim == 3 else None, win_size=win
                )
            )
        )
    return out


def fingerprint(quantised: np.ndarray) -> str:
    """A short hash of the quantised images (shape included): equal iff the same images."""
    digest = hashlib.sha256(repr(quantised.shape).encode())
    digest.update(np.ascontiguousarray(quantised).tobytes())
    return digest.hexdigest()[:16]


def codec_bytes(image: np.ndarray, codec: str) -> int:
    """Size in bytes of one H×W×C uint8 image written losslessly by Pillow as ``codec``."""
    from PIL import Image

    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    buffer = io.BytesIO()
    if codec == "png":
        pil.save(buffer, format="PNG", compress_level=9)
    elif codec == "webp":
        pil.save(buffer, format="WEBP", lossless=True, quality=100, method=6)
    else:
        raise ConfigError(f"codec {codec!r}: expected one of {', '.join(CODECS)}")
    return buffer.tell()


def codec_anchors(quantised: np.ndarray) -> dict[str, dict[str, float]]:
    """Bits per image / pixel / dim of PNG and WebP-lossless files of each quantised image."""
    shape = quantised.shape[1:]
    return {
        codec: code_length_units(np.array([8.0 * codec_bytes(x, codec) for x in quantised]), shape)
        for codec in CODECS
    }


def heldout_report(encoder, originals: np.ndarray, bits: np.ndarray) -> dict:
    """Everything the rate–distortion plane needs about one run's held-out images."""
    q = quantized(encoder, originals)
    return {
        **code_length_units(bits, originals.shape[1:]),
        "psnr_db": psnr_db(originals, q),
        "quantization": fingerprint(q),
        "anchors": codec_anchors(q),
    }
