"""``folder:PATH`` — a folder of image files, decoded on a thread pool.

Layouts (entries whose names start with ``.`` are ignored everywhere):

* ``PATH/train/…`` and ``PATH/test/…`` give the split (``train/`` alone is split at random);
  inside each, as below;
* ``PATH/<class>/…`` — each sub-folder is a class (sorted names → labels 0..n−1; images are found
  at any depth below it);
* ``PATH/*.jpg`` — a flat folder: unlabelled, split at random.

Image files are recognised by extension (jpg, jpeg, png, bmp, gif, webp, tif, tiff, any case).
Other files are ignored and counted in ``Dataset.notes``; a file with an image extension that does
not decode is a bad file (``on_error``: stop with its name, or skip and count).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar, cast

import numpy as np
from PIL import Image

from toksuite.data.base import Dataset, DataSource, LoadOptions
from toksuite.data.images import Geometry, is_image_name, read_image
from toksuite.data.transform import limit_indices, parallel_map, split
from toksuite.errors import DataError
from toksuite.progress import status

T = TypeVar("T")


class _Listing:
    """Image paths with optional labels, plus how many non-image files were passed over."""

    def __init__(self) -> None:
        self.paths: list[Path] = []
        self.labels: list[int] = []
        self.ignored = 0


def _visible(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    except OSError as exc:
        raise DataError(f"{folder}: cannot list folder ({exc.strerror or exc})") from None


def _images_below(folder: Path, listing: _Listing) -> list[Path]:
    found = []
    for entry in _visible(folder):
        if entry.is_dir():
            found += _images_below(entry, listing)
        elif is_image_name(entry):
            found.append(entry)
        else:
            listing.ignored += 1
    return found


def _classes(folder: Path) -> list[str]:
    return [p.name for p in _visible(folder) if p.is_dir()]


def _scan(folder: Path, class_names: list[str] | None, listing: _Listing) -> None:
    """Fill ``listing`` from one split folder; ``class_names`` None means a flat folder."""
    if class_names is None:
        for entry in _visible(folder):
            if entry.is_file() and is_image_name(entry):
                listing.paths.append(entry)
            elif entry.is_file():
                listing.ignored += 1
        return
    loose = [p for p in _visible(folder) if p.is_file() and is_image_name(p)]
    if loose:
        raise DataError(
            f"{folder}: holds both class sub-folders and loose images (e.g. {loose[0].name}); "
            "put every image in a class folder, or use a flat folder"
        )
    for label, name in enumerate(class_names):
        if (folder / name).is_dir():
            images = _images_below(folder / name, listing)
            listing.paths += images
            listing.labels += [label] * len(images)


class FolderSource(DataSource):
    """Image files in class sub-folders (labelled), a flat folder, or ``train/`` + ``test/``."""

    name = "folder"
    aliases = ("dir",)
    description = "image folder: class sub-folders, flat, or train/ and test/ sub-folders"
    takes_path = True

    def load(self, options: LoadOptions) -> Dataset:
        root = Path(self.argument or "").expanduser()
        if not root.is_dir():
            raise DataError(f"{root}: no such folder")
        spec = f"folder:{root}"
        has_split = (root / "train").is_dir()
        split_dirs = [root / "train"] + ([root / "test"] if (root / "test").is_dir() else [])
        layout_dirs = split_dirs if has_split else [root]
        class_names = sorted({c for d in layout_dirs for c in _classes(d)}) or None

        listings = []
        for folder in layout_dirs:
            listing = _Listing()
            _scan(folder, class_names, listing)
            listings.append(listing)
        if not any(listing.paths for listing in listings):
            raise DataError(
                f"{root}: no image files (looked for .jpg .jpeg .png .bmp .gif .webp .tif .tiff"
                + (" in train/ and test/)" if has_split else ")")
            )
        labelled = class_names is not None

        if len(listings) == 2:
            train_paths, test_paths = listings[0].paths, listings[1].paths
            train_labels, test_labels = listings[0].labels, listings[1].labels
            tr = limit_indices(np.arange(len(train_paths)), options.limit, options.seed, 0)
            te = limit_indices(np.arange(len(test_paths)), options.limit, options.seed, 1)
            train = [(train_paths[i], train_labels[i] if labelled else -1) for i in tr]
            test = [(test_paths[i], test_labels[i] if labelled else -1) for i in te]
        else:
            paths, labels = listings[0].paths, listings[0].labels
            tr, te = split(len(paths), options.test_fraction, options.seed)
            tr = limit_indices(tr, options.limit, options.seed, 0)
            te = limit_indices(te, options.limit, options.seed, 1)
            train = [(paths[i], labels[i] if labelled else -1) for i in tr]
            test = [(paths[i], labels[i] if labelled else -1) for i in te]

        images, kept, skipped = load_files([p for p, _ in train + test], options, root.name)
        n_train = len(train)
        keep_train = [k for k in kept if k < n_train]
        keep_test = [k - n_train for k in kept if k >= n_train]
        x = images
        x_train, x_test = x[: len(keep_train)], x[len(keep_train) :]
        y_train = np.array([train[i][1] for i in keep_train], np.int64) if labelled else None
        y_test = np.array([test[i][1] for i in keep_test], np.int64) if labelled else None
        dataset = Dataset(
            spec,
            x_train,
            x_test,
            y_train,
            y_test,
            class_names,
            skipped=len(skipped),
            skipped_files=skipped,
        )
        ignored = sum(listing.ignored for listing in listings)
        if ignored:
            dataset.notes.append(f"ignored {ignored} files without an image extension")
        if skipped:
            dataset.notes.append(f"skipped {len(skipped)} unreadable image files")
        return dataset


def load_files(
    paths: Sequence[T],
    options: LoadOptions,
    description: str,
    read: Callable[[T, Geometry], np.ndarray] | None = None,
) -> tuple[np.ndarray, list[int], list[dict[str, str]]]:
    """Decode ``paths`` in parallel → (N×H×W×C array, indices of the files kept, skipped files).

    ``read(item, geometry)`` decodes one item (default: `read_image` on a path); items whose
    ``str`` names them let other containers (a parquet column) share the same error handling.
    With ``on_error="stop"`` the first bad file raises its DataError; with ``"skip"`` bad files
    are left out, each returned as ``{"file": path, "reason": why}``, and one warning line goes
    to stderr.
    """
    geometry = Geometry(options.crop, options.resolution, options.channels)
    read = read or (lambda path, geometry: read_image(cast(Path, path), geometry=geometry))

    def one(path: T) -> np.ndarray | DataError:
        try:
            return read(path, geometry)
        except DataError as exc:
            if options.on_error == "stop":
                raise
            return exc

    out: np.ndarray | None = None  # filled in place: no second copy of the whole dataset
    kept: list[int] = []
    errors: list[tuple[T, DataError]] = []
    with warnings.catch_warnings():
        # read_image refuses oversized images itself; PIL's warning would only add noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        for i, result in enumerate(parallel_map(one, paths, options, f"loading {description}")):
            if isinstance(result, DataError):
                errors.append((paths[i], result))
                continue
            if out is None:
                out = np.empty((len(paths), *result.shape), np.uint8)
            elif result.shape != out.shape[1:]:
                out, result = _reconcile(out, result, paths[kept[0]], paths[i])
            out[len(kept)] = result
            kept.append(i)
    if errors:
        status(
            f"[yellow]warning:[/] skipped {len(errors)} unreadable image file(s), "
            f"first: {errors[0][1]}"
        )
    if out is None:
        raise DataError(f"{description}: none of the {len(paths)} image files could be read")
    skipped = [{"file": str(path), "reason": _reason(path, exc)} for path, exc in errors]
    return (out[: len(kept)].copy() if errors else out), kept, skipped


def _reason(path: object, exc: DataError) -> str:
    """The error without its leading ``PATH: `` (the file is recorded beside it)."""
    text = str(exc)
    return text.removeprefix(f"{path}: ")


def _reconcile(
    out: np.ndarray, image: np.ndarray, first: object, path: object
) -> tuple[np.ndarray, np.ndarray]:
    """Grey and colour files in one folder (no channels asked for): make them all RGB.

    Images of different sizes cannot be stacked: fail at once, naming both files.
    """
    if image.shape[:2] != out.shape[1:3]:
        raise DataError(
            f"images differ in size ({first} is {out.shape[2]}×{out.shape[1]}, {path} is "
            f"{image.shape[1]}×{image.shape[0]}); pass --resolution (e.g. --resolution 64)"
        )
    if out.shape[3] == 1:
        return np.repeat(out, 3, axis=3), image
    return out, np.repeat(image, 3, axis=2)
