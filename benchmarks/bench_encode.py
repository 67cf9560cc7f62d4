"""Encode throughput and fit time of toksuite's encoders against the paper's seed code.

Each row fits one encoder on ``--train`` CelebA faces at 112×112 and encodes ``--test`` held-out
faces with ``encode_batch``; image-BPE rows also time the same encoder through HF ``tokenizers``
instead of toksuite's compiled merge kernel (same ids). The baseline row is the seed code's way:
the text built pixel by pixel in Python (``chr()`` of ``r*100 + g*10 + b`` with its two remaps),
then ``tokenizer.encode`` per image with the byte-level tokenizer of the ``bpe-bytelevel`` row
(same vocab; else the first RGB row's).

    python benchmarks/bench_encode.py                 # vocab 30,000, 2,000 train faces
    python benchmarks/bench_encode.py --train 300     # quicker
    python benchmarks/bench_encode.py --saved DIR     # a saved encoder (toksuite fit ... --out DIR)

The ratio is between rows of one run, so a busy machine slows both sides; the JSON records the
1-minute load average before and after. The Rust tokenizer's thread count follows
``RAYON_NUM_THREADS`` (default: one per core).

Takes about 4 minutes on 2 cores with the defaults (most of it the two fits). Prints JSON.
To add an encoder, add a row to ``ENCODERS`` (name → factory taking the vocab size).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from faces import DEFAULT_ROOT, load_faces

from toksuite.encoders.base import Encoder
from toksuite.encoders.bpe import BPEGreyEncoder, BPERGBEncoder
from toksuite.encoders.bpe_palette import BPEPaletteEncoder
from toksuite.encoders.bytelevel import ByteLevelBPEEncoder
from toksuite.encoders.hf_base import HFTokenizerEncoder
from toksuite.registry import load_encoder

ENCODERS: dict[str, Callable[[int], Encoder]] = {
    "bpe-rgb": lambda vocab: BPERGBEncoder(vocab_size=vocab),
    "bpe-bytelevel": lambda vocab: ByteLevelBPEEncoder(vocab_size=vocab),
    "bpe-grey": lambda vocab: BPEGreyEncoder(vocab_size=vocab),
    "bpe-rgb-hilbert": lambda vocab: BPERGBEncoder(vocab_size=vocab, scan="hilbert"),
    "bpe-palette": lambda vocab: BPEPaletteEncoder(vocab_size=vocab),
}


def seed_text(image: np.ndarray) -> str:
    """The seed code's per-pixel loop (kept as it was, collisions included)."""
    text = ""
    for i in range(image.shape[0]):
        for j in range(image.shape[1]):
            r, g, b = image[i, j] // 26
            symbol = int(r) * 100 + int(g) * 10 + int(b)
            if symbol == 10:
                symbol = 20
            if symbol == 101:
                symbol = 102
            text += chr(symbol)
    return text


def best_rate(run: Callable[[], object], n_images: int, repeats: int) -> float:
    """Images per second of the best of ``repeats`` runs (the machine may be shared)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return n_images / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--vocab", type=int, default=30000)
    parser.add_argument("--seed-images", type=int, default=40, help="images for the slow baseline")
    parser.add_argument("--encoders", default="bpe-rgb,bpe-bytelevel")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--saved", type=Path, action="append", default=[], help="use this saved encoder, no fit"
    )
    args = parser.parse_args()
    load_before = round(os.getloadavg()[0], 2)

    rows = []
    fitted: dict[str, Encoder] = {}
    todo = [(name, None) for name in args.encoders.split(",")] if not args.saved else []
    todo += [(None, path) for path in args.saved]
    for name, path in todo:
        encoder = load_encoder(path) if path else ENCODERS[name](args.vocab)
        name = name or f"{encoder.name} (saved)"
        grey = encoder.channels == 1
        train = load_faces(args.data, "train", args.train, grey=grey) if not path else []
        test = load_faces(args.data, "test", args.test, grey=grey)
        started = time.perf_counter()
        if not path:
            encoder.fit(train)
        fit_s = time.perf_counter() - started
        fitted[name] = encoder
        rate = best_rate(lambda e=encoder, t=test: e.encode_batch(t), len(test), args.repeats)
        tokens = np.mean([len(ids) for ids in encoder.encode_batch(test)])
        row = {
            "encoder": name,
            "params": encoder.get_params(),
            "vocab_size": encoder.vocab_size,
            "train_images": len(train),
            "fit_s": round(fit_s, 1),
            "encode_images_per_s": round(rate, 1),
            "tokens_per_image": round(float(tokens), 1),
        }
        if isinstance(encoder, BPEGreyEncoder | BPERGBEncoder | BPEPaletteEncoder):
            # The same encoder through HF tokenizers instead of the compiled merge kernel.
            hf = best_rate(
                lambda e=encoder, t=test: HFTokenizerEncoder.encode_batch(e, t),
                len(test),
                args.repeats,
            )
            row["encode_images_per_s_hf_tokenizers"] = round(hf, 1)
            row["kernel_vs_hf_tokenizers"] = round(rate / hf, 2)
        rows.append(row)
    rgb = [e for e in fitted.values() if e.channels == 3]
    if rgb:
        # The seed's loop with the byte-level tokenizer when there is one; else any RGB one
        # (the per-pixel Python loop is most of its time either way).
        tokenizer = fitted.get("bpe-bytelevel", rgb[0]).tokenizer_
        test = load_faces(args.data, "test", args.seed_images)
        rate = best_rate(lambda: [tokenizer.encode(seed_text(x)).ids for x in test], len(test), 1)
        rows.append(
            {"encoder": "seed-loop (per-pixel Python + encode)", "encode_images_per_s": rate}
        )
        for row in rows[:-1]:
            row["speedup_vs_seed"] = round(row["encode_images_per_s"] / rate, 1)
    info = {
        "cpus": os.cpu_count(),
        "rayon_threads": os.environ.get("RAYON_NUM_THREADS", "default (one per core)"),
        "load_average_1m_start": load_before,
        "load_average_1m_end": round(os.getloadavg()[0], 2),
    }
    json.dump(
        {
            "machine": info,
            "args": vars(args) | {"data": str(args.data), "saved": list(map(str, args.saved))},
            "rows": rows,
        },
        sys.stdout,
        indent=2,
    )
    print()


if __name__ == "__main__":
    main()
