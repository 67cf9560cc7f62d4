"""Sampling speed on CPU: toksuite's KV-cache loop against ``transformers``' ``generate``.

    python benchmarks/bench_sample.py [--quick]

Both sample the same number of tokens (no early stop, no top-k/top-p) from the same randomly
initialised GPT-2 with a KV cache, one torch thread: 16 sequences of 64 tokens (8×8 grey digits,
``pixels-grey``) on the ``tiny`` and ``small`` presets, and 16 of 256 tokens on ``small``.
Prints one JSON object: median seconds of 3 repeats per row, tokens/s and the ratio
``toksuite_vs_hf`` (toksuite seconds ÷ transformers seconds; below 1 is faster).
Takes about 1.5 min on 2 CPU cores; ``--quick`` (the tiny row only, one repeat) about 10 s.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _common import emit, machine, median_seconds

from toksuite.model import build_model
from toksuite.sample import generate, logits_processors

VOCAB = 256  # pixels-grey; BOS is id 256
PLAIN = logits_processors(1.0, None, None)  # temperature 1, no top-k/top-p: nothing to do


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the tiny row only, one repeat")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = machine()
    cases = [("tiny", 16, 64)] + ([] if args.quick else [("small", 16, 64), ("small", 16, 256)])
    repeats = 1 if args.quick else 3
    rows = []
    for preset, batch, length in cases:
        model = build_model(preset, VOCAB + 1, length + 1, seed=0).eval()

        def ours(model=model, batch=batch, length=length):
            generate(
                model,
                [np.zeros(0, np.int64)] * batch,
                bos_id=VOCAB,
                max_new_tokens=[length] * batch,
                processors=PLAIN,
                generator=torch.Generator().manual_seed(0),
            )

        def hf(model=model, batch=batch, length=length):
            torch.manual_seed(0)
            with torch.no_grad():
                model.generate(
                    torch.full((batch, 1), VOCAB),
                    attention_mask=torch.ones(batch, 1, dtype=torch.int64),
                    do_sample=True,
                    top_k=0,
                    max_new_tokens=length,
                    min_new_tokens=length,
                    pad_token_id=0,
                )

        ours()  # warm-up: first calls pay for lazy initialisation
        hf()
        t_ours, t_hf = median_seconds(ours, repeats), median_seconds(hf, repeats)
        rows.append(
            {
                "preset": preset,
                "batch": batch,
                "tokens_per_sequence": length,
                "toksuite_seconds": round(t_ours, 4),
                "transformers_seconds": round(t_hf, 4),
                "toksuite_tokens_per_s": round(batch * length / t_ours),
                "transformers_tokens_per_s": round(batch * length / t_hf),
                "toksuite_vs_hf": round(t_ours / t_hf, 3),
            }
        )
    emit({"rows": rows}, start)


if __name__ == "__main__":
    main()
