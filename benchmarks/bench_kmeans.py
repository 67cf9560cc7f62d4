"""k-means palette fit (k=512 on 1M real RGB pixels): toksuite against scikit-learn, plus encoding.

All fit the SAME pixels; all inertias are then recomputed the same way (exact float64 nearest
centre over those pixels), so they compare like for like. scikit-learn runs
``KMeans(n_clusters=512, n_init=1, init="k-means++", random_state=0)`` with its defaults
(Lloyd, tol=1e-4, max_iter=300) and ``MiniBatchKMeans(n_clusters=512, n_init=1,
random_state=0)`` with its defaults (batch 1,024). ``speedup`` = scikit-learn's fit seconds ÷
toksuite's, ``inertia_ratio`` = toksuite's inertia ÷ scikit-learn's (below 1: a better palette),
both from the same run. Then encoding throughput: ``encode_batch`` over the dataset's images with
an empty colour table (cold) and again with it filled (warm).

Usage (from the repository root)::

    python benchmarks/bench_kmeans.py                        # CIFAR-10 (../shared/data)
    python benchmarks/bench_kmeans.py --data celeba          # CelebA faces cropped to 112×112
    python benchmarks/bench_kmeans.py --skip-sklearn         # toksuite only (~15 s)
    python benchmarks/bench_kmeans.py --quick                # 100k pixels, k=64 (~20 s)

Takes about 4–5 minutes on 2 CPU cores, nearly all of it scikit-learn's KMeans fit. Prints one
JSON object.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, machine  # noqa: E402

from toksuite.encoders.kmeans import KMeansEncoder  # noqa: E402
from toksuite.encoders.kmeans_fit import nearest_centroid, pack_rgb  # noqa: E402
from toksuite.likelihood import psnr_db  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def load_images(name: str, data_dir: Path, limit: int) -> np.ndarray:
    if name == "cifar":
        return np.load(data_dir / "cifar10-20k.npz")["x_train"][:limit]
    from PIL import Image

    # The seed paper's framing: a 140×140 box at (19, 39) of the aligned face, resized to 112.
    paths = sorted((data_dir / "celeba-6k" / "train").glob("*/*.jpg"))[:limit]
    out = []
    for path in paths:
        with Image.open(path) as im:
            face = im.convert("RGB").crop((19, 39, 159, 179)).resize((112, 112), Image.BICUBIC)
            out.append(np.asarray(face))
    return np.stack(out)


def inertia(pixels: np.ndarray, centroids: np.ndarray) -> float:
    total = 0.0
    for start in range(0, len(pixels), 1 << 18):  # bounded memory for the tie checks
        _, dist = nearest_centroid(pixels[start : start + (1 << 18)], centroids)
        total += float(dist.sum())
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["cifar", "celeba"], default="cifar")
    parser.add_argument("--data-dir", type=Path, default=DATA, help="default: ../shared/data")
    parser.add_argument("--images", type=int, default=10_000, help="images to load (at most)")
    parser.add_argument("--pixels", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-sklearn", action="store_true")
    parser.add_argument("--quick", action="store_true", help="100k pixels of 2,000 images, k=64")
    args = parser.parse_args()
    if args.quick:
        args.images, args.pixels, args.k = 2000, 100_000, 64
    start_machine = machine()

    os.environ.setdefault("TOKSUITE_QUIET", "1")
    images = load_images(args.data, args.data_dir, args.images)
    flat = images.reshape(-1, 3)
    rng = np.random.default_rng(args.seed)
    pixels = flat[np.sort(rng.choice(len(flat), min(args.pixels, len(flat)), replace=False))]
    exact = pixels.astype(np.float64)
    distinct = len(np.unique(pack_rgb(pixels)))
    result: dict = {
        "data": args.data,
        "images": len(images),
        "image_shape": list(images.shape[1:]),
        "pixels": len(pixels),
        "distinct_colours": distinct,
        "k": args.k,
        "cpus": os.cpu_count(),
    }

    # One "image" of all sampled pixels with sample_pixels equal to its size: toksuite clusters
    # exactly the pixels scikit-learn gets.
    enc = KMeansEncoder(k=args.k, sample_pixels=len(pixels))
    start = time.perf_counter()
    enc.fit([pixels[None]], seed=args.seed)
    ours_s = time.perf_counter() - start
    ours_inertia = inertia(exact, enc.centroids_)
    result["toksuite"] = {
        "fit_s": round(ours_s, 2),
        "inertia": ours_inertia,
        "iterations": enc.n_iter_,
        "psnr_db_pixels": round(psnr_db(pixels, enc.palette_[enc._ids(pixels)]), 2),
    }

    if not args.skip_sklearn:
        from sklearn.cluster import KMeans, MiniBatchKMeans

        def fit_sklearn(model) -> tuple[float, float, dict]:
            """Fit a scikit-learn estimator on the same pixels; its seconds, inertia and summary."""
            start = time.perf_counter()
            model.fit(pixels.astype(np.float32))
            seconds = time.perf_counter() - start
            centres = model.cluster_centers_.astype(np.float64)
            fitted_inertia = inertia(exact, centres)
            palette = np.clip(np.rint(centres), 0, 255).astype(np.uint8)
            ids, _ = nearest_centroid(exact, centres)
            summary = {
                "fit_s": round(seconds, 2),
                "inertia": fitted_inertia,
                "iterations": int(model.n_iter_),
                "psnr_db_pixels": round(psnr_db(pixels, palette[ids]), 2),
            }
            return seconds, fitted_inertia, summary

        sk_s, sk_inertia, result["sklearn"] = fit_sklearn(
            KMeans(n_clusters=args.k, n_init=1, init="k-means++", random_state=args.seed)
        )
        result["speedup"] = round(sk_s / ours_s, 1)
        result["inertia_ratio"] = round(ours_inertia / sk_inertia, 5)

        mb_s, mb_inertia, result["sklearn_minibatch"] = fit_sklearn(
            MiniBatchKMeans(n_clusters=args.k, n_init=1, random_state=args.seed)
        )
        result["speedup_vs_minibatch"] = round(mb_s / ours_s, 2)
        result["inertia_ratio_vs_minibatch"] = round(ours_inertia / mb_inertia, 5)

    timings = {}
    for label in ("cold", "warm"):
        start = time.perf_counter()
        ids = enc.encode_batch(images)
        timings[label] = time.perf_counter() - start
    result["encode_batch"] = {
        "images": len(images),
        "cold_images_per_s": round(len(images) / timings["cold"]),
        "warm_images_per_s": round(len(images) / timings["warm"]),
        "tokens_per_image": int(ids[0].size),
    }
    emit(result, start_machine)


if __name__ == "__main__":
    main()
