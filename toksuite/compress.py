"""A pretrained run as a lossless image codec: its model drives a range coder (constriction).

This is what ``bits_per_image`` claims made concrete: the encoder turns an image into tokens, the
model gives each next token a probability, and constriction's range coder spends about
``-log2 p`` bits on it. The file decodes back, bit for bit, to ``quantize(image)``.

File format (``.tsz``), little-endian: the header ``b"TSZ1"``, H, W (uint16), C (uint8), the
number of tokens (uint32), then the range coder's 32-bit words. The header (15 bytes) is what the
code length does not count: the shape, which ``bits_per_image`` assumes the decoder is told, and
the token count, which lets the decoder stop without knowing how many pixels a token covers.

Both directions step the model one token at a time with its KV cache, in float32 on the CPU with
one thread, and turn the logits into float64 probabilities the same way, so the coder sees the
same distributions when it decodes as when it encoded. That holds on the same software stack;
like any neural codec, a file may not decode on another build of torch or another CPU.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from toksuite.errors import DataError

MAGIC = b"TSZ1"
HEADER = struct.Struct("<4sHHBI")


@dataclass
class Compressed:
    data: bytes  # the whole .tsz file
    tokens: int
    code_length_bits: float  # sum of -log2 p over the tokens, from the same probabilities

    @property
    def payload_bits(self) -> int:
        return 8 * (len(self.data) - HEADER.size)


def _probabilities(model, bos_id: int) -> Generator[np.ndarray, int, None]:
    """The model's next-token distributions, one per ``send(token)``, starting after BOS."""
    cache = None
    token = bos_id
    with torch.no_grad():
        while True:
            out = model(torch.tensor([[token]]), cache=cache, use_cache=True)
            cache = out.cache
            logits = out.logits[0, -1].double()
            token = yield torch.softmax(logits, dim=-1).numpy()


def _coder_model():
    import constriction

    return constriction.stream.model.Categorical(perfect=False)


@contextmanager
def _steps(model, bos_id: int) -> Iterator[Generator[np.ndarray, int, None]]:
    """`_probabilities` on one CPU thread (the same arithmetic when coding and decoding)."""
    from toksuite.threads import cpu_threads

    with cpu_threads(1):
        steps = _probabilities(model.float().cpu().eval(), bos_id)
        try:
            yield steps
        finally:
            steps.close()


def compress_ids(model, ids: np.ndarray, bos_id: int) -> tuple[np.ndarray, float]:
    """The range coder's words for ``ids`` under ``model``, and their code length in bits."""
    import constriction

    coder, categorical = constriction.stream.queue.RangeEncoder(), _coder_model()
    bits = 0.0
    with _steps(model, bos_id) as steps:
        probs = next(steps)
        for i, token in enumerate(int(t) for t in ids):
            bits -= math.log2(probs[token])
            coder.encode(np.array([token], np.int32), categorical, probs[None])
            if i + 1 < len(ids):
                probs = steps.send(token)
    return coder.get_compressed(), bits


def decompress_ids(model, words: np.ndarray, n_tokens: int, bos_id: int) -> np.ndarray:
    """The ``n_tokens`` ids that `compress_ids` coded into ``words``."""
    import constriction

    coder, categorical = constriction.stream.queue.RangeDecoder(words), _coder_model()
    ids = np.zeros(n_tokens, np.int64)
    with _steps(model, bos_id) as steps:
        probs = next(steps)
        for i in range(n_tokens):
            ids[i] = int(coder.decode(categorical, probs[None])[0])
            if i + 1 < n_tokens:
                probs = steps.send(int(ids[i]))
    return ids


def compress_image(encoder, model, bos_id: int, image: np.ndarray) -> Compressed:
    """One image (H×W×C uint8, the run's shape) → a .tsz file's bytes."""
    h, w, c = image.shape
    ids = encoder.encode(image)
    context = model.config.n_positions
    if 1 + len(ids) > context:
        raise DataError(
            f"the image needs {len(ids)} tokens, more than the run's context of {context} "
            "(BOS included) holds"
        )
    words, bits = compress_ids(model, ids, bos_id)
    header = HEADER.pack(MAGIC, h, w, c, len(ids))
    return Compressed(header + words.astype("<u4").tobytes(), len(ids), bits)


def decompress_image(
    encoder, model, bos_id: int, data: bytes, *, shape: tuple[int, int], name: str = "data"
) -> np.ndarray:
    """A .tsz file's bytes → the quantised ``shape`` image it holds (H×W×C uint8)."""
    if len(data) < HEADER.size or data[:4] != MAGIC:
        raise DataError(f"{name}: not a toksuite compressed image (no {MAGIC.decode()} header)")
    _, h, w, c, n_tokens = HEADER.unpack_from(data)
    body = data[HEADER.size :]
    too_long = 1 + n_tokens > model.config.n_positions
    if len(body) % 4 or c != encoder.channels or (h, w) != tuple(shape) or too_long:
        raise DataError(
            f"{name}: corrupt, or not written by this run ({h}×{w}×{c}, {n_tokens} tokens, "
            f"{len(body)} payload bytes; the run codes {shape[0]}×{shape[1]}×{encoder.channels})"
        )
    words = np.frombuffer(body, "<u4").astype(np.uint32)
    try:
        ids = decompress_ids(model, words, n_tokens, bos_id)
    except (ValueError, RuntimeError) as exc:  # the range decoder ran out of or choked on data
        raise DataError(f"{name}: corrupt payload ({exc})") from None
    decoded = encoder.decode_checked(ids, (h, w))
    if decoded.repairs:  # a foreign model or a damaged file: the ids are not an image
        raise DataError(f"{name}: does not decode with this run ({'; '.join(decoded.notes)})")
    return decoded.image


# ---------------------------------------------------------------------------- the commands' core
def _run_images(run, paths: list[Path], heldout: int) -> list[tuple[str, np.ndarray]]:
    """(name, image) pairs: image files framed as the run's data, or its first held-out images."""
    from toksuite.data import load_dataset
    from toksuite.data.images import Geometry, read_image

    options = run.load_options()
    geometry = Geometry(options.crop, run.info.image_hw, run.encoder.channels)
    pairs = [(Path(p).stem, read_image(p, geometry=geometry)) for p in paths]
    if heldout:
        test = load_dataset(run.info.options.data, options).x_test
        if heldout > len(test):
            raise DataError(f"--heldout {heldout}: the run has {len(test)} held-out images")
        pairs += [(f"heldout-{i:05d}", test[i]) for i in range(heldout)]
    return pairs


def compress_files(
    run_dir: str | Path,
    paths: list[Path],
    *,
    heldout: int = 0,
    out: str | Path | None = None,
    verify: bool = True,
) -> dict:
    """Compress image files and/or the run's first held-out images to ``out/NAME.tsz``."""
    from toksuite.io import write_bytes_atomic
    from toksuite.progress import progress_bar
    from toksuite.train.rundir import BITS_FILE, load_run

    run = load_run(run_dir)
    bos = run.info.model.bos_id
    out = Path(out) if out is not None else Path(run_dir) / "compressed"
    pairs = _run_images(run, paths, heldout)
    if not pairs:
        raise DataError("nothing to compress: give image files or --heldout N")
    bits_file = Path(run_dir) / BITS_FILE
    reported = np.load(bits_file, allow_pickle=False) if heldout and bits_file.is_file() else None
    rows = []
    with progress_bar(f"compressing with {run.encoder.name}", len(pairs)) as advance:
        for name, image in pairs:
            c = compress_image(run.encoder, run.model, bos, image)
            path = out / f"{name}.tsz"
            write_bytes_atomic(path, c.data)
            row = {
                "image": name,
                "tokens": c.tokens,
                "code_length_bits": c.code_length_bits,
                "file_bytes": len(c.data),
                "payload_bits": c.payload_bits,
                "overhead": c.payload_bits / c.code_length_bits - 1,
                "out": str(path),
            }
            if verify:
                back = decompress_image(
                    run.encoder, run.model, bos, c.data, shape=image.shape[:2], name=str(path)
                )
                row["round_trip"] = bool(np.array_equal(back, run.encoder.quantize(image)))
            if reported is not None and name.startswith("heldout-"):
                row["heldout_bits"] = float(reported[int(name.split("-")[1])])
            rows.append(row)
            advance(1)
    return {
        "run": str(run_dir),
        "encoder": run.encoder.name,
        "images": rows,
        "code_length_bits": sum(r["code_length_bits"] for r in rows),
        "payload_bits": sum(r["payload_bits"] for r in rows),
        "header_bytes_per_file": HEADER.size,
        "definitions": {
            "code_length_bits": "sum of -log2 p over the image's tokens under the run's model",
            "payload_bits": "8 × (file bytes - header): what the range coder wrote",
            "overhead": "payload_bits / code_length_bits - 1",
            "round_trip": "the file decodes, bit for bit, to quantize(image)",
            "heldout_bits": f"the image's code length in the run's {BITS_FILE}",
        },
    }


def decompress_files(run_dir: str | Path, paths: list[Path], *, out: str | Path) -> dict:
    """Decode .tsz files written with this run to PNGs in ``out``."""
    from toksuite.data.images import write_png
    from toksuite.train.rundir import load_run

    run = load_run(run_dir)
    bos = run.info.model.bos_id
    rows = []
    for path in map(Path, paths):
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
        image = decompress_image(
            run.encoder, run.model, bos, data, shape=run.info.image_hw, name=str(path)
        )
        target = Path(out) / f"{path.stem}.png"
        write_png(target, image)
        rows.append({"file": str(path), "shape": list(image.shape), "out": str(target)})
    return {"run": str(run_dir), "encoder": run.encoder.name, "images": rows}
