"""Built-in array sources: scikit-learn's digits and sample photos, and ``.npz`` files."""

from __future__ import annotations

import struct
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from toksuite.data.base import Dataset, DataSource, LoadOptions
from toksuite.data.transform import finish, finish_split, to_channels
from toksuite.errors import DataError
from toksuite.npyfile import npz_member_memmap

DEFAULT_TILE = 64


class DigitsSource(DataSource):
    """scikit-learn's 1,797 8×8 grey digits (0–16 scaled to 0–255): embedded, no files needed."""

    name = "digits"
    description = "scikit-learn's 8×8 grey digits, embedded (the default)"

    def load(self, options: LoadOptions) -> Dataset:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        images = np.round(bunch.images * (255 / 16)).astype(np.uint8)[..., None]
        return finish(
            "digits",
            images,
            bunch.target.astype(np.int64),
            options,
            class_names=[str(i) for i in range(10)],
        )


class SampleImagesSource(DataSource):
    """scikit-learn's two bundled photos (427×640) cut into non-overlapping square tiles.

    ``resolution`` sets the tile size (default 64×64) — the photos are tiled, not resized; a crop
    box is applied to each photo before tiling. Unlabelled; the tiles are split at random.
    """

    name = "sample-images"
    description = "scikit-learn's two bundled photos cut into tiles (size = --resolution, 64)"

    def load(self, options: LoadOptions) -> Dataset:
        from sklearn.datasets import load_sample_images

        tile_h, tile_w = options.resolution or (DEFAULT_TILE, DEFAULT_TILE)
        tiles = []
        for photo in load_sample_images().images:
            if options.crop is not None:
                left, top, width, height = options.crop
                if left + width > photo.shape[1] or top + height > photo.shape[0]:
                    raise DataError(
                        f"sample-images: crop box {left},{top},{width},{height} does not fit "
                        f"a {photo.shape[1]}×{photo.shape[0]} photo"
                    )
                photo = photo[top : top + height, left : left + width]
            rows, cols = photo.shape[0] // tile_h, photo.shape[1] // tile_w
            for r in range(rows):
                for c in range(cols):
                    tiles.append(
                        photo[r * tile_h : (r + 1) * tile_h, c * tile_w : (c + 1) * tile_w]
                    )
        if not tiles:
            raise DataError(f"sample-images: tiles of {tile_h}×{tile_w} do not fit in the photos")
        images = to_channels(np.stack(tiles).astype(np.uint8), options.channels)
        # The tiles already have their final size: only the split, limit and channels apply.
        return finish("sample-images", images, None, replace(options, resolution=None, crop=None))


SPLIT_KEYS = ("x_train", "y_train", "x_test", "y_test")


class NpzSource(DataSource):
    """``npz:PATH`` — arrays ``x`` (+ ``y``) or ``x_train``/``y_train``/``x_test``/``y_test``.

    Images are uint8 N×H×W×C (C = 1 or 3) or N×H×W (grey). An optional ``class_names`` string
    array names the labels. Loaded with ``allow_pickle=False``: object arrays are refused.
    Arrays stored uncompressed (``np.savez``) are memory-mapped, not read: a split without
    ``--limit``, crop, resize or channel change reaches the encoder as that map, so its pixels are
    paged in as the images are encoded. A compressed member (``np.savez_compressed``) is
    decompressed into memory once.
    """

    name = "npz"
    description = "arrays x (+ y) or x_train/y_train/x_test/y_test in a .npz file"
    takes_path = True

    def load(self, options: LoadOptions) -> Dataset:
        path = Path(self.argument or "").expanduser()
        spec = f"npz:{path}"
        if not path.is_file():
            raise DataError(f"{path}: no such file")
        with path.open("rb") as handle:
            magic = handle.read(6)
        # np.load takes anything that is neither zip nor .npy for a pickle and advises
        # allow_pickle, which is refused here: say what the file is not instead.
        if not magic.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):
            raise DataError(f"{path}: not a zip/npz archive (no zip or .npy signature)")
        try:
            archive = np.load(path, allow_pickle=False)
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise DataError(f"{path}: not a readable .npz file ({_one_line(exc)})") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(f"{path}: a single .npy array, not a .npz archive with x (+ y)")
        with archive:
            keys = set(archive.files)
            found = ", ".join(sorted(keys)) or "none"
            expected = "expected arrays x (+ y) or x_train, y_train, x_test, y_test"
            names = _class_names(archive, path) if "class_names" in keys else None
            if {"x_train", "x_test"} <= keys:
                labelled = {"y_train", "y_test"} <= keys
                if not labelled and ({"y_train", "y_test"} & keys):
                    raise DataError(f"{path}: has only one of y_train, y_test (found: {found})")
                x_train = _images(archive, "x_train", path)
                x_test = _images(archive, "x_test", path)
                y_train = _labels(archive, "y_train", len(x_train), path) if labelled else None
                y_test = _labels(archive, "y_test", len(x_test), path) if labelled else None
                if x_train.shape[1:] != x_test.shape[1:]:
                    raise DataError(
                        f"{path}: x_train images are {x_train.shape[1:]} but x_test are "
                        f"{x_test.shape[1:]}"
                    )
                return finish_split(spec, x_train, y_train, x_test, y_test, options, names)
            if "x" in keys:
                x = _images(archive, "x", path)
                y = _labels(archive, "y", len(x), path) if "y" in keys else None
                return finish(spec, x, y, options, names)
            raise DataError(f"{path}: {expected}; found: {found}")


def _read(archive, key: str, path: Path) -> np.ndarray:
    try:  # an uncompressed member (np.savez) is mapped in place: pages are read as encoding goes
        mapped = npz_member_memmap(path, key)
    except (OSError, ValueError, zipfile.BadZipFile, struct.error):
        mapped = None  # read it the ordinary way below, which reports what is wrong
    if mapped is not None:
        return mapped
    try:
        return archive[key]
    except ValueError:  # object arrays need pickle, which is refused
        raise DataError(f"{path}: array {key!r} holds Python objects (pickle); refused") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: array {key!r} is unreadable ({_one_line(exc)})") from None


def _images(archive, key: str, path: Path) -> np.ndarray:
    x = _read(archive, key, path)
    if x.dtype != np.uint8:
        raise DataError(f"{path}: {key} is {x.dtype}; expected uint8 pixels 0..255")
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or min(x.shape[1:3], default=0) < 1:
        raise DataError(
            f"{path}: {key} has shape {x.shape}; expected N×H×W×C (C = 1 or 3) or N×H×W"
        )
    return x


def _labels(archive, key: str, n: int, path: Path) -> np.ndarray:
    y = _read(archive, key, path)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: {key} must be 1-D integers, got {y.dtype} of shape {y.shape}")
    if len(y) != n:
        raise DataError(f"{path}: {key} has {len(y)} labels for {n} images")
    return y.astype(np.int64)


def _class_names(archive, path: Path) -> list[str]:
    names = _read(archive, "class_names", path)
    if names.ndim != 1 or names.dtype.kind not in "US":
        raise DataError(f"{path}: class_names must be a 1-D string array")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist()]


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
