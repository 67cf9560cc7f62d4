"""BPE fitting: wall time and peak memory to learn 1k / 10k / 30k merges on 2,000 faces at 112².

Each fit runs in its own Python subprocess, so the memory it reports is its own. A thread samples
the process's resident memory every 5 ms during the fit: ``fit_rss_mib`` is the peak during the
fit minus the resident memory just before it (what the fit itself added, the faces already in
memory), ``peak_rss_mib`` the whole process's peak (``ru_maxrss``, loading included). The faces
are CelebA train faces from ``DATA_DIR/celeba-6k``, framed as in the paper (140×140 box at
(19, 39), resized to 112²).

Rows: toksuite's ``bpe-grey`` / ``bpe-rgb`` (private-use alphabet, rows split by the
pre-tokeniser) and the paper's recipe ``bpe-bytelevel-grey`` / ``bpe-bytelevel`` (``chr()`` text,
``ByteLevelBPETokenizer``). ``ratio_time`` and ``ratio_memory`` divide the paper recipe's figure by
toksuite's for the same channels and vocabulary (above 1: toksuite is faster / smaller).

    python benchmarks/bench_bpe_fit.py [--data-dir ../shared/data] [--quick]

Takes about 12–15 minutes on 2 idle cores (12 fits), much longer on a shared machine; ``--quick``
(200 faces, vocab 1k) 1–5 minutes.
Prints JSON. ``/usr/bin/time -v python benchmarks/bench_bpe_fit.py --one ...`` gives the same
peak for a single fit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from _common import add_data_argument, emit, load_faces, machine, peak_rss_mib

PAIRS = (("bpe-grey", "bpe-bytelevel-grey"), ("bpe-rgb", "bpe-bytelevel"))


def rss_mib() -> float:
    """Resident memory of this process now (Linux /proc), in MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def encoder_class(name: str):
    from toksuite.encoders.bytelevel import ByteLevelGreyBPEEncoder
    from toksuite.registry import get_encoder_class

    # The grey byte-level recipe is a class of its own that may not be registered by name.
    return ByteLevelGreyBPEEncoder if name == "bpe-bytelevel-grey" else get_encoder_class(name)


def one_fit(encoder_name: str, vocab: int, faces: int, data_dir: Path) -> dict:
    """Runs inside the subprocess: load, fit while sampling memory, report."""
    from toksuite.data.transform import to_channels

    encoder = encoder_class(encoder_name)(vocab_size=vocab)
    images = load_faces(data_dir, 112, limit=faces).x_train[:faces]
    images = to_channels(images, encoder.channels)
    before = rss_mib()
    samples, stop = [before], threading.Event()

    def sample() -> None:
        while not stop.wait(0.005):
            samples.append(rss_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    encoder.fit(images, seed=0)
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    peak = max(samples)
    return {
        "encoder": encoder_name,
        "vocab_target": vocab,
        "vocab_fitted": encoder.vocab_size,
        "faces": len(images),
        "fit_s": round(seconds, 2),
        "rss_before_fit_mib": round(before, 1),
        "fit_rss_mib": round(peak - before, 1),
        "peak_rss_mib": round(max(peak, peak_rss_mib()), 1),
    }


def run_subprocess(encoder_name: str, vocab: int, faces: int, data_dir: Path) -> dict:
    command = [sys.executable, __file__, "--one", encoder_name, str(vocab), str(faces)]
    command += ["--data-dir", str(data_dir)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"encoder": encoder_name, "vocab_target": vocab, "error": done.stderr[-500:]}
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--faces", type=int, default=2000)
    parser.add_argument("--vocab", default="1000,10000,30000")
    parser.add_argument("--one", nargs=3, metavar=("ENCODER", "VOCAB", "FACES"), help="internal")
    args = parser.parse_args()
    if args.one:
        name, vocab, faces = args.one
        print(json.dumps(one_fit(name, int(vocab), int(faces), args.data_dir)))
        return
    if args.quick:
        args.faces, args.vocab = 200, "1000"
    start = machine()
    rows, ratios = [], []
    for vocab in map(int, args.vocab.split(",")):
        for ours, paper in PAIRS:
            mine = run_subprocess(ours, vocab, args.faces, args.data_dir)
            theirs = run_subprocess(paper, vocab, args.faces, args.data_dir)
            rows += [mine, theirs]
            print(json.dumps(mine), json.dumps(theirs), sep="\n", file=sys.stderr)
            if "error" not in mine and "error" not in theirs:
                ratios.append(
                    {
                        "toksuite": ours,
                        "paper_recipe": paper,
                        "vocab": vocab,
                        "ratio_time": round(theirs["fit_s"] / mine["fit_s"], 2),
                        "ratio_memory": round(
                            theirs["fit_rss_mib"] / max(mine["fit_rss_mib"], 1), 2
                        ),
                    }
                )
    emit({"args": vars(args), "rows": rows, "ratios": ratios}, start)


if __name__ == "__main__":
    main()
