"""Loading speed of an image folder, and what the JPEG draft shortcut costs in fidelity.

    python benchmarks/bench_load.py [FOLDER] [--crop 19,39,140,140] [--resolution 112]

FOLDER defaults to ../shared/data/celeba-6k (6,000 JPEGs, 178×218). Prints one JSON object:
wall and CPU seconds to load the whole folder through `load_dataset` (threads, progress bar off),
images per second, and for a 300-image sample at a few resolutions the per-image decode cost with
and without `Image.draft` plus the PSNR between the two results. Takes about 15–30 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import toksuite.data.images as images_module
from toksuite.data import LoadOptions, load_dataset
from toksuite.data.images import Geometry, read_image
from toksuite.likelihood import psnr_db

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "celeba-6k"


def load_all(folder: Path, crop, resolution) -> dict:
    start, cpu = time.perf_counter(), time.process_time()
    options = LoadOptions(crop=crop, resolution=resolution, progress=False)
    dataset = load_dataset(f"folder:{folder}", options)
    wall = time.perf_counter() - start
    n = len(dataset.x_train) + len(dataset.x_test)
    return {
        "images": n,
        "shape": list(dataset.image_shape),
        "wall_s": round(wall, 2),
        "cpu_s": round(time.process_time() - cpu, 2),
        "images_per_s": round(n / wall),
    }


def draft_effect(paths: list[Path], geometry: Geometry) -> dict:
    def run(draft: bool) -> tuple[np.ndarray, float]:
        saved = images_module._draft
        if not draft:
            images_module._draft = lambda im, g: None
        try:
            start = time.process_time()
            out = np.stack([read_image(p, geometry=geometry) for p in paths])
            return out, (time.process_time() - start) / len(paths)
        finally:
            images_module._draft = saved

    fast, fast_s = run(True)
    full, full_s = run(False)
    psnr = psnr_db(full, fast)
    return {
        "crop": geometry.crop,
        "resolution": geometry.resolution,
        "channels": geometry.channels,
        "ms_per_image_draft": round(fast_s * 1e3, 3),
        "ms_per_image_full": round(full_s * 1e3, 3),
        "psnr_draft_vs_full_db": None if psnr is None else round(psnr, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--crop", default="19,39,140,140")
    parser.add_argument("--resolution", type=int, default=112)
    args = parser.parse_args()
    crop = tuple(int(v) for v in args.crop.split(",")) if args.crop else None
    size = (args.resolution, args.resolution)
    paths = sorted(args.folder.rglob("*.jpg"))[:300]
    result = {
        "folder": args.folder.name,
        "full_load": load_all(args.folder, crop, size),
        "draft": [
            draft_effect(paths, Geometry(crop, (r, r), c))
            for r, c in ((args.resolution, 3), (args.resolution, 1), (64, 3), (32, 3), (32, 1))
        ],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
