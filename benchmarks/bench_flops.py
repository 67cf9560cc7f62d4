"""How long FLOP counting takes, and how far plain fvcore is off under SDPA attention.

    python benchmarks/bench_flops.py [--quick]

Prints one JSON object (with the machine it ran on):
- ``trace_seconds``: one fvcore trace on the meta device (no arithmetic) of each preset at 1,024
  tokens, and of the 4-layer, 256-wide model on real CPU tensors for comparison;
- ``fit_seconds``: `fit_forward_cost` (traces of depth 1 and 2 at two lengths, one full-depth check)
  for each preset with a 30k vocabulary;
- ``undercount``: plain fvcore against toksuite's count and the closed form (forward MACs;
  biases and layer norms are the closed form's only omission), 4 layers × 256 wide (vocab 512)
  and the ``small`` preset (6 × 256, vocab 10k), for T = 256, 512, 1,024, 2,048 and 4,096 under
  both attention implementations (``eager``, ``sdpa``); ``*_vs_closed`` is count ÷ closed − 1;
- ``paper_64``: the paper's check, forward FLOPs per 64×64 image on its 36×1024 model, raw RGB
  sub-pixels against H·W / 4 tokens (a BPE squeezing 4×, vocabulary 30k).
Takes about 1 minute on 2 CPU cores (meta-device traces up to T = 4,096 and the real-tensor trace
at T = 1,024); ``--quick`` (T = 256 and 1,024, one shape, no timings) about 15 s.
"""

from __future__ import annotations

import argparse
import time

from _common import emit, machine

from toksuite.flops import CONVENTION, closed_form_macs, count_forward, fit_forward_cost
from toksuite.model import PRESETS, build_model


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, round(time.perf_counter() - start, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="T = 256 and 1,024, no timings")
    args = parser.parse_args()
    start = machine()
    count_forward("tiny", 256, 16)  # imports torch, transformers, fvcore: not part of any timing
    trace, fit = {}, {}
    if not args.quick:
        trace = {name: timed(lambda n=name: count_forward(n, 30000, 1024))[1] for name in PRESETS}
        model = build_model("256x4x4", 512, 1024, seed=0)
        trace["256x4x4 on CPU tensors"] = timed(lambda: count_forward("", 0, 1024, model=model))[1]
        fit = {name: timed(lambda n=name: fit_forward_cost(n, 30000))[1] for name in PRESETS}

    undercount = []
    lengths = (256, 1024) if args.quick else (256, 512, 1024, 2048, 4096)
    shapes = (("256x4x4", 512),) if args.quick else (("256x4x4", 512), ("small", 10000))
    cases = [(sv, a, t) for sv in shapes for a in ("eager", "sdpa") for t in lengths]
    for (shape, vocab), attn, t in cases:
        closed = closed_form_macs(shape, t, vocab).macs
        plain = count_forward(shape, vocab, t, attn_implementation=attn, fix_attention=False)
        fixed = count_forward(shape, vocab, t, attn_implementation=attn)
        undercount.append(
            {
                "shape": shape,
                "vocab": vocab,
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
    result = {"trace_seconds": trace, "fit_seconds": fit, "undercount": undercount}
    emit(result | {"paper_64": paper, "convention": CONVENTION}, start)


if __name__ == "__main__":
    main()
