"""Squeezing factor (paper §3.3): how much shorter than H·W an encoder makes each image.

squeeze = mean over held-out images of H·W / len(tokens). Reported with tokens per image and the
fidelity of the encoder's quantisation against the original (PSNR and SSIM), since squeeze and
fidelity are two ends of one trade-off: `sweep` measures every encoder at every combination of
the parameter values asked for (`toksuite.params.param_grid`), and `pareto_front` says which
settings no other beats on both.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

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
    "ssim": "mean over held-out images of SSIM(x, quantize(x)) (scikit-image "
    "structural_similarity, data range 255, 7×7 uniform windows, channels averaged); 1 when "
    "lossless",
    "psnr_per_image_db": "each held-out image's own PSNR (null where reproduced exactly)",
    "ssim_per_image": "each held-out image's SSIM (null for images under 3 pixels a side)",
    "vocab": "the vocabulary the fitted encoder has (BPE may stop below the size asked for)",
    "vocab_requested": "the vocab_size asked for, where the encoder takes one",
    "params": "the encoder parameters set for this row (-p, the sweep, vocab_size)",
    "pareto": "no other row is at least as high on squeeze and on PSNR and higher on one "
    "(lossless counts as the highest PSNR): the squeeze–fidelity frontier",
    "fit_seconds": "wall-clock seconds to fit the encoder on the train split",
    "measured_on": "test: the held-out split; train: the data had no held-out images, so the "
    "images the encoder was fitted on (optimistic for encoders that learn)",
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
    ssim: float | None = None
    params: dict = field(default_factory=dict)
    vocab_requested: int | None = None
    psnr_per_image_db: list = field(default_factory=list, repr=False)
    ssim_per_image: list = field(default_factory=list, repr=False)
    measured_on: str = "test"  # "train" where the data has no held-out images

    @property
    def vocab_short(self) -> bool:
        """Whether the fitted vocabulary stopped below the size asked for (BPE ran out of pairs)."""
        return self.vocab_requested is not None and self.vocab < self.vocab_requested

    def to_dict(self, per_image: bool = True) -> dict:
        row = asdict(self)
        if not per_image:
            del row["psnr_per_image_db"], row["ssim_per_image"]
        return row


def takes_vocab(name: str) -> bool:
    """Whether an encoder's vocabulary is a free parameter (BPE), so a vocab sweep applies."""
    return any(s.name == "vocab_size" for s in get_encoder_class(name).param_specs())


def measure_encoder(
    encoder: Encoder,
    dataset: Dataset,
    *,
    seed: int = 0,
    data_fingerprint: str | None = None,
    params: dict | None = None,
) -> SqueezeRow:
    """Fit ``encoder`` on the train split of ``dataset``; measure on the test split (on the train
    split where there is none: the row's ``measured_on`` says which)."""
    from toksuite.cache import encode_dataset
    from toksuite.likelihood import psnr_db, psnr_per_image_db, quantized, ssim_per_image

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
    decoded = quantized(encoder, test)
    ssims = ssim_per_image(test, decoded)
    known = [v for v in ssims if v is not None]
    return SqueezeRow(
        encoder=encoder.name,
        vocab=encoder.vocab_size,
        squeeze=float(np.mean(h * w / lengths)),
        tokens_mean=float(lengths.mean()),
        tokens_min=int(lengths.min()),
        tokens_max=int(lengths.max()),
        psnr_db=psnr_db(test, decoded),
        images=len(test),
        fit_seconds=round(fit_seconds, 3),
        ssim=float(np.mean(known)) if known else None,
        params=dict(encoder.get_params()) if params is None else dict(params),
        vocab_requested=getattr(encoder, "target_vocab_size", None),
        psnr_per_image_db=[
            None if v is None else round(v, 3) for v in psnr_per_image_db(test, decoded)
        ],
        ssim_per_image=[None if v is None else round(v, 4) for v in ssims],
        measured_on="test" if len(dataset.x_test) else "train",
    )


def pareto_front(points: Sequence[tuple[float, float | None]]) -> list[bool]:
    """For (squeeze, PSNR) points, whether each is on the front: no other point is at least as
    good on both and better on one. A PSNR of None (lossless) beats every finite one."""

    def key(p):
        return (p[0], np.inf if p[1] is None else p[1])

    scored = [key(p) for p in points]
    return [
        not any(o[0] >= s[0] and o[1] >= s[1] and (o[0] > s[0] or o[1] > s[1]) for o in scored)
        for s in scored
    ]


def sweep(
    encoder_names: Sequence[str],
    dataset: Dataset,
    vocabs: Sequence[int],
    *,
    params: Mapping[str, dict | list[dict]] | None = None,
    seed: int = 0,
) -> list[SqueezeRow]:
    """Every encoder at every setting (`toksuite.params.param_grid`) and vocab size (encoders
    with a fixed vocabulary are measured once per setting)."""
    rows = []
    if len(dataset.x_test) == 0 and len(dataset.x_train):
        # Not refused: a folder of one image has no split, and its squeeze is still worth seeing.
        status(
            f"[yellow]warning:[/] {dataset.spec} has no held-out images: measuring on the "
            f"{len(dataset.x_train)} training image(s) the encoders are fitted on (optimistic for "
            "encoders that learn, such as BPE and k-means)"
        )
    for name in encoder_names:
        settings = (params or {}).get(name, {})
        for base in [settings] if isinstance(settings, dict) else settings or [{}]:
            sizes = list(vocabs) if takes_vocab(name) and "vocab_size" not in base else [None]
            for vocab in sizes:
                kwargs = dict(base) | ({"vocab_size": vocab} if vocab is not None else {})
                try:
                    encoder = create_encoder(name, **kwargs)
                except EncoderParamError as exc:
                    if vocab is None:
                        raise
                    # e.g. a vocabulary smaller than bpe-rgb's 1,000-symbol alphabet
                    status(f"[yellow]skipped[/] {name} vocab {vocab:,}: {exc}")
                    continue
                row = measure_encoder(encoder, dataset, seed=seed, params=kwargs)
                shown = ", ".join(f"{k}={v}" for k, v in kwargs.items() if k != "vocab_size")
                asked = f" (asked {row.vocab_requested:,})" if row.vocab_short else ""
                status(
                    f"[green]✓[/] {row.encoder}{f' ({shown})' if shown else ''} vocab "
                    f"{row.vocab:,}{asked}: squeeze {row.squeeze:.2f}×, {row.tokens_mean:,.0f} "
                    f"tokens/image, fit {row.fit_seconds:.1f} s"
                )
                rows.append(row)
    short = [r for r in rows if r.vocab_short]
    if short:  # once for the sweep, not per row: the table shows each row's two sizes
        status(
            f"[yellow]warning:[/] {len(short)} row(s) stopped below the vocabulary asked for "
            "(the training images have no more pairs to merge): "
            + ", ".join(f"{r.encoder} {r.vocab_requested:,} → {r.vocab:,}" for r in short)
        )
    return rows
