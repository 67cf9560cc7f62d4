"""How long FLOP counting takes, and how far plain fvcore is off under SDPA attention.

    python benchmarks/bench_flops.py

Prints one JSON object:
- ``trace_seconds``: one fvcore trace on the meta device (no arithmetic) of each preset at 1,024
  tokens, and of the 4-layer, 256-wide model on real CPU tensors for comparison;
- ``fit_seconds``: `fit_forward_cost` (traces of depth 1 and 2 at two lengths, one full-depth check)
  for each preset with a 30k vocabulary;
- ``undercount``: plain fvcore against toksuite's count and the closed form, 4 layers × 256 wide,
  for T = 256 and 1,024 under both attention implementations;
- ``paper_64``: the paper's check, forward FLOPs per 64×64 image on its 36×1024 model, raw RGB
  sub-pixels against H·W / 4 tokens (a BPE squeezing 4×, vocabulary 30k).
Takes about 20–30 s on 2 CPU cores, most of it imports and the real-tensor trace at T=1,024.
"""

from __future__ import annotations

import json
import time

from toksuite.flops import closed_form_macs, count_forward, fit_forward_cost
from toksuite.model import PRESETS, build_model


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, round(time.perf_counter() - start, 3)


def main() -> None:
    count_forward("tiny", 256, 16)  # imports torch, transformers, fvcore: not part of any timing
    trace = {name: timed(lambda n=name: count_forward(n, 30000, 1024))[1] for name in PRESETS}
    model = build_model("256x4x4", 512, 1024, seed=0)
    trace["256x4x4 on CPU tensors"] = timed(lambda: count_forward("", 0, 1024, model=model))[1]
    fit = {name: timed(lambda n=name: fit_forward_cost(n, 30000))[1] for name in PRESETS}

    undercount = []
    for attn in ("eager", "sdpa"):
        for t in (256, 1024):
            closed = closed_form_macs("256x4x4", t, 512).macs
            plain = count_forward("256x4x4", 512, t, attn_implementation=attn, fix_attention=False)
            fixed = count_forward("256x4x4", 512, t, attn_implementation=attn)
            undercount.append(
                {
                    "attn": attn,
                    "T": t,
                    "closed_form_macs": closed,
                    "plain_fvcore_macs": plain.macs,
                    "plain_vs_closed": round(plain.macs / closed - 1, 4),
                    "toksuite_macs": fixed.macs,
                    "toksuite_vs_closed": round(fixed.macs / closed - 1, 4),
                }
            )

    pixels = fit_forward_cost("paper", 256).macs(12288)
    bpe = fit_forward_cost("paper", 30000).macs(64 * 64 / 4)
    paper = {
        "pixels_rgb_tokens": 12288,
        "pixels_rgb_fwd_flops": 2 * pixels,
        "squeeze4_tokens": 1024,
        "squeeze4_fwd_flops": 2 * bpe,
        "reduction": round(pixels / bpe, 1),
    }
    print(
        json.dumps(
            {
                "trace_seconds": trace,
                "fit_seconds": fit,
                "undercount": undercount,
                "paper_64": paper,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
