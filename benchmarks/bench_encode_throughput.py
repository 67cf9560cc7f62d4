"""Encoding throughput (images/s) of every built-in encoder at 32², 64² and 112², with anchors.

Real images: CelebA faces from ``DATA_DIR/celeba-6k`` framed as in the paper (140×140 box at
(19, 39), resized). The learned encoders are fitted once on ``--fit-images`` train faces at 112²
(k-means: k = 512; BPE: ``--vocab``) and then encode held-out faces at every resolution, so only
the encoding is timed. Anchors, timed side by side in the same run:

* **per-pixel Python** for each BPE encoder: the seed code's approach — a Python loop over pixels
  building the ``chr()`` text (``r·100 + g·10 + b`` per pixel), then ``tokenizer.encode`` image by
  image — with the encoder's own tokenizer and alphabet, so the ids must be identical
  (``ids_agree``); the byte-level row uses toksuite's collision-free remap of symbols 10 and 101;
* **transformers ``ImageGPTImageProcessor``** colour quantisation for ``kmeans``, given the same
  512 centroids in its [-1, 1] layout (no resize), 4 images per call (it builds a float64
  pixels × clusters distance matrix); ``ids_agree`` is the share of equal ids (ties and rounding
  may differ). toksuite's k-means keeps a colour → id table that fills as it
  encodes: ``cold`` starts from an empty table every repeat, ``warm`` reuses it.

``ratio`` = toksuite images/s ÷ anchor images/s, both from this run (median of ``--repeats``).

    python benchmarks/bench_encode_throughput.py [--data-dir ../shared/data] [--quick]

Takes about 4–6 minutes on 2 cores (fits ~1.5 min, the per-pixel loops most of the rest);
``--quick`` about 1 minute. Prints JSON.
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import add_data_argument, emit, load_faces, machine, median_seconds

from toksuite.data.transform import to_channels
from toksuite.registry import create_encoder

ENCODERS = ("pixels-grey", "pixels-rgb", "kmeans", "bpe-grey", "bpe-rgb", "bpe-bytelevel")
HF_BATCH = 4  # images per ImageGPTImageProcessor call
PRIVATE_USE = 0xE000  # toksuite's symbol alphabet starts here (see toksuite.encoders.symbols)


def per_pixel_text(image: np.ndarray, encoder) -> str:
    """The seed code's way: one Python iteration and one ``chr`` per pixel."""
    height, width = image.shape[:2]
    if encoder.name == "bpe-bytelevel":
        text = ""
        for i in range(height):
            for j in range(width):
                r, g, b = image[i, j] // 26
                symbol = int(r) * 100 + int(g) * 10 + int(b)
                if symbol == 10:  # the seed remapped to 20 / 102 (colliding); toksuite's remap
                    symbol = 1000
                if symbol == 101:
                    symbol = 1001
                text += chr(symbol)
        return text
    rows = []
    for i in range(height):
        row = ""
        for j in range(width):
            if encoder.channels == 1:
                symbol = int(image[i, j, 0]) // 26
            else:
                r, g, b = image[i, j] // 26
                symbol = int(r) * 100 + int(g) * 10 + int(b)
            row += chr(PRIVATE_USE + symbol)
        rows.append(row)
    return "\n".join(rows)  # rows=split: the pre-tokeniser drops the separator


def per_pixel_encode(images: np.ndarray, encoder) -> list[list[int]]:
    return [encoder.tokenizer_.encode(per_pixel_text(x, encoder)).ids for x in images]


def imagegpt_processor(centroids: np.ndarray):
    from transformers.models.imagegpt.image_processing_pil_imagegpt import (
        ImageGPTImageProcessorPil,  # the numpy backend: needs no torchvision
    )

    return ImageGPTImageProcessorPil(clusters=centroids / 127.5 - 1.0, do_resize=False)


def fit_encoders(args) -> dict:
    faces = load_faces(args.data_dir, 112, limit=args.fit_images).x_train[: args.fit_images]
    fitted = {}
    for name in ENCODERS:
        params = {"vocab_size": args.vocab} if name.startswith("bpe") else {}
        encoder = create_encoder(name, **params)
        fitted[name] = encoder.fit(to_channels(faces, encoder.channels), seed=0)
    return fitted


def bench_resolution(size: int, fitted: dict, args) -> list[dict]:
    rgb = load_faces(args.data_dir, size, limit=args.images).x_test[: args.images]
    rows = []
    for name, encoder in fitted.items():
        images = to_channels(rgb, encoder.channels)
        base = {"resolution": size, "encoder": name, "images": len(images)}
        if name == "kmeans":
            rows += bench_kmeans(encoder, images, base, args)
            continue
        seconds = median_seconds(lambda e=encoder, x=images: e.encode_batch(x), args.repeats)
        ids = encoder.encode_batch(images)
        row = base | {
            "tokens_per_image": round(float(np.mean([len(s) for s in ids])), 1),
            "images_per_s": round(len(images) / seconds, 1),
        }
        if name.startswith("bpe"):
            few = images[: args.baseline_images]
            loop_s = median_seconds(lambda e=encoder, x=few: per_pixel_encode(x, e), 1)
            loop_ids = per_pixel_encode(few, encoder)
            row["anchor"] = "per-pixel Python chr() loop + tokenizer.encode"
            row["anchor_images"] = len(few)
            row["anchor_images_per_s"] = round(len(few) / loop_s, 2)
            row["ids_agree"] = all(list(a) == b for a, b in zip(ids, loop_ids, strict=False))
            row["ratio"] = round(row["images_per_s"] / row["anchor_images_per_s"], 1)
        rows.append(row)
    return rows


def bench_kmeans(encoder, images: np.ndarray, base: dict, args) -> list[dict]:
    def cold():
        encoder._lookup = None  # empty the colour → id table: every colour searched afresh
        return encoder.encode_batch(images)

    cold_s = median_seconds(cold, args.repeats)
    warm_s = median_seconds(lambda: encoder.encode_batch(images), args.repeats)
    ids = np.stack(encoder.encode_batch(images))
    processor = imagegpt_processor(encoder.centroids_)
    few = images[: args.baseline_images]

    def hf() -> np.ndarray:
        # In small batches: the processor holds a pixels × clusters float64 distance matrix
        # (200 faces at 112² would need about 20 GB at once).
        out = [
            processor(list(few[i : i + HF_BATCH]), return_tensors="np")["input_ids"]
            for i in range(0, len(few), HF_BATCH)
        ]
        return np.concatenate([np.asarray(o).reshape(len(o), -1) for o in out])

    hf_s = median_seconds(hf, 1)
    anchor = {
        "anchor": "transformers ImageGPTImageProcessor (same 512 centroids)",
        "anchor_images": len(few),
        "anchor_images_per_s": round(len(few) / hf_s, 1),
        "ids_agree": round(float(np.mean(hf() == ids[: len(few)])), 6),
    }
    rows = []
    for label, seconds in (("cold", cold_s), ("warm", warm_s)):
        rate = round(len(images) / seconds, 1)
        rows.append(
            base
            | {"encoder": f"kmeans ({label} colour table)", "tokens_per_image": ids.shape[1]}
            | {
                "images_per_s": rate,
                **anchor,
                "ratio": round(rate / anchor["anchor_images_per_s"], 1),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--resolutions", default="32,64,112")
    parser.add_argument("--images", type=int, default=200, help="held-out faces to encode")
    parser.add_argument("--fit-images", type=int, default=300, help="train faces for the fits")
    parser.add_argument("--vocab", type=int, default=10000, help="BPE vocabulary")
    parser.add_argument("--baseline-images", type=int, default=20, help="for the slow anchors")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.quick:
        args.resolutions, args.images, args.fit_images = "32,112", 20, 40
        args.vocab, args.baseline_images, args.repeats = 2000, 3, 1
    start = machine()
    fitted = fit_encoders(args)
    rows = []
    for size in map(int, args.resolutions.split(",")):
        rows += bench_resolution(size, fitted, args)
    emit({"args": vars(args), "rows": rows}, start)


if __name__ == "__main__":
    main()
