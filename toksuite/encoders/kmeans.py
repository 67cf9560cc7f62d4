"""OpenAI iGPT's colour palette: k RGB centroids, one token per pixel (its nearest centroid).

iGPT (Chen et al., 2020) clusters (R, G, B) pixel values with k-means (k = 512) and feeds the
cluster ids to the transformer: H·W tokens per image instead of the 3·H·W of raw sub-pixels.
Decoding paints each pixel with its centroid rounded to 8 bits, so ``quantize(x)`` is that palette
image and ``decode(encode(x)) == quantize(x)`` holds by construction.

OpenAI published their centroids as ``kmeans_centers.npy``: shape (512, 3), floats in [-1, 1] on
the scale ``pixel / 127.5 - 1``. Pass its path as ``centers`` (or use `from_openai_centers`) to
encode exactly as iGPT does instead of learning a palette.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Self

import numpy as np

from toksuite.encoders.base import ID_DTYPE, Decoded, Encoder
from toksuite.encoders.colour_table import colour_table
from toksuite.encoders.kmeans_fit import fit_palette, nearest_centroid, pack_rgb, unpack_rgb
from toksuite.errors import DataError, EncoderParamError, ManifestError
from toksuite.progress import progress_bar, status

CENTROIDS_FILE = "centroids.npy"
_COLOURS = 1 << 24  # every 8-bit RGB colour
_UNKNOWN, _PENDING = -1, -2  # colour → id table entries that are not ids (yet)


class KMeansEncoder(Encoder):
    """k-means colour palette (iGPT): H·W tokens, ids are palette indices.

    Parameters: ``k`` centroids, fitted on ``sample_pixels`` pixels drawn at random from the
    training images; k-means++ seeding on the distinct colours of ``init_pixels`` of those; Lloyd's
    iterations until no pixel changes cluster, the relative drop in inertia is at most ``tol``, or
    ``max_iter``. ``centers``: path to OpenAI's ``kmeans_centers.npy``, loaded instead of fitting.
    """

    name = "kmeans"
    channels = 3
    description = "iGPT colour palette: k RGB centroids, one token per pixel"

    def __init__(
        self,
        *,
        k: int = 512,
        sample_pixels: int = 1_000_000,
        init_pixels: int = 200_000,
        max_iter: int = 100,
        tol: float = 1e-4,
        centers: str | None = None,
    ) -> None:
        for param, value, low in (
            ("k", k, 1),
            ("sample_pixels", sample_pixels, 1),
            ("init_pixels", init_pixels, 1),
            ("max_iter", max_iter, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise EncoderParamError(
                    f"kmeans: {param} must be an integer >= {low}, got {value!r}"
                )
        if k > 1 << 15:
            raise EncoderParamError(f"kmeans: k={k} is more than 32768 centroids")
        if not (isinstance(tol, int | float) and tol >= 0):
            raise EncoderParamError(f"kmeans: tol must be a number >= 0, got {tol!r}")
        self.k = k
        self.sample_pixels = sample_pixels
        self.init_pixels = init_pixels
        self.max_iter = max_iter
        self.tol = float(tol)
        self.centers = None if centers is None else str(centers)
        self._lookup: np.ndarray | None = None
        self._lookup_complete = False  # every colour's id is in the table (see `colour_table`)

    # ------------------------------------------------------------------ fitted state
    @property
    def is_fitted(self) -> bool:
        return getattr(self, "centroids_", None) is not None

    def _set_centroids(self, centroids: np.ndarray) -> None:
        # float64: OpenAI's float32 centres in [-1, 1] map to 0..255 without rounding, so ids
        # match iGPT's own nearest-centre search.
        self.centroids_ = np.ascontiguousarray(centroids, dtype=np.float64)
        self.palette_ = np.clip(np.rint(self.centroids_), 0, 255).astype(np.uint8)
        self._lookup = None  # ids of colours seen so far belong to the old centroids
        self._lookup_complete = False

    @property
    def vocab_size(self) -> int:
        return len(self.centroids_) if self.is_fitted else self.k

    def sequence_length(self, height: int, width: int) -> int:
        return height * width

    # ------------------------------------------------------------------ fitting
    def fit(self, images: Sequence[np.ndarray] | np.ndarray, *, seed: int = 0) -> Self:
        """Learn the palette from ``images`` (or load ``centers`` when that is set)."""
        if self.centers is not None:
            centroids = read_openai_centers(self.centers)
            if len(centroids) != self.k:
                raise EncoderParamError(
                    f"{self.centers}: holds {len(centroids)} centres but k={self.k}; "
                    f"pass k={len(centroids)}"
                )
            self._set_centroids(centroids)
            return self
        rng = np.random.default_rng(seed)
        pixels = self._sample_pixels(images, rng)
        with progress_bar(f"k-means (k={self.k})", total=self.max_iter) as advance:
            result = fit_palette(
                pixels,
                self.k,
                rng=rng,
                init_pixels=self.init_pixels,
                max_iter=self.max_iter,
                tol=self.tol,
                on_iteration=lambda _i, _inertia: advance(1),
            )
        if result.colours < self.k:
            status(f"kmeans: {result.colours} distinct colours for k={self.k}; spare ids unused")
        self.inertia_ = result.inertia
        self.n_iter_ = result.n_iter
        self._set_centroids(result.centroids)
        return self

    def _sample_pixels(
        self, images: Sequence[np.ndarray] | np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """At most ``sample_pixels`` pixels, uniformly over all pixels of all images, as (n, 3)."""
        if isinstance(images, np.ndarray) and images.ndim == 4:
            if len(images):
                self.check_image(images[0])  # dtype and channels, with the usual clear error
            flats = [images.reshape(-1, 3)] if len(images) else []
        else:
            flats = [self.check_image(image).reshape(-1, 3) for image in images]
        if not flats:
            raise DataError("kmeans: fit needs at least one image")
        sizes = np.array([len(f) for f in flats])
        total = int(sizes.sum())
        if total <= self.sample_pixels:
            return np.concatenate(flats)
        chosen = np.sort(rng.choice(total, self.sample_pixels, replace=False))
        # Gather image by image rather than concatenating everything (CelebA at 112×112 would
        # be ~225 MB of pixels for a 3 MB sample).
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        cuts = np.searchsorted(chosen, bounds)
        parts = [
            flats[i][chosen[cuts[i] : cuts[i + 1]] - bounds[i]]
            for i in range(len(flats))
            if cuts[i + 1] > cuts[i]
        ]
        return np.concatenate(parts)

    @classmethod
    def from_openai_centers(cls, path: str | Path) -> KMeansEncoder:
        """A fitted encoder with OpenAI's published ``kmeans_centers.npy``."""
        k = len(read_openai_centers(path))
        return cls(k=k, centers=str(path)).fit([])

    # ------------------------------------------------------------------ encoding
    def _ids(self, pixels: np.ndarray) -> np.ndarray:
        """Nearest-centroid ids of (n, 3) uint8 pixels.

        A colour → id table over all 2^24 colours (32 MB) is filled lazily: each new colour is
        searched once, exactly, and every later pixel of that colour is a table read. Images hold
        few distinct colours compared with their pixels, so batches get cheaper as it fills.
        """
        self._check_fitted()
        if self._lookup is None:
            self._lookup = np.full(_COLOURS, _UNKNOWN, dtype=np.int16)
        codes = pack_rgb(pixels)
        ids = self._lookup[codes]
        missing = ids < 0
        if missing.any():
            unseen = codes[missing]
            # Mark, then scan the table: cheaper than sorting millions of codes with np.unique.
            self._lookup[unseen] = _PENDING
            new = np.flatnonzero(self._lookup == _PENDING)
            labels, _ = nearest_centroid(unpack_rgb(new).astype(np.float64), self.centroids_)
            self._lookup[new] = labels
            ids[missing] = self._lookup[unseen]
        return ids.astype(ID_DTYPE)

    def colour_table(self, images: np.ndarray | None = None) -> np.ndarray:
        """The colour → id table (``r << 16 | g << 8 | b``) holding at least the colours
        of ``images`` (N×H×W×3 uint8): complete, computed once in compiled code
        (`toksuite.encoders.colour_table`), or without numba filled for these colours."""
        self._check_fitted()
        if not self._lookup_complete:
            table = colour_table(self.centroids_)
            if table is not None:
                self._lookup, self._lookup_complete = table, True
            elif images is not None and len(images):
                self._ids(np.asarray(images, np.uint8).reshape(-1, 3))
        if self._lookup is None:
            self._lookup = np.full(_COLOURS, _UNKNOWN, dtype=np.int16)
        return self._lookup

    def encode(self, image: np.ndarray) -> np.ndarray:
        return self._ids(self.check_image(image).reshape(-1, 3))

    def encode_array(self, images: np.ndarray) -> np.ndarray:
        """N×H×W×3 uint8 images → N×(H·W) ids in one array."""
        self.check_image(images[0])
        n, h, w = images.shape[:3]
        return self._ids(images.reshape(-1, 3)).reshape(n, h * w)

    def encode_batch(self, images: Iterable[np.ndarray]) -> list[np.ndarray]:
        if isinstance(images, np.ndarray) and images.ndim == 4 and images.dtype == np.uint8:
            return list(self.encode_array(images)) if len(images) else []
        checked = [self.check_image(image) for image in images]
        if not checked:
            return []
        ids = self._ids(np.concatenate([image.reshape(-1, 3) for image in checked]))
        ends = np.cumsum([image.shape[0] * image.shape[1] for image in checked])
        return np.split(ids, ends[:-1])

    def quantize(self, image: np.ndarray) -> np.ndarray:
        image = self.check_image(image)
        ids = self._ids(image.reshape(-1, 3))  # checks that the encoder is fitted
        return self.palette_[ids].reshape(image.shape)

    def decode_checked(self, ids: Sequence[int] | np.ndarray, shape: Sequence[int]) -> Decoded:
        self._check_fitted()
        h, w, c = self.output_shape(shape)
        ids, notes = self.repair_ids(ids, h * w)  # vocab_size: the palette's colours
        image = self.palette_[ids].reshape(h, w, c)
        return Decoded(image, repairs=len(notes), notes=tuple(notes))

    # ------------------------------------------------------------------ persistence
    def _save_state(self, directory: Path) -> None:
        np.save(directory / CENTROIDS_FILE, self.centroids_, allow_pickle=False)

    def _load_state(self, directory: Path) -> None:
        path = Path(directory) / CENTROIDS_FILE
        centroids = _read_npy(path, ManifestError)
        if centroids.shape != (self.k, 3):
            raise ManifestError(f"{path}: shape {centroids.shape}, expected ({self.k}, 3)")
        if not (np.isfinite(centroids).all() and centroids.min() >= 0 and centroids.max() <= 255):
            raise ManifestError(f"{path}: centroids must be finite values in 0..255")
        self._set_centroids(centroids)


def read_openai_centers(path: str | Path) -> np.ndarray:
    """OpenAI's ``kmeans_centers.npy`` (n, 3) in [-1, 1] as centroids on the 0..255 scale.

    ``(c + 1) * 127.5`` is exact in float64 for float32 ``c``, so distances are iGPT's own scaled by
    127.5² and the nearest centre is the same.
    """
    centers = _read_npy(Path(path), DataError)
    if centers.ndim != 2 or centers.shape[1] != 3 or len(centers) < 1:
        raise DataError(f"{path}: shape {centers.shape}, expected (n, 3) RGB centres (OpenAI: 512)")
    if not np.isfinite(centers).all() or centers.min() < -1 or centers.max() > 1:
        raise DataError(
            f"{path}: values must lie in [-1, 1] (pixel / 127.5 - 1), found "
            f"{np.nanmin(centers):.3g}..{np.nanmax(centers):.3g}"
        )
    return (centers.astype(np.float64) + 1.0) * 127.5


def _read_npy(path: Path, error: type[Exception]) -> np.ndarray:
    """A numeric .npy file, never unpickling; anything else is ``error`` naming the file."""
    if not path.is_file():
        raise error(f"{path}: no such file")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        reason = " ".join(str(exc).split())
        raise error(f"{path}: not a plain numeric .npy file ({reason})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        raise error(f"{path}: expected a numeric array, got {getattr(array, 'dtype', type(array))}")
    return array
