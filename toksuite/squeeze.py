"""Squeezing factor (paper §3.3): how much shorter than H·W an encoder makes each image.

squeeze = mean over held-out images of H·W / len(tokens). Reported with tokens per image and the
PSNR of the encoder's quantisation against the original, since squeeze and fidelity are two ends
of one trade-off.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from toksuite.data.base import Dataset
from toksuite.data.transform import to_channels
from toksuite.encoders.base import Encoder
from toksuite.errors import ConfigError, EncoderParamError
from toksuite.progress import status
from toksuite.registry import create_encoder, get_encoder_class

DEFINITIONS = {
    "squeeze": "mean over held-out images of H*W / tokens (paper §3.3); higher is shorter",
    "tokens_mean": "mean tokens per held-out image",
    "psnr_db": "PSNR (dB, peak 255) of quantize(x) against x, squared error pooled over all "
    "held-out pixels; null when lossless",
    "fit_seconds": "wall-clock seconds to fit the encoder on the train split",
}


@dataclass
class SqueezeRow:
    encoder: str
    vocab: int
    squeeze: float
    tokens_mean: float
    tokens_min: int
    tokens_max: int
    psnr_db: float | None
    images: int
    fit_seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def takes_vocab(name: str) -> bool:
    """Whether an encoder's vocabulary is a free parameter (BPE), so a vocab sweep applies."""
    return any(s.name == "vocab_size" for s in get_encoder_class(name).param_specs())


def pooled_psnr(originals: np.ndarray, encoder: Encoder) -> float | None:
    """PSNR (dB, peak 255) of the squared error pooled over all pixels; None when lossless."""
    from toksuite.likelihood import psnr_db, quantized

    return psnr_db(originals, quantized(encoder, originals))


def measure_encoder(
    encoder: Encoder, dataset: Dataset, *, seed: int = 0, data_fingerprint: str | None = None
) -> SqueezeRow:
    """Fit ``encoder`` on the train split of ``dataset``; measure on the test split."""
    from toksuite.cache import encode_dataset

    train = to_channels(dataset.x_train, encoder.channels)
    test = to_channels(dataset.x_test if len(dataset.x_test) else dataset.x_train, encoder.channels)
    if len(test) == 0:
        raise ConfigError(f"{dataset.spec}: no held-out images to measure on")
    start = time.perf_counter()
    encoder.fit(train, seed=seed)
    fit_seconds = time.perf_counter() - start
    sequences = encode_dataset(encoder, test, progress=True)
    lengths = np.asarray(sequences.lengths, dtype=np.float64)
    h, w = test.shape[1:3]
    return SqueezeRow(
        encoder=encoder.name,
        vocab=encoder.vocab_size,
        squeeze=float(np.mean(h * w / lengths)),
        tokens_mean=float(lengths.mean()),
        tokens_min=int(lengths.min()),
        tokens_max=int(lengths.max()),
        psnr_db=pooled_psnr(test, encoder),
        images=len(test),
        fit_seconds=round(fit_seconds, 3),
    )


def sweep(
    encoder_names: Sequence[str],
    dataset: Dataset,
    vocabs: Sequence[int],
    *,
    params: dict[str, dict] | None = None,
    seed: int = 0,
) -> list[SqueezeRow]:
    """Every encoder at every vocab size (encoders with a fixed vocabulary are measured once)."""
    rows = []
    for name in encoder_names:
        base = dict((params or {}).get(name, {}))
        sizes = list(vocabs) if takes_vocab(name) and "vocab_size" not in base else [None]
        for vocab in sizes:
            kwargs = base | ({"vocab_size": vocab} if vocab is not None else {})
            try:
                encoder = create_encoder(name, **kwargs)
            except EncoderParamError as exc:
                if vocab is None:
                    raise
                # e.g. a vocabulary smaller than bpe-rgb's 1,000-symbol alphabet
                status(f"[yellow]skipped[/] {name} vocab {vocab:,}: {exc}")
                continue
            row = measure_encoder(encoder, dataset, seed=seed)
            status(
                f"[green]✓[/] {row.encoder} vocab {row.vocab:,}: squeeze {row.squeeze:.2f}×, "
                f"{row.tokens_mean:,.0f} tokens/image, fit {row.fit_seconds:.1f} s"
            )
            rows.append(row)
    return rows
