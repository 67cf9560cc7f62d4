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
    python benchmarks/bench_encode.py --ab 5 --encoders bpe-rgb,bpe-palette --train 300 \
        --vocab 5000                                  # A/B: fit, batch and one face, alternating

``--ab N`` runs N rounds; each round fits every listed encoder afresh and times its fit,
``encode_batch`` of the test faces and ``encode`` of one face (median of 200), one encoder after
the other, so a change in the machine's load hits every encoder alike. It prints a Markdown table
of the medians over rounds (stderr) and the JSON (stdout).

The ratio is between rows of one run, so a busy machine slows both sides; the JSON records the
1-minute load average before and after. The Rust tokenizer's thread count follows
``RAYON_NUM_THREADS`` (default: one per core).

Takes about 4 minutes on 2 cores with the defaults (most of it the two fits). Prints JSON.
To add an encoder, add a row to ``ENCODERS`` (name → factory taking the vocab size).
"""

from __future__ import annotations

import argparse
import json
import math
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
from toksuite.likelihood import psnr_db, quantized
from toksuite.registry import load_encoder

ENCODERS: dict[str, Callable[[int], Encoder]] = {
    "bpe-rgb": lambda vocab: BPERGBEncoder(vocab_size=vocab),
    "bpe-bytelevel": lambda vocab: ByteLevelBPEEncoder(vocab_size=vocab),
    "bpe-grey": lambda vocab: BPEGreyEncoder(vocab_size=vocab),
    "bpe-rgb-hilbert": lambda vocab: BPERGBEncoder(vocab_size=vocab, scan="hilbert"),
    "bpe-palette": lambda vocab: BPEPaletteEncoder(vocab_size=vocab),
    # What run holding costs: bpe-palette without it, bpe-rgb with it.
    "bpe-palette-unheld": lambda vocab: BPEPaletteEncoder(vocab_size=vocab, run_tolerance=0),
    "bpe-rgb-held": lambda vocab: BPERGBEncoder(vocab_size=vocab, run_tolerance=200),
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


def median_ms(run: Callable[[], object], calls: int) -> float:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return float(np.median(times)) * 1000


def psnr(encoder: Encoder, images: np.ndarray) -> float:
    """toksuite's PSNR of the quantisation (infinite where lossless, as the table prints it)."""
    value = psnr_db(images, quantized(encoder, images))
    return math.inf if value is None else value


def ab_rounds(args: argparse.Namespace) -> list[dict]:
    """Alternating rounds of fit / encode_batch / one face per encoder; medians per encoder."""
    names = args.encoders.split(",")
    train = load_faces(args.data, "train", args.train)
    test = load_faces(args.data, "test", args.test)
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for round_ in range(args.ab):
        for name in names:
            encoder = ENCODERS[name](args.vocab)
            started = time.perf_counter()
            encoder.fit(train)
            fit_s = time.perf_counter() - started
            encoder.encode_batch(test[:16])  # anything compiled or built on first use
            started = time.perf_counter()
            encoded = encoder.encode_batch(test)
            batch_s = time.perf_counter() - started
            one_ms = median_ms(lambda e=encoder: e.encode(test[0]), 200)
            run = {"fit_s": fit_s, "images_per_s": len(test) / batch_s, "one_face_ms": one_ms}
            if round_ == 0:
                run["tokens_per_image"] = float(np.mean([len(ids) for ids in encoded]))
                run["psnr_db"] = psnr(encoder, test[:200])
            runs[name].append(run)
            print(f"round {round_ + 1}: {name} {json.dumps(run)}", file=sys.stderr)
    rows = []
    for name in names:
        first = runs[name][0]
        rows.append(
            {
                "encoder": name,
                "fit_s": round(float(np.median([r["fit_s"] for r in runs[name]])), 2),
                "encode_images_per_s": round(
                    float(np.median([r["images_per_s"] for r in runs[name]]))
                ),
                "one_face_ms": round(float(np.median([r["one_face_ms"] for r in runs[name]])), 3),
                "tokens_per_image": round(first["tokens_per_image"], 1),
                "psnr_db": round(first["psnr_db"], 2),
                "rounds": runs[name],
            }
        )
    base = rows[0]
    print(
        "| encoder | fit s | encode_batch faces/s | one face ms | tokens / face | PSNR dB |",
        "|---|---|---|---|---|---|",
        sep="\n",
        file=sys.stderr,
    )
    for row in rows:
        speed = row["encode_images_per_s"] / base["encode_images_per_s"]
        print(
            f"| {row['encoder']} | {row['fit_s']:.1f} | {row['encode_images_per_s']:,} "
            f"({speed:.2f}×) | {row['one_face_ms']:.2f} | {row['tokens_per_image']:,.0f} "
            f"| {row['psnr_db']:.2f} |",
            file=sys.stderr,
        )
    return rows


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
    parser.add_argument("--ab", type=int, default=0, help="alternating fit+encode rounds (A/B)")
    args = parser.parse_args()
    load_before = round(os.getloadavg()[0], 2)
    if args.ab:
        rows = ab_rounds(args)
        machine = {
            "cpus": os.cpu_count(),
            "load_average_1m_start": load_before,
            "load_average_1m_end": round(os.getloadavg()[0], 2),
        }
        args_json = vars(args) | {"data": str(args.data), "saved": []}
        json.dump({"machine": machine, "args": args_json, "rows": rows}, sys.stdout, indent=2)
        print()
        return

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
