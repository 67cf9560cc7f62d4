"""One-image encode latency and batch throughput of image BPE while other processes hold the cores.

DataLoader workers and shared servers encode one image at a time on cores that other work holds.
A parallel kernel then waits for every one of its threads to be scheduled, so one image costs
far more than its own work. toksuite's merge kernel runs batches of fewer than
``PARALLEL_MIN_IMAGES`` images on the calling thread; this script measures both choices side by
side, with 0, 2 and 4 busy processes (pure-Python spin loops, one per process) beside it:

* ``one_image_ms``: median of ``Encoder.encode(face)`` over ``--test`` held-out 112×112 faces,
  as toksuite runs it (serial below the threshold), and ``one_image_parallel_ms`` with the
  parallel kernel forced (the threshold set to 1);
* ``batch_images_per_s``: best of ``--repeats`` calls of ``encode_batch`` on all ``--test`` faces;
* ``seed_images_per_s``: the seed code's per-pixel Python loop plus ``tokenizer.encode``, on
  ``--seed-images`` faces (quiet machine only), and the batch speed-up over it.

    python benchmarks/bench_encode_busy.py              # bpe-rgb, vocab 30,000, 500 train faces
    python benchmarks/bench_encode_busy.py --encoder bpe-palette

The load average is recorded per condition. Takes about 3 minutes on 2 cores. Prints JSON.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time

import numpy as np
from _common import add_data_argument, emit, load_faces, machine
from bench_encode import best_rate, seed_text

from toksuite.encoders import bpe_kernel
from toksuite.registry import create_encoder


def spin() -> None:
    while True:
        pass


def one_image_ms(encoder, faces: np.ndarray) -> float:
    encoder.encode(faces[0])  # compiled and warm
    times = []
    for face in faces:
        started = time.perf_counter()
        encoder.encode(face)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def measure(encoder, faces: np.ndarray, repeats: int) -> dict[str, float]:
    serial = one_image_ms(encoder, faces)
    threshold = bpe_kernel.PARALLEL_MIN_IMAGES
    bpe_kernel.PARALLEL_MIN_IMAGES = 1
    try:
        parallel = one_image_ms(encoder, faces)
    finally:
        bpe_kernel.PARALLEL_MIN_IMAGES = threshold
    batch = best_rate(lambda: encoder.encode_batch(faces), len(faces), repeats)
    return {
        "one_image_ms": round(serial, 3),
        "one_image_parallel_ms": round(parallel, 3),
        "parallel_vs_serial": round(parallel / serial, 2),
        "batch_images_per_s": round(batch, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--encoder", default="bpe-rgb")
    parser.add_argument("--vocab", type=int, default=30000)
    parser.add_argument("--train", type=int, default=500)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--seed-images", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", default="0,2,4", help="numbers of busy processes, in order")
    args = parser.parse_args()
    if args.quick:
        args.train, args.test, args.vocab, args.seed_images = 100, 40, 3000, 5
    start = machine()

    data = load_faces(args.data_dir, 112, limit=max(args.train, args.test))
    encoder = create_encoder(args.encoder, vocab_size=args.vocab).fit(data.x_train[: args.train])
    faces = data.x_test[: args.test]

    seed_faces = faces[: args.seed_images]
    tokenizer = encoder.tokenizer_
    seed_rate = best_rate(
        lambda: [tokenizer.encode(seed_text(x)).ids for x in seed_faces], len(seed_faces), 1
    )
    rows = []
    for busy in map(int, args.busy.split(",")):
        workers = [multiprocessing.Process(target=spin, daemon=True) for _ in range(busy)]
        for worker in workers:
            worker.start()
        try:
            time.sleep(2 if busy else 0)  # let the spinners take the cores
            row = {"busy_processes": busy, **measure(encoder, faces, args.repeats)}
            row["load_average_1m"] = round(os.getloadavg()[0], 2)
        finally:
            for worker in workers:
                worker.terminate()
                worker.join()
        row["batch_vs_seed_loop"] = round(row["batch_images_per_s"] / seed_rate, 1)
        rows.append(row)
    emit(
        {
            "encoder": encoder.name,
            "params": encoder.get_params(),
            "vocab_size": encoder.vocab_size,
            "train_images": args.train,
            "test_images": len(faces),
            "parallel_min_images": bpe_kernel.PARALLEL_MIN_IMAGES,
            "seed_images_per_s": round(seed_rate, 2),
            "rows": rows,
        },
        start,
    )


if __name__ == "__main__":
    main()
