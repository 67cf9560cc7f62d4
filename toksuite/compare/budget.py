"""Turn one budget for the comparison into a pretraining budget per encoder.

* ``epochs``: every encoder trains for the same number of passes over the train split (the paper).
* ``flops`` (compute-matched): every encoder spends the same training FLOPs; an encoder with shorter
  sequences gets more images through. The target is ``train_flops`` when given, else what the
  costliest encoder spends in ``epochs`` epochs — so no encoder trains for fewer epochs than that.
* ``time``: every encoder trains for the same wall-clock seconds.

FLOPs count real tokens only: each sequence at its own length (`sequence_train_flops`), never the
padding its batch adds, so a budget buys the same work on the data whatever the batching. Why the
FLOPs are planned here rather than passed to the loop as ``--train-flops``: a step's FLOPs depend
on which images it draws (a BPE image of 60 tokens costs far less than one of 900), so this module
replays the loop's batches — the same `epoch_batches`, the same per-sequence formula — and gives
each run the exact number of steps at which its counted FLOPs first reach the target (as an
``images`` budget of steps × batch). Each run then ends within one step's FLOPs of the target; the
tests check this against the runs' own summaries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from toksuite.compare.config import CompareConfig
from toksuite.errors import ConfigError
from toksuite.flops import sequence_train_flops
from toksuite.model import resolve_shape
from toksuite.train.batching import epoch_batches


@dataclass(frozen=True)
class RunShape:
    """What the training loop's FLOPs depend on, for one encoder."""

    lengths: np.ndarray  # per train image: 1 (BOS) + tokens, cut to the context
    context: int
    vocab_size: int  # the model's: encoder vocabulary + BOS
    batch_size: int
    batching: str  # `toksuite.train.batching`

    @property
    def steps_per_epoch(self) -> int:
        return max(1, len(self.lengths) // self.batch_size)


def step_flops(run: RunShape, model: str, seed: int, steps: int) -> np.ndarray:
    """Training FLOPs the loop counts at each of its first ``steps`` steps (same batches)."""
    shape = resolve_shape(model)
    out = np.zeros(steps)
    batches, batches_epoch = [], -1
    for step in range(steps):
        epoch, position = divmod(step, run.steps_per_epoch)
        if epoch != batches_epoch:  # as the loop: each epoch's batches depend on (seed, epoch)
            batches_epoch = epoch
            batches = epoch_batches(
                run.lengths, run.batch_size, seed=seed, epoch=epoch, batching=run.batching
            )
        out[step] = sequence_train_flops(shape, run.vocab_size, run.lengths[batches[position]])
    return out


def epoch_steps(run: RunShape, epochs: float) -> int:
    """The loop's step count for an epochs budget (`toksuite.train.config.total_steps`)."""
    per_step = run.batch_size / len(run.lengths)
    return max(1, math.ceil(epochs / per_step - 1e-9))


def steps_for_flops(run: RunShape, model: str, seed: int, target: float) -> int:
    """The first step count whose counted FLOPs reach ``target``."""
    per_epoch = step_flops(run, model, seed, run.steps_per_epoch).sum()
    guess = max(1, math.ceil(target / per_epoch * run.steps_per_epoch * 1.1) + run.steps_per_epoch)
    while True:
        cumulative = np.cumsum(step_flops(run, model, seed, guess))
        if cumulative[-1] >= target:
            return int(np.searchsorted(cumulative, target, side="left")) + 1
        guess *= 2


@dataclass(frozen=True)
class Plan:
    """One encoder's pretraining budget: the `TrainConfig` budget field, its value, and why."""

    field: str  # "epochs", "images" or "time"
    value: float
    planned_steps: int | None  # None for a wall-time budget
    planned_train_flops: float | None
    target_train_flops: float | None = None

    def to_dict(self) -> dict:
        return {
            "field": self.field,
            "value": self.value,
            "planned_steps": self.planned_steps,
            "planned_train_flops": self.planned_train_flops,
            "target_train_flops": self.target_train_flops,
        }


def plan_budgets(config: CompareConfig, runs: dict[str, RunShape]) -> tuple[dict[str, Plan], dict]:
    """A budget per encoder and a description of the shared budget (for the report)."""
    b, seed, model = config.budget, config.seed, config.model
    if b.mode == "time":
        assert b.time is not None  # the config requires it in time mode
        plans = {name: Plan("time", float(b.time), None, None) for name in runs}
        return plans, {
            "mode": "time",
            "seconds_per_encoder": b.time,
            "definition": "the same wall-clock seconds of training for every encoder",
        }
    epoch_plans, epoch_flops = {}, {}
    for name, run in runs.items():
        steps = epoch_steps(run, b.epochs)
        epoch_flops[name] = float(step_flops(run, model, seed, steps).sum())
        epoch_plans[name] = Plan("epochs", b.epochs, steps, epoch_flops[name])
    if b.mode == "epochs":
        return epoch_plans, {
            "mode": "epochs",
            "epochs": b.epochs,
            "definition": "the same number of passes over the train split for every encoder",
        }
    reference = None
    target = b.train_flops
    if target is None:
        reference = max(epoch_flops, key=lambda n: epoch_flops[n])
        target = epoch_flops[reference]
    plans = {}
    for name, run in runs.items():
        steps = steps_for_flops(run, model, seed, target)
        spent = float(step_flops(run, model, seed, steps).sum())
        plans[name] = Plan("images", steps * run.batch_size, steps, spent, target)
    if not plans:
        raise ConfigError("no encoder to plan a budget for")
    return plans, {
        "mode": "flops",
        "train_flops": target,
        "reference": reference,
        "reference_epochs": b.epochs if reference else None,
        "definition": (
            "the same training FLOPs for every encoder (compute-matched): each run stops at the "
            "first step where the FLOPs it counted reach the target, so it ends within one step's "
            "FLOPs of it; the target is "
            + (
                f"what {reference} spends in {b.epochs:g} epochs (the costliest encoder)"
                if reference
                else "the one given"
            )
        ),
    }
