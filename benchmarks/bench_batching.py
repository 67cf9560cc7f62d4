"""Length-bucketed against random batching: real tokens/s of bpe-rgb pretraining on CPU.

Fits ``bpe-rgb`` (vocab 10,000) once on the 10,000 CIFAR-10 train images of ``DATA_DIR/
cifar10-20k.npz`` at 32×32 (the lengths this gives are the issue's case: random batches of 32 are
about two thirds real tokens), then runs the real training loop (`toksuite.train.pretrain`) with
the saved encoder under ``--batching bucket`` and ``--batching random`` in turn, ``--repeats``
times each (A B A B …), the same images, seed and steps. Only ``--test-images`` held-out images
are kept: the final evaluation is not what is measured here. Throughput is real tokens (BOS
included, padding not) per second of training, the median over the log intervals after the first
(the warm-up); the ratio is taken pair by pair and its median reported. Also reports each run's
``real_token_share`` (real tokens / padded slots). Target: bucket ≥ 1.4× random.

    python benchmarks/bench_batching.py [--data-dir ../shared/data] [--quick]
        [--model tiny] [--batch-size 32] [--steps 24] [--repeats 3]

About 10 minutes on 2 idle cores with the defaults; ``--quick`` (16×16, 1,000 train images, 8
steps) about 1 minute.
Prints JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
from _common import add_data_argument, emit, machine

from toksuite.train import TrainConfig, pretrain


def run_once(encoder_dir: Path, batching: str, args, work: Path) -> dict:
    run = work / f"run-{batching}"
    config = TrainConfig(
        encoder=str(encoder_dir),
        data=args.data,
        resolution=[args.resolution, args.resolution],
        model=args.model,
        batch_size=args.batch_size,
        batching=batching,
        images=args.batch_size * args.steps,
        log_every=args.log_every,
        checkpoint_every=0,
        eval_every=0,
        eval_batch_size=64,
        device="cpu",
    )
    summary = pretrain(config, run, force=True)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    train = [r for r in rows if r["event"] == "train"][1:]  # drop the warm-up interval
    return {
        "batching": batching,
        "tokens_per_s": statistics.median(r["tokens_per_s"] for r in train),
        "images_per_s": statistics.median(r["images_per_s"] for r in train),
        "real_token_share": summary["real_token_share"],
        "train_flops": summary["train_flops"],
        "tokens_seen": summary["tokens_seen"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--train-images", type=int, default=10000)
    parser.add_argument("--test-images", type=int, default=64)
    parser.add_argument("--vocab-size", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--log-every", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.quick:
        args.resolution, args.steps, args.log_every, args.repeats = 16, 8, 2, 1
        args.vocab_size, args.train_images = 2000, 1000
    start = machine()
    from toksuite.data import LoadOptions, load_dataset
    from toksuite.registry import create_encoder

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with np.load(args.data_dir / "cifar10-20k.npz", allow_pickle=False) as full:
            arrays = {
                "x_train": full["x_train"][: args.train_images],
                "y_train": full["y_train"][: args.train_images],
                "x_test": full["x_test"][: args.test_images],
                "y_test": full["y_test"][: args.test_images],
            }
        np.savez(work / "data.npz", **arrays)
        args.data = f"npz:{work / 'data.npz'}"
        options = LoadOptions(
            resolution=(args.resolution, args.resolution), channels=3, progress=False
        )
        dataset = load_dataset(args.data, options)
        encoder = create_encoder("bpe-rgb", vocab_size=args.vocab_size).fit(dataset.x_train)
        encoder.save(work / "encoder")
        runs = []
        for _ in range(args.repeats):
            pair = {b: run_once(work / "encoder", b, args, work) for b in ("bucket", "random")}
            pair["ratio"] = pair["bucket"]["tokens_per_s"] / pair["random"]["tokens_per_s"]
            runs.append(pair)
    ratios = [r["ratio"] for r in runs]
    emit(
        {
            "data": f"{args.data_dir / 'cifar10-20k.npz'}: {args.train_images} train images",
            "args": {k: v for k, v in vars(args).items() if k != "data_dir"},
            "vocab_size": encoder.vocab_size,
            "runs": runs,
            "real_token_share": {b: runs[0][b]["real_token_share"] for b in ("bucket", "random")},
            "tokens_per_s_ratio_bucket_vs_random": {
                "median": statistics.median(ratios),
                "min": min(ratios),
                "max": max(ratios),
            },
        },
        start,
    )


if __name__ == "__main__":
    main()
