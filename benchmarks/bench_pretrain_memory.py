"""Peak memory and time per step of `toksuite pretrain` at 20,000 and 200,000 training images.

Builds two synthetic ``.npz`` files of 16×16 grey images (``x_train`` of 20,000 and 200,000
images, the same 1,000 ``x_test`` images in both; saved uncompressed with ``np.savez``), then runs
``toksuite pretrain --encoder pixels-grey --model tiny`` for the same fixed number of steps on
each, in a child process with a fresh token cache (``TOKSUITE_CACHE_DIR``), so that every run
loads, encodes and trains from nothing. It reports the child's peak resident memory
(``ru_maxrss`` from ``os.wait4``, what ``/usr/bin/time -v`` prints as "Maximum resident set
size"), its wall time, and the median seconds per training step over the log intervals after the
first (which holds the warm-up). Each size runs ``--repeats`` times (default 2), the sizes
alternating, and a row reports the largest peak RSS and the median times of its repeats.

The anchor is the 20,000-image run: ``rss_ratio`` and ``step_ratio`` are the 200,000-image row's
values ÷ the 20,000-image row's, in the same run, and ``rss_mib_per_10k_images`` the slope between
them: what memory each further image costs once the fixed cost (Python, torch, transformers, the
model) cancels out.

The images are seeded noise over smooth gradients: only their number matters here (pixels-grey
gives 256 tokens per image whatever they hold), and the held-out split is the same so the final
evaluation costs the same in both runs.

    python benchmarks/bench_pretrain_memory.py [--sizes 20000,200000] [--steps 40] [--repeats 2]
        [--quick]

Takes about 2 minutes on 2 idle CPU cores (four runs of 20-35 s: the libraries' start-up,
encoding 200,000 images, 40 steps and the final evaluation); ``--quick`` (2,000 and 20,000
images, 20 steps, one run each) about 40 seconds. Prints JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import emit, machine

SIDE = 16  # 16×16 grey: 256 tokens per image with pixels-grey
HELD_OUT = 1000


def synthetic_images(n: int, seed: int) -> np.ndarray:
    """``n`` 16×16×1 uint8 images: a random linear gradient plus noise, made in chunks."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, SIDE, dtype=np.float32)
    out = np.empty((n, SIDE, SIDE, 1), np.uint8)
    for start in range(0, n, 10_000):
        m = min(10_000, n - start)
        a, b, c = (rng.uniform(-120, 120, (m, 1, 1)).astype(np.float32) for _ in range(3))
        image = 128 + a * ramp[None, :, None] + b * ramp[None, None, :] + c / 4
        image += rng.normal(0, 12, (m, SIDE, SIDE)).astype(np.float32)
        out[start : start + m, ..., 0] = np.clip(image, 0, 255).astype(np.uint8)
    return out


def write_npz(path: Path, n_train: int) -> None:
    labels = lambda n, seed: np.random.default_rng(seed).integers(0, 10, n)  # noqa: E731
    np.savez(  # uncompressed: the members can be memory-mapped where the reader supports it
        path,
        x_train=synthetic_images(n_train, seed=1),
        y_train=labels(n_train, 2),
        x_test=synthetic_images(HELD_OUT, seed=3),
        y_test=labels(HELD_OUT, 4),
    )


def toksuite_command() -> list[str]:
    """The ``toksuite`` console script beside this Python (a virtualenv), else ``-m``."""
    script = Path(sys.executable).with_name("toksuite")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "toksuite"]


def run_pretrain(npz: Path, run_dir: Path, cache_dir: Path, args) -> dict:
    """One ``toksuite pretrain`` in a child process; its summary, peak RSS and wall time."""
    command = [
        *toksuite_command(),
        "pretrain",
        "--data",
        f"npz:{npz}",
        "--encoder",
        "pixels-grey",
        "--model",
        "tiny",
        "--batch-size",
        str(args.batch_size),
        "--images",
        str(args.batch_size * args.steps),
        "--log-every",
        str(args.log_every),
        "--eval-every",
        "0",
        "--checkpoint-every",
        "0",
        "--device",
        "cpu",
        "--out",
        str(run_dir),
        "--json",
    ]
    env = dict(os.environ, TOKSUITE_CACHE_DIR=str(cache_dir), TOKSUITE_QUIET="1")
    out, err = run_dir.with_suffix(".stdout"), run_dir.with_suffix(".stderr")
    started = time.perf_counter()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        child = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env)
        # Reap the child ourselves: wait4 returns its resource usage, ru_maxrss included.
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if child.returncode != 0:
        raise SystemExit(f"toksuite pretrain failed ({child.returncode}):\n{err.read_text()}")
    summary = json.loads(out.read_text())
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").open()]
    train = [r for r in rows if r["event"] == "train"][1:]  # drop the warm-up interval
    step = statistics.median(args.batch_size / r["images_per_s"] for r in train)
    return {"summary": summary, "seconds_per_step": step, "wall_s": wall, "usage": usage}


def bench(n_train: int, tmp: Path, args, repeat: int) -> dict:
    npz = tmp / f"synthetic-{n_train}.npz"
    started = time.perf_counter()
    if not npz.exists():  # written once, reused by the repeats
        write_npz(npz, n_train)
    write_s = time.perf_counter() - started
    cache = tmp / f"cache-{n_train}-{repeat}"
    result = run_pretrain(npz, tmp / f"run-{n_train}-{repeat}", cache, args)
    summary, usage = result["summary"], result["usage"]
    shutil.rmtree(cache, ignore_errors=True)
    return {
        "train_images": n_train,
        "heldout_images": HELD_OUT,
        "npz_mib": round(npz.stat().st_size / 2**20, 1),
        "steps": summary["steps"],
        "batch_size": args.batch_size,
        "context": summary["context"],
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
        "wall_s": round(result["wall_s"], 1),
        "seconds_per_step": round(result["seconds_per_step"], 4),
        "final_train_loss": round(summary["final_train_loss"], 4),
        "npz_write_s": round(write_s, 1),
    }


def merge(runs: list[dict]) -> dict:
    """One row per size over its repeats: the largest peak RSS, median times."""
    row = dict(runs[0])
    row["repeats"] = len(runs)
    row["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
    for key in ("wall_s", "seconds_per_step"):
        row[key] = round(statistics.median(r[key] for r in runs), 4)
    row["seconds_per_step_each"] = [r["seconds_per_step"] for r in runs]
    row["npz_write_s"] = runs[0]["npz_write_s"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="20000,200000", help="training images per run")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2, help="runs per size, alternating")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.quick:
        sizes, args.steps, args.repeats = [2000, 20000], 20, 1
    start = machine()
    with tempfile.TemporaryDirectory(prefix="toksuite-bench-memory-") as tmp:
        # Sizes alternate within each repeat, so a change in the machine's load hits both alike.
        runs = [bench(n, Path(tmp), args, r) for r in range(args.repeats) for n in sizes]
    rows = [merge([run for run in runs if run["train_images"] == n]) for n in sizes]
    base, last = rows[0], rows[-1]
    emit(
        {
            "benchmark": "pretrain_memory",
            "command": "toksuite pretrain --encoder pixels-grey --model tiny (child process)",
            "rows": rows,
            "rss_ratio": round(last["peak_rss_mib"] / base["peak_rss_mib"], 3),
            # What each further image costs: the slope between the smallest and largest run
            # (the fixed cost, libraries and model, cancels out).
            "rss_mib_per_10k_images": round(
                (last["peak_rss_mib"] - base["peak_rss_mib"])
                / max((last["train_images"] - base["train_images"]) / 10_000, 1e-9),
                2,
            ),
            "step_ratio": round(last["seconds_per_step"] / base["seconds_per_step"], 3),
        },
        start,
    )


if __name__ == "__main__":
    main()
