"""Pretraining throughput on CPU: tokens/s and images/s of the tiny and small presets.

Runs the real training loop (`toksuite.train.pretrain`) on `digits` with pixels-grey (8×8 grey,
64 tokens + BOS per image) for a fixed number of steps and reports the median throughput of the log
intervals after the first (which holds the warm-up). Prints JSON on stdout.

Takes about 1–2 minutes on 2 CPU cores (mostly the small preset).

    python benchmarks/bench_pretrain_cpu.py [--presets tiny,small] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("TOKSUITE_QUIET", "1")

import torch  # noqa: E402

from toksuite.train import TrainConfig, pretrain  # noqa: E402

STEPS = {"tiny": 60, "small": 15}
LOG_EVERY = {"tiny": 10, "small": 3}


def bench(preset: str, batch_size: int, steps: int, log_every: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(
            encoder="pixels-grey",
            data="digits",
            model=preset,
            batch_size=batch_size,
            images=batch_size * steps,
            log_every=log_every,
            checkpoint_every=0,
            device="cpu",
        )
        summary = pretrain(config, Path(tmp) / "run")
        rows = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").open()]
    train = [r for r in rows if r["event"] == "train"][1:]  # drop the warm-up interval
    tokens = statistics.median(r["tokens_per_s"] for r in train)
    images = statistics.median(r["images_per_s"] for r in train)
    return {
        "preset": preset,
        "n_params": summary["n_params"],
        "batch_size": batch_size,
        "tokens_per_image": 65,
        "steps": summary["steps"],
        "tokens_per_s": round(tokens, 1),
        "images_per_s": round(images, 1),
        "seconds_per_step": round(batch_size / images, 4),
        "train_flops_per_s": round(statistics.median(r["flops_per_s"] for r in train)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="tiny,small")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    results = [
        bench(p, args.batch_size, STEPS.get(p, 15), LOG_EVERY.get(p, 3))
        for p in args.presets.split(",")
    ]
    print(
        json.dumps(
            {
                "device": "cpu",
                "torch_threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "data": "digits (8×8 grey)",
                "encoder": "pixels-grey",
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
