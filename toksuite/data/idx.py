"""``idx:PATH`` (alias ``mnist``) — MNIST-style IDX files: MNIST, Fashion-MNIST, KMNIST.

An IDX file is a 4-byte magic (two zero bytes, a dtype code, the number of dimensions), one
big-endian uint32 per dimension, then the values row-major. Images are ``idx3`` (N×H×W) uint8
(code 0x08), labels ``idx1`` (N) uint8. Read with numpy, plain or ``.gz``.

``PATH`` is a folder holding ``train-images-idx3-ubyte`` + ``train-labels-idx1-ubyte`` and/or
``t10k-images-idx3-ubyte`` + ``t10k-labels-idx1-ubyte`` (each plain or ``.gz``; ``.`` instead of
the ``-`` before ``idx`` is accepted too, as some copies spell it), or one images file, whose
labels file beside it is used when present. Both pairs give the official split; one pair is split
at random.

The header is checked before anything is allocated: the dims must account for the file's length
(for ``.gz``, the uncompressed length the gzip trailer records), so a corrupt header is one line,
not a huge allocation.
"""

from __future__ import annotations

import gzip
import re
import struct
import zlib
from pathlib import Path

import numpy as np

from toksuite.data.base import Dataset, DataSource, LoadOptions
from toksuite.data.transform import finish, finish_split
from toksuite.errors import DataError

UBYTE = 0x08
DTYPE_NAMES = {0x08: "uint8", 0x09: "int8", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32"}
DTYPE_NAMES[0x0E] = "float64"
# Deflate cannot expand by more than about 1032:1, so a header claiming more than this many
# bytes per compressed byte is a lie that needs no decompressing to catch.
MAX_DEFLATE_RATIO = 1032
CHUNK = 1 << 24
# "train-images-idx3-ubyte", "t10k-labels.idx1-ubyte.gz", "emnist-digits-train-images-idx3-ubyte"
FILE_NAME = re.compile(r"(?:^|.*-)(train|t10k)-(images|labels)[-.]idx([13])-ubyte(\.gz)?$")


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _gzip_length(path: Path) -> int:
    """The uncompressed length mod 2³² that the gzip trailer records."""
    with path.open("rb") as handle:
        handle.seek(-4, 2)
        return struct.unpack("<I", handle.read(4))[0]


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """One IDX file of uint8 values with ``ndim`` dimensions → an array of that shape."""
    try:
        return _read_idx(path, ndim)
    except (OSError, EOFError, zlib.error) as exc:  # gzip raises BadGzipFile (an OSError)
        detail = getattr(exc, "strerror", None) or " ".join(str(exc).split())
        raise DataError(f"{path}: unreadable ({detail or type(exc).__name__})") from None


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    compressed = path.suffix == ".gz"
    stored = path.stat().st_size
    if compressed and stored < 18:  # a gzip header and trailer alone are 18 bytes
        raise DataError(f"{path}: not a gzip file ({stored} bytes)")
    with _open(path) as handle:
        magic = handle.read(4)
        if len(magic) < 4 or magic[:2] != b"\0\0":
            raise DataError(f"{path}: not an IDX file (magic {magic.hex() or 'missing'})")
        code, dims = magic[2], magic[3]
        if code != UBYTE:
            kind = DTYPE_NAMES.get(code, "unknown")
            raise DataError(f"{path}: IDX dtype code 0x{code:02x} ({kind}); expected 0x08 (uint8)")
        if dims != ndim:
            raise DataError(f"{path}: IDX file with {dims} dimensions; expected {ndim}")
        raw = handle.read(4 * dims)
        if len(raw) < 4 * dims:
            raise DataError(f"{path}: truncated IDX header")
        shape = struct.unpack(f">{dims}I", raw)
        expected = int(np.prod(shape, dtype=np.int64))
        header = 4 + 4 * dims
        if compressed:
            recorded = _gzip_length(path)
            if (header + expected) % 2**32 != recorded:
                raise DataError(
                    f"{path}: header says {'×'.join(map(str, shape))} = {expected} bytes of "
                    f"values, but the file decompresses to {recorded - header}"
                )
            if expected > MAX_DEFLATE_RATIO * stored:
                raise DataError(
                    f"{path}: header says {'×'.join(map(str, shape))} = {expected} bytes of "
                    f"values, more than {stored} compressed bytes can hold"
                )
        elif header + expected != stored:
            raise DataError(
                f"{path}: header says {'×'.join(map(str, shape))} = {expected} bytes of values, "
                f"but the file holds {stored - header}"
            )
        values = np.empty(expected, np.uint8)
        view, filled = values.data, 0
        while filled < expected:
            got = handle.readinto(view[filled : filled + CHUNK])
            if not got:
                raise DataError(f"{path}: truncated: {filled} of {expected} bytes of values")
            filled += got
        if handle.read(1):
            raise DataError(f"{path}: longer than its header says ({expected} bytes of values)")
    return values.reshape(shape)


def _find(folder: Path) -> dict[tuple[str, str], Path]:
    """``{("train", "images"): path, …}`` for the IDX files in ``folder``; one per role."""
    found: dict[tuple[str, str], list[Path]] = {}
    for entry in sorted(folder.iterdir()):
        match = FILE_NAME.match(entry.name)
        if match and entry.is_file() and (match[2] == "images") == (match[3] == "3"):
            found.setdefault((match[1], match[2]), []).append(entry)
    for (split, role), paths in found.items():
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            raise DataError(f"{folder}: more than one {split} {role} file ({names}); keep one")
    return {key: paths[0] for key, paths in found.items()}


def _labels_beside(images: Path) -> Path | None:
    match = FILE_NAME.match(images.name)
    if not match or match[2] != "images":
        return None
    stem = images.name[: match.start(2)] + "labels"
    for suffix in ("-idx1-ubyte", ".idx1-ubyte", "-idx1-ubyte.gz", ".idx1-ubyte.gz"):
        if (images.parent / (stem + suffix)).is_file():
            return images.parent / (stem + suffix)
    return None


def _pair(images_path: Path, labels_path: Path | None) -> tuple[np.ndarray, np.ndarray | None]:
    images = read_idx(images_path, 3)[..., None]  # N×H×W → N×H×W×1 (grey)
    if labels_path is None:
        return images, None
    labels = read_idx(labels_path, 1)
    if len(labels) != len(images):
        raise DataError(f"{labels_path}: {len(labels)} labels for {len(images)} images")
    return images, labels.astype(np.int64)


class IdxSource(DataSource):
    """MNIST-style IDX files (MNIST, Fashion-MNIST, KMNIST): a folder or one images file."""

    name = "idx"
    aliases = ("mnist",)
    description = "MNIST-style IDX files (.gz or plain): a folder of train/t10k pairs, or one file"
    takes_path = True

    def load(self, options: LoadOptions) -> Dataset:
        path = Path(self.argument or "").expanduser()
        spec = f"idx:{path}"
        if path.is_file():
            images, labels = _pair(path, _labels_beside(path))
            return finish(spec, images, labels, options)
        if not path.is_dir():
            raise DataError(f"{path}: no such file or folder")
        files = _find(path)
        splits = [s for s in ("train", "t10k") if (s, "images") in files]
        if not splits:
            raise DataError(
                f"{path}: no IDX images file (looked for train-images-idx3-ubyte and "
                "t10k-images-idx3-ubyte, plain or .gz)"
            )
        labelled = [s for s in splits if (s, "labels") in files]
        if labelled and len(labelled) < len(splits):
            missing = next(s for s in splits if s not in labelled)
            raise DataError(f"{path}: has {labelled[0]} labels but no {missing} labels file")
        pairs = [_pair(files[(s, "images")], files.get((s, "labels"))) for s in splits]
        if len(pairs) == 1:
            return finish(spec, *pairs[0], options)
        (x_train, y_train), (x_test, y_test) = pairs
        if x_train.shape[1:] != x_test.shape[1:]:
            raise DataError(
                f"{path}: train images are {x_train.shape[1]}×{x_train.shape[2]} but t10k "
                f"images are {x_test.shape[1]}×{x_test.shape[2]}"
            )
        return finish_split(spec, x_train, y_train, x_test, y_test, options)
