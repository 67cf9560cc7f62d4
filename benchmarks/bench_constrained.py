"""What constrained sampling costs on CPU: the grammar's logits mask against no mask.

    python benchmarks/bench_constrained.py [--quick]

The same randomly initialised GPT-2 samples 16 sequences with `toksuite.sample.generate`, once
with the encoder's grammar as a device mask (`toksuite.constrain`, the default of `sample`) and
once without (``--unconstrained``), one torch thread, A and B alternating. Rows: ``pixels-grey``
on 8×8 digits (``tiny``; 64 tokens, the mask is "never BOS"), ``bpe-grey`` on digits (``tiny``,
vocab 1,000) and, when ``../shared/data`` is there, ``bpe-rgb`` on CIFAR-10 at 32×32 (``small``,
vocab 10,000, byte fallback on: an 18-state grammar). An unconstrained BPE sample that leaves
the grammar runs to its budget while a constrained one stops at its last pixel, so the ratio is
taken per generated step (``seconds_per_step``, at most 96 steps a batch, the grammar's budget
still the whole context; median of 5 repeats); the target is at most 1.3. Takes about 1 min on
2 CPU cores; ``--quick`` (the digits rows, one repeat) about 15 s.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import DEFAULT_DATA, emit, machine

from toksuite.constrain import GrammarMask
from toksuite.model import build_model
from toksuite.registry import create_encoder
from toksuite.sample import generate, logits_processors

PLAIN = logits_processors(1.0, None, None)
BATCH = 16
STEPS = 96  # per batch: enough for a stable per-step time


def cases(quick: bool):
    from toksuite.data import load_dataset
    from toksuite.data.base import LoadOptions

    digits = load_dataset("digits").x_train
    yield "pixels-grey", {}, digits, "tiny"
    yield "bpe-grey", {"vocab_size": 1000}, digits, "tiny"
    cifar = DEFAULT_DATA / "cifar10-20k.npz"
    if not quick and cifar.is_file():
        images = load_dataset(f"npz:{cifar}", LoadOptions(limit=1000)).x_train
        yield "bpe-rgb", {"vocab_size": 10000}, images, "small"


def timed(model, encoder, shape, room: int, constrained: bool, seed: int) -> tuple[float, int]:
    """Seconds and generated steps (the longest row) of one batch."""
    grammar = encoder.grammar(*shape)
    mask = GrammarMask(
        grammar, [grammar.start()] * BATCH, [room] * BATCH, width=encoder.vocab_size + 1,
        device=torch.device("cpu"),
    )  # fmt: skip
    started = time.perf_counter()
    new = generate(
        model,
        [np.zeros(0, np.int64)] * BATCH,
        bos_id=encoder.vocab_size,
        max_new_tokens=[min(room, STEPS)] * BATCH,
        processors=PLAIN,
        generator=torch.Generator().manual_seed(seed),
        grammar=mask,
        constrained=constrained,
    )
    return time.perf_counter() - started, max(len(x) for x in new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the digits rows, one repeat")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = machine()
    repeats = 1 if args.quick else 5
    rows = []
    for name, params, images, preset in cases(args.quick):
        encoder = create_encoder(name, **params).fit(images)
        shape = images.shape[1:3]
        room = max(len(x) for x in encoder.encode_batch(images))  # the context a run would get
        model = build_model(preset, encoder.vocab_size + 1, room + 1, seed=0).eval()
        per_step = {True: [], False: []}
        steps = {True: [], False: []}
        timed(model, encoder, shape, room, True, 0)  # warm-up
        for r in range(repeats):
            for constrained in (True, False):
                seconds, n = timed(model, encoder, shape, room, constrained, r)
                per_step[constrained].append(seconds / n)
                steps[constrained].append(n)
        a, b = np.median(per_step[True]), np.median(per_step[False])
        rows.append(
            {
                "encoder": name,
                "vocab": encoder.vocab_size,
                "grammar_states": len(encoder.grammar(*shape).next_state),
                "preset": preset,
                "batch": BATCH,
                "budget_tokens": room,
                "steps_constrained": int(np.median(steps[True])),
                "steps_unconstrained": int(np.median(steps[False])),
                "seconds_per_step_constrained": round(float(a), 5),
                "seconds_per_step_unconstrained": round(float(b), 5),
                "constrained_vs_unconstrained": round(float(a / b), 3),
            }
        )
    emit({"rows": rows}, start)


if __name__ == "__main__":
    main()
