"""A pretraining run's options, its budget in steps, and the learning-rate schedule.

The optimiser, schedule and model shape are the same for every encoder; only the vocabulary and the
context length follow the encoder. That is what makes the comparison fair.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, cast

from toksuite.data.base import LoadOptions, check_on_error
from toksuite.errors import ConfigError
from toksuite.train.batching import DEFAULT_BATCHING, check_batching

DEFAULT_EPOCHS = 20.0  # tiny preset on `digits`: about a minute on 2 CPU cores
EVALS_PER_RUN = 8  # held-out evaluations during a run when --eval-every is not given
BUDGET_FIELDS = ("epochs", "tokens", "images", "train_flops", "time")


@dataclass
class TrainConfig:
    """Every option of ``toksuite pretrain``; saved in RUN_DIR/config.json with what it resolved."""

    encoder: str = "pixels-grey"  # a registered name (fitted on the train split) or a saved dir
    encoder_params: dict[str, Any] = field(default_factory=dict)
    data: str = "digits"
    resolution: list[int] | None = None
    crop: list[int] | None = None
    limit: int | None = None
    on_error: str = "stop"  # bad image files: "stop" with one line, or "skip" and count them
    model: str = "tiny"
    # Budget: exactly one of these (none → DEFAULT_EPOCHS epochs).
    epochs: float | None = None
    tokens: int | None = None
    images: int | None = None
    train_flops: float | None = None
    time: float | None = None  # wall seconds
    batch_size: int = 64  # images per optimiser step, over all processes
    batching: str = DEFAULT_BATCHING  # "bucket" (similar lengths per batch) or "random"
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int | None = None  # None → 5% of the steps, at most 500 (100 for --time)
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    context: int | None = None  # cap on 1 + tokens per image; longer sequences are cut and counted
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 100
    eval_batch_size: int = 64
    eval_every: int | None = None  # steps between held-out evaluations; None → about 8 a run
    eval_images: int = 1000  # held-out images those evaluations use (the final one uses all)
    compile: bool = False
    device: str = "auto"
    peak_flops: float | None = None

    def __post_init__(self) -> None:
        given = [name for name in BUDGET_FIELDS if getattr(self, name) is not None]
        if len(given) > 1:
            raise ConfigError(f"give one budget, not {' and '.join('--' + g for g in given)}")
        for name in given:
            if not getattr(self, name) > 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be positive")
        if self.batch_size < 1 or self.log_every < 1 or self.checkpoint_every < 0:
            raise ConfigError("--batch-size and --log-every must be ≥ 1, --checkpoint-every ≥ 0")
        if self.context is not None and self.context < 2:
            raise ConfigError(f"--context {self.context}: needs room for BOS and one token")
        check_batching(self.batching)
        check_on_error(self.on_error, ConfigError)
        if self.eval_every is not None and self.eval_every < 0:
            raise ConfigError(f"--eval-every {self.eval_every}: must be ≥ 0 (0: only at the end)")
        if self.eval_images < 1:
            raise ConfigError(f"--eval-images {self.eval_images}: must be ≥ 1")
        if self.peak_flops is not None and not self.peak_flops > 0:  # before any data is loaded
            raise ConfigError(f"--peak-flops {self.peak_flops:g}: must be positive")

    @property
    def budget(self) -> tuple[str, float]:
        for name in BUDGET_FIELDS:
            if getattr(self, name) is not None:
                return name, float(getattr(self, name))
        return "epochs", DEFAULT_EPOCHS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_options(self, channels: int) -> LoadOptions:
        """The run's data options (the probe, sampler and codec reuse them to see images the same
        way); the one place a run's options become `LoadOptions`."""
        return LoadOptions(
            resolution=cast("tuple[int, int]", tuple(self.resolution)) if self.resolution else None,
            crop=cast("tuple[int, int, int, int]", tuple(self.crop)) if self.crop else None,
            channels=channels,
            limit=self.limit,
            seed=self.seed,
            on_error=self.on_error,  # type: ignore[arg-type]
            progress=False,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        # Runs saved before `batching` existed trained on random batches: resume them as they were.
        data = {"batching": "random", **data}
        return cls(**{k: v for k, v in data.items() if k in names})


def total_steps(
    config: TrainConfig,
    *,
    n_images: int,
    batch_size: int,
    mean_tokens: float,
    flops_per_image: float,
) -> int | None:
    """The run's length in optimiser steps, or None for a wall-time budget."""
    kind, amount = config.budget
    if kind == "time":
        return None
    per_step = {
        "epochs": batch_size / n_images,  # epochs per step
        "images": batch_size,
        "tokens": batch_size * mean_tokens,
        "train_flops": batch_size * flops_per_image,
    }[kind]
    return max(1, math.ceil(amount / per_step - 1e-9))


def eval_interval(config: TrainConfig, steps: int | None) -> int:
    """Steps between held-out evaluations during training (0: only the final one)."""
    if config.eval_every is not None:
        return config.eval_every
    if steps is None:  # a wall-time budget: its length in steps is not known in advance
        return 10 * config.log_every
    return max(1, math.ceil(steps / EVALS_PER_RUN))


def warmup_steps(config: TrainConfig, steps: int | None) -> int:
    if config.warmup_steps is not None:
        return config.warmup_steps
    return 100 if steps is None else max(1, min(500, round(0.05 * steps)))


def learning_rate(
    config: TrainConfig, step: int, *, steps: int | None, warmup: int, elapsed: float
) -> float:
    """Linear warmup, then cosine decay to ``min_lr_ratio·lr`` over the budget.

    Step budgets decay over steps (deterministic, so resumed runs match); a wall-time budget decays
    over the elapsed fraction of the time.
    """
    top = config.lr
    if step < warmup:
        return top * (step + 1) / warmup
    if steps is None:
        progress = elapsed / config.time if config.time else 1.0
    else:
        progress = (step - warmup) / max(1, steps - warmup)
    progress = min(max(progress, 0.0), 1.0)
    low = top * config.min_lr_ratio
    return low + 0.5 * (top - low) * (1 + math.cos(math.pi * progress))
