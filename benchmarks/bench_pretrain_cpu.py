"""Pretraining throughput on CPU: tokens/s and images/s of the tiny and small presets per encoder.

Runs the real training loop (`toksuite.train.pretrain`, fp32 on CPU) for each (preset, encoder)
pair on CIFAR-10 images (``DATA_DIR/cifar10-20k.npz``) at ``--resolution`` (default 16×16, so
that pixels-rgb's 769-token sequences still train on 2 cores), with the encoder fitted on the
train images first (not timed). Throughput is the median over the log intervals after the first
(which holds the warm-up). The anchor is iGPT's raw sequence: ``images_vs_pixels_rgb`` is a row's
images/s ÷ pixels-rgb's for the same preset in the same run, i.e. what a shorter sequence buys
per image. Without the data file, ``--data digits`` runs on scikit-learn's embedded 8×8 digits.

    python benchmarks/bench_pretrain_cpu.py [--data-dir ../shared/data] [--quick]
        [--presets tiny,small] [--encoders pixels-grey,pixels-rgb,kmeans,bpe-grey,bpe-rgb,...]

Takes about 4 minutes on 2 idle CPU cores with ``--limit 300`` (mostly the small preset on
pixels-rgb and the held-out evaluation), longer with the default 1,000 images per split, and
several times longer on a shared machine. ``--quick`` (tiny preset, three encoders, 8×8) takes
about 1.5 minutes. Prints JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from _common import add_data_argument, emit, machine

from toksuite.train import TrainConfig, pretrain

ENCODERS = "pixels-grey,pixels-rgb,kmeans,bpe-grey,bpe-rgb,bpe-bytelevel"
STEPS = {"tiny": (16, 4), "small": (8, 2)}  # (steps, log every)
SMALL_VOCAB = {"bpe-grey": 1000, "bpe-rgb": 2000, "bpe-bytelevel": 2000}  # for a few k images


def bench(preset: str, encoder: str, data: str, args) -> dict:
    steps, log_every = STEPS.get(preset, (8, 2))
    params = {"vocab_size": SMALL_VOCAB[encoder]} if encoder in SMALL_VOCAB else {}
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(
            encoder=encoder,
            encoder_params=params,
            data=data,
            resolution=None if data == "digits" else [args.resolution, args.resolution],
            limit=args.limit,
            model=preset,
            batch_size=args.batch_size,
            images=args.batch_size * steps,
            log_every=log_every,
            checkpoint_every=0,
            eval_batch_size=args.batch_size,
            device="cpu",
        )
        summary = pretrain(config, Path(tmp) / "run")
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").open()]
    train = [r for r in rows if r["event"] == "train"][1:]  # drop the warm-up interval
    images = statistics.median(r["images_per_s"] for r in train)
    return {
        "preset": preset,
        "encoder": encoder,
        "vocab_size": summary["vocab_size"],
        "n_params": summary["n_params"],
        "context": summary["context"],
        "tokens_per_image": round(summary["tokens_seen"] / summary["images_seen"], 1),
        "batch_size": args.batch_size,
        "steps": summary["steps"],
        "tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in train), 1),
        "images_per_s": round(images, 2),
        "seconds_per_step": round(args.batch_size / images, 3),
        "train_flops_per_s": round(statistics.median(r["flops_per_s"] for r in train)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--data", default=None, help="a data spec (default: the CIFAR-10 file)")
    parser.add_argument("--presets", default="tiny,small")
    parser.add_argument("--encoders", default=ENCODERS)
    parser.add_argument("--resolution", type=int, default=16)
    parser.add_argument("--limit", type=int, default=1000, help="images per split")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    if args.quick:
        args.presets, args.encoders, args.resolution = "tiny", "pixels-rgb,kmeans,bpe-rgb", 8
        args.limit = 300
    data = args.data or f"npz:{args.data_dir / 'cifar10-20k.npz'}"
    start = machine()
    results = [
        bench(preset, encoder, data, args)
        for preset in args.presets.split(",")
        for encoder in args.encoders.split(",")
    ]
    for row in results:
        anchor = [r for r in results if r["preset"] == row["preset"]]
        anchor = [r for r in anchor if r["encoder"] == "pixels-rgb"]
        if anchor:
            row["images_vs_pixels_rgb"] = round(row["images_per_s"] / anchor[0]["images_per_s"], 2)
    emit({"device": "cpu", "data": data, "args": vars(args), "results": results}, start)


if __name__ == "__main__":
    main()
