"""The FLOPs sweep: FLOPs per image for several encoders and resolutions on one model (the paper's
Figure 2), as `toksuite.squeeze.sweep` is the squeezing factor's.

Sequence lengths are exact where the encoder fixes them (``sequence_length(h, w)``); otherwise
(BPE) they are measured on the held-out split of the data after fitting on the train split, or
taken as ``H·W / squeeze`` from a given squeezing factor. FLOPs come from `fit_forward_cost`
(fvcore, attention included) and every row carries the closed form's number beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from toksuite.data.base import LoadOptions
from toksuite.errors import ConfigError, NotFittedError
from toksuite.flops import CONVENTION, closed_form_macs, fit_forward_cost, image_flops
from toksuite.limits import check_size
from toksuite.model import ModelShape, resolve_shape
from toksuite.progress import status
from toksuite.registry import canonical_name, create_encoder, get_encoder_class

RAW_PIXELS = "pixels-rgb"
# The default context to flag against: 4,096 tokens, one token per pixel of a 64×64 image. Raw RGB
# sub-pixels (12,288 at 64×64) overflow it, which is the paper's point; --context changes it.
DEFAULT_CONTEXT = 4096

DEFINITIONS = {
    "tokens": "tokens per image: exact for fixed-length encoders, else the mean over held-out "
    "images (or H*W / squeeze)",
    "tokens_max": "longest sequence; compared with the context",
    "fwd_macs": "forward multiply-adds per image (fvcore, attention included; mean over images)",
    "fwd_flops": "2 x fwd_macs",
    "train_flops": "3 x fwd_flops (forward + backward)",
    "attention_share": "share of fwd_macs in the T^2 attention products (Q.K^T and attn.V)",
    "vs_pixels_rgb": "fwd_flops / fwd_flops of pixels-rgb at the same resolution "
    "(0.1 = ten times fewer)",
    "fits_context": "tokens_max <= context; longer sequences are counted in full, not cut",
    "closed_form_rel_diff": "(fvcore - closed form) / closed form, forward MACs",
}


@dataclass(frozen=True)
class SequenceLengths:
    """Tokens per image for one encoder at one resolution, and where the number comes from."""

    lengths: tuple[int, ...] | None  # per held-out image; None when exact or from a squeeze
    mean: float
    max: float
    source: str
    vocab_size: int

    def mean_square(self) -> float:
        if self.lengths is None:
            return self.mean**2
        return float(np.mean(np.square(np.asarray(self.lengths, dtype=np.float64))))


def _vocab_size(encoder) -> int:
    try:
        return int(encoder.vocab_size)
    except NotFittedError:
        vocab = encoder.get_params().get("vocab_size")
        if vocab is None:
            raise ConfigError(
                f"{encoder.name}: its vocabulary is only known after fitting: give --data SPEC"
            ) from None
        return int(vocab)


def _encode_lengths(encoder, images: np.ndarray) -> list[int]:
    from toksuite.cache import encode_dataset  # a second run reads the tokens from the cache

    return [int(n) for n in encode_dataset(encoder, images, progress=True).lengths]


class LengthSource:
    """Sequence lengths per (encoder, resolution); loads each resolution's data once."""

    def __init__(
        self,
        *,
        data: str | None = None,
        squeeze: float | None = None,
        options: LoadOptions | None = None,
        params: dict[str, dict[str, Any]] | None = None,
    ):
        if squeeze is not None and squeeze <= 0:
            raise ConfigError(f"squeeze must be positive, got {squeeze}")
        self.data = data
        self.squeeze = squeeze
        self.options = options or LoadOptions()
        self.params = params or {}
        self._datasets: dict[tuple[tuple[int, int], int], Any] = {}

    def _dataset(self, size: tuple[int, int], channels: int):
        from dataclasses import replace

        from toksuite.data import load_dataset

        assert self.data is not None  # only asked for when --data was given
        key = (size, channels)
        if key not in self._datasets:
            options = replace(self.options, resolution=size, channels=channels)
            self._datasets[key] = load_dataset(self.data, options)
        return self._datasets[key]

    def skip_report(self) -> dict:
        """Bad files left out of the data loaded so far (under on_error="skip")."""
        from toksuite.data.base import skip_report

        return skip_report(self._datasets.values())

    def lengths(self, name: str, size: tuple[int, int]) -> SequenceLengths:
        cls = get_encoder_class(name)
        encoder = create_encoder(cls.name, **self.params.get(cls.name, {}))
        h, w = size
        exact = encoder.sequence_length(h, w)
        if exact is not None:
            return SequenceLengths(None, exact, exact, "exact", _vocab_size(encoder))
        if self.data is not None:
            dataset = self._dataset(size, encoder.channels)
            test = dataset.x_test if len(dataset.x_test) else dataset.x_train
            encoder.fit(dataset.x_train, seed=self.options.seed)
            found = _encode_lengths(encoder, test)
            status(
                f"{encoder.name} at {h}×{w}: {np.mean(found):,.1f} tokens/image on "
                f"{len(found)} held-out images"
            )
            return SequenceLengths(
                tuple(found),
                float(np.mean(found)),
                max(found),
                f"mean of {len(found)} held-out",
                _vocab_size(encoder),
            )
        if self.squeeze is not None:
            tokens = h * w / self.squeeze
            return SequenceLengths(
                None, tokens, tokens, f"H·W / {self.squeeze:g}", _vocab_size(encoder)
            )
        raise ConfigError(
            f"{encoder.name}: its sequence length depends on the data: give --data SPEC "
            "(measured on held-out images) or --squeeze X (tokens = H·W / X)"
        )


def _forward(shape: ModelShape, seq: SequenceLengths, attn: str) -> dict[str, Any]:
    cost = fit_forward_cost(shape, seq.vocab_size, attn_implementation=attn)
    row = image_flops(cost, seq.mean if seq.lengths is None else seq.lengths)
    # The closed form is quadratic in T as well: its mean over images needs E[T] and E[T²].
    per_token = closed_form_macs(shape, 1, seq.vocab_size)
    linear = per_token.linear + per_token.head
    closed = linear * seq.mean + per_token.attention * seq.mean_square()
    return {
        "row": row,
        "closed": closed,
        "uncounted": cost.uncounted_ops,
        "missed": cost.missed_matmul_ops,
    }


def flops_table(
    encoders: Sequence[str],
    resolutions: Sequence[tuple[int, int]],
    *,
    model: str | ModelShape = "paper",
    lengths: LengthSource | None = None,
    attn_implementation: str = "sdpa",
    context: int = DEFAULT_CONTEXT,
) -> dict[str, Any]:
    """Rows of FLOPs per image for every encoder at every resolution, with the model and notes."""
    for size in resolutions:  # every size first: a bad one must not fail after minutes of work
        check_size(*size, "--resolution")
    shape = resolve_shape(model)
    lengths = lengths or LengthSource()
    names = [canonical_name(n) for n in encoders]
    rows: list[dict[str, Any]] = []
    uncounted: dict[str, int] = {}
    missed: set[str] = set()
    for size in resolutions:
        pixels = _forward(shape, lengths.lengths(RAW_PIXELS, size), attn_implementation)
        for name in names:
            seq = lengths.lengths(name, size)
            fwd = _forward(shape, seq, attn_implementation)
            row = fwd["row"]
            uncounted.update(fwd["uncounted"])
            missed.update(fwd["missed"])
            rows.append(
                {
                    "encoder": name,
                    "resolution": f"{size[0]}×{size[1]}",
                    "tokens": seq.mean
                    if seq.lengths is not None or seq.mean % 1
                    else int(seq.mean),
                    "tokens_max": seq.max,
                    "tokens_from": seq.source,
                    "vocab_size": seq.vocab_size,
                    **row,
                    "vs_pixels_rgb": row["fwd_macs"] / pixels["row"]["fwd_macs"],
                    "fits_context": bool(seq.max <= context),
                    "closed_form_rel_diff": (row["fwd_macs"] - fwd["closed"]) / fwd["closed"],
                }
            )
    return {
        "model": {
            "preset": model if isinstance(model, str) else None,
            **shape.to_dict(),
        },
        "attn_implementation": attn_implementation,
        "context": context,
        "convention": CONVENTION,
        "definitions": DEFINITIONS,
        "rows": rows,
        "uncounted_ops": uncounted,
        "missed_matmul_ops": sorted(missed),
        "max_closed_form_rel_diff": max((abs(r["closed_form_rel_diff"]) for r in rows), default=0),
        "skipped_files": lengths.skip_report(),
    }
