"""Squeezing factor of the image-BPE encoders on CelebA faces at 112×112 (the paper's Figure 1).

For every encoder and vocab size: fit on ``--train`` train faces, then on ``--test`` held-out faces
report the squeezing factor (mean of H·W / tokens, paper §3.3), tokens per image (mean/min/max),
the PSNR of the quantisation against the original, and the fit time.

    python benchmarks/bench_bpe_squeeze.py
    python benchmarks/bench_bpe_squeeze.py --vocab 30000 --encoders bpe-rgb,bpe-bytelevel
    python benchmarks/bench_bpe_squeeze.py --encoders bpe-rgb --vocab 1000 -p alphabet=all

Takes about 15 minutes on 2 cores with the defaults (16 fits on 2,000 faces). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from faces import DEFAULT_ROOT, load_faces

from toksuite.encoders.bpe import BPEGreyEncoder, BPERGBEncoder
from toksuite.encoders.bytelevel import ByteLevelBPEEncoder, ByteLevelGreyBPEEncoder
from toksuite.likelihood import psnr_per_image_db, quantized

ENCODERS = {
    cls.name: cls
    for cls in (ByteLevelGreyBPEEncoder, BPEGreyEncoder, ByteLevelBPEEncoder, BPERGBEncoder)
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--vocab", default="1000,5000,10000,30000")
    parser.add_argument("--encoders", default=",".join(ENCODERS))
    parser.add_argument("--rows", default=None, help="rows= mode for bpe-grey/bpe-rgb")
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        help="KEY=VALUE for the encoders that take it, e.g. -p alphabet=all (repeatable)",
    )
    args = parser.parse_args()

    data = {}
    for grey in (True, False):
        data[grey] = (
            load_faces(args.data, "train", args.train, grey=grey),
            load_faces(args.data, "test", args.test, grey=grey),
        )
    rows = []
    for name in args.encoders.split(","):
        cls = ENCODERS[name]
        train, test = data[cls.channels == 1]
        for vocab in map(int, args.vocab.split(",")):
            params = {"vocab_size": vocab}
            if args.rows and "rows" in {s.name for s in cls.param_specs()}:
                params["rows"] = args.rows
            taken = {s.name for s in cls.param_specs()}
            params |= cls.parse_params(p for p in args.param if p.split("=")[0] in taken)
            encoder = cls(**params)
            started = time.perf_counter()
            encoder.fit(train)
            fit_s = time.perf_counter() - started
            lengths = np.array([len(ids) for ids in encoder.encode_batch(test)])
            pixels = test.shape[1] * test.shape[2]
            # Mean of the images' own PSNRs; an image reproduced exactly counts as infinite.
            per_image = psnr_per_image_db(test, quantized(encoder, test))
            fidelity = np.mean([np.inf if v is None else v for v in per_image])
            rows.append(
                {
                    "encoder": name,
                    **params,
                    "fitted_vocab": encoder.vocab_size,
                    "squeeze": round(float(np.mean(pixels / lengths)), 3),
                    "tokens_mean": round(float(lengths.mean()), 1),
                    "tokens_min": int(lengths.min()),
                    "tokens_max": int(lengths.max()),
                    "psnr_db": round(float(fidelity), 2),
                    "fit_s": round(fit_s, 1),
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr)
    info = {"cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)}
    result = {"machine": info, "args": vars(args) | {"data": str(args.data)}, "rows": rows}
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
