"""``hf:PATH`` — Hugging Face datasets saved locally, read with the ``datasets`` library.

``PATH`` is one of:

* a ``save_to_disk`` folder: one ``Dataset`` (``state.json``) or a ``DatasetDict``
  (``dataset_dict.json`` with a folder per split);
* a ``.parquet`` or ``.arrow`` file (one split);
* a folder of ``.parquet`` / ``.arrow`` files (at any depth, as a Hub download lays them out),
  grouped into splits by the file name's first word: ``train-00000-of-00002.parquet`` and
  ``train-00001-of-00002.parquet`` are ``train``, ``test.parquet`` is ``test``.

Options follow the path as a query string, ``hf:PATH?image=img&label=fine_label&test=valid``:
``image`` (default: the only column of the ``Image`` feature, or one named ``image``/``img``),
``label`` (default: a column named ``label``/``labels``, or the only ``ClassLabel`` one; ``none``
for unlabelled), ``train`` (default ``train``, or the only split) and ``test`` (default ``test``,
else ``validation``; ``none`` splits the train split at random). Class names come from the
``ClassLabel`` feature; a string label column is mapped to sorted names.

Only the rows that the split and ``--limit`` keep are decoded, on the same thread pool as image
folders. Nothing is downloaded: ``HF_DATASETS_OFFLINE`` is set before ``datasets`` is imported, and
the files are read with ``load_from_disk``, ``Dataset.from_file`` and pyarrow, none of which look
anything up on the Hub.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import numpy as np

from toksuite.data.base import Dataset, DataSource, LoadOptions
from toksuite.data.folder import load_files
from toksuite.data.images import Geometry, decode_image, read_image
from toksuite.data.transform import limit_indices, split
from toksuite.errors import DataError

OPTIONS = ("image", "label", "train", "test")
IMAGE_NAMES = ("image", "img")
LABEL_NAMES = ("label", "labels")
TEST_NAMES = ("test", "validation")
SPLIT_WORD = re.compile(r"^([A-Za-z0-9_]+)")


def import_datasets() -> Any:
    """The ``datasets`` module, offline; a one-line error naming the extra when it is missing."""
    # Read once at import by datasets (and huggingface_hub): set before the first import.
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import datasets
    except ImportError:
        raise DataError(
            "hf: data sources need the 'datasets' library: pip install 'toksuite[hf]'"
        ) from None
    datasets.config.HF_DATASETS_OFFLINE = True  # in case it was imported before this
    return datasets


def parse_argument(argument: str) -> tuple[Path, dict[str, str]]:
    """``"d/cifar?image=img&test=none"`` → ``(Path("d/cifar"), {"image": "img", "test": "none"})``.

    A ``?`` whose tail is not ``key=value`` pairs is part of the path.
    """
    path, sep, query = argument.rpartition("?")
    if not sep or "=" not in query:
        return Path(argument).expanduser(), {}
    pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False)
    unknown = [key for key, _ in pairs if key not in OPTIONS]
    if unknown:
        raise DataError(
            f"hf:{argument}: unknown option {unknown[0]!r} (options: {', '.join(OPTIONS)})"
        )
    return Path(path).expanduser(), dict(pairs)


def _split_files(folder: Path) -> dict[str, list[Path]]:
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix in (".parquet", ".arrow") and p.is_file() and not p.name.startswith(".")
    )
    groups: dict[str, list[Path]] = {}
    for path in files:
        match = SPLIT_WORD.match(path.stem)
        groups.setdefault(match[1] if match else path.stem, []).append(path)
    return groups


def _from_file(datasets: Any, path: Path) -> Any:
    try:
        if path.suffix == ".arrow":
            return datasets.Dataset.from_file(str(path))  # memory-mapped, no copy
        import pyarrow.parquet as pq

        # The features (Image, ClassLabel) travel in the schema's "huggingface" metadata.
        return datasets.Dataset(pq.read_table(path, memory_map=True))
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        kind = path.suffix.lstrip(".")
        raise DataError(f"{path}: not a readable {kind} file ({_one_line(exc)})") from None


def load_splits(path: Path) -> dict[str, Any]:
    """The splits at ``path`` as ``{name: datasets.Dataset}``."""
    datasets = import_datasets()
    if path.is_file():
        if path.suffix not in (".parquet", ".arrow"):
            raise DataError(f"{path}: expected a save_to_disk folder, or a .parquet or .arrow file")
        return {"train": _from_file(datasets, path)}
    if not path.is_dir():
        raise DataError(f"{path}: no such file or folder")
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        try:
            loaded = datasets.load_from_disk(str(path))
        except (OSError, ValueError, KeyError) as exc:  # a damaged json or arrow shard
            raise DataError(
                f"{path}: not a readable save_to_disk folder ({_one_line(exc)})"
            ) from None
        if isinstance(loaded, datasets.DatasetDict):
            return dict(loaded)
        return {"train": loaded}
    groups = _split_files(path)
    if not groups:
        raise DataError(
            f"{path}: no save_to_disk dataset (dataset_dict.json or state.json) and no .parquet "
            "or .arrow files"
        )
    splits = {}
    for name, files in groups.items():
        parts = [_from_file(datasets, f) for f in files]
        splits[name] = parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    return splits


def _pick_splits(splits: dict[str, Any], options: dict[str, str], where: Path):
    names = ", ".join(sorted(splits))
    train = options.get("train") or ("train" if "train" in splits else None)
    if train is None and len(splits) == 1:
        train = next(iter(splits))
    if train is None:
        raise DataError(f"{where}: no 'train' split; pick one with ?train=NAME (splits: {names})")
    if train not in splits:
        raise DataError(f"{where}: no split {train!r} (splits: {names})")
    test = options.get("test")
    if test is None:
        test = next((t for t in TEST_NAMES if t in splits and t != train), "none")
    if test != "none" and test not in splits:
        raise DataError(f"{where}: no split {test!r} (splits: {names})")
    return train, (None if test == "none" else test)


def _image_column(features: Any, datasets: Any, wanted: str | None, where: str) -> str:
    images = [name for name, f in features.items() if isinstance(f, datasets.Image)]
    if wanted is not None:
        if wanted not in features:
            raise DataError(f"{where}: no column {wanted!r} (columns: {', '.join(features)})")
        if wanted not in images:
            raise DataError(f"{where}: column {wanted!r} is {features[wanted]}, not an Image")
        return wanted
    named = [n for n in IMAGE_NAMES if n in images]
    if named or len(images) == 1:
        return (named or images)[0]
    if not images:
        raise DataError(
            f"{where}: no column of the Image feature (columns: {', '.join(features)}); "
            "name one with ?image=COLUMN"
        )
    raise DataError(f"{where}: several Image columns ({', '.join(images)}); pick one with ?image=")


def _label_column(features: Any, datasets: Any, wanted: str | None, where: str) -> str | None:
    if wanted == "none":
        return None
    if wanted is not None:
        if wanted not in features:
            raise DataError(f"{where}: no column {wanted!r} (columns: {', '.join(features)})")
        return wanted
    named = [n for n in LABEL_NAMES if n in features]
    if named:
        return named[0]
    classes = [name for name, f in features.items() if isinstance(f, datasets.ClassLabel)]
    return classes[0] if len(classes) == 1 else None


def _labels(ds: Any, column: str, datasets: Any, where: str) -> tuple[np.ndarray, list | None]:
    feature = ds.features[column]
    # The "arrow" format reads the column raw (no decoding), through any indices mapping.
    values = _column(ds, column, None).to_numpy(zero_copy_only=False)
    if isinstance(feature, datasets.ClassLabel):
        names = list(feature.names)
    elif values.dtype.kind in "iu":
        names = None
    elif values.dtype.kind in "OUS" and all(isinstance(v, str) for v in values):
        names = sorted(set(values.tolist()))
        values = np.searchsorted(np.array(names), values)
    else:
        raise DataError(f"{where}: label column {column!r} is {feature}; expected integers")
    values = np.asarray(values, dtype=np.int64)
    if len(values) and values.min() < 0:
        raise DataError(
            f"{where}: label column {column!r} has unlabelled rows (-1); use ?label=none"
        )
    return values, names


@dataclass(frozen=True)
class _Cell:
    """One image cell: its encoded bytes, or a path to the file it names."""

    name: str
    data: bytes | None
    path: str | None

    def __str__(self) -> str:
        return self.name


def _read_cell(cell: _Cell, geometry: Geometry) -> np.ndarray:
    if cell.data:
        return decode_image(cell.data, cell.name, geometry)
    if cell.path:
        return read_image(cell.path, geometry=geometry)
    raise DataError(f"{cell.name}: empty image cell")


def _column(ds: Any, column: str, rows: np.ndarray | None) -> Any:
    """Column ``column`` (all rows, or ``rows``) as a pyarrow array, read raw."""
    raw = ds.select_columns([column]).with_format("arrow")
    table = raw[:] if rows is None else raw[rows.tolist()]
    return table.column(column)


def _cells(ds: Any, column: str, rows: np.ndarray, where: str) -> list[_Cell]:
    # The Image feature is stored as a struct of (bytes, path): read it raw, decode ourselves.
    if not len(rows):
        return []
    cells = []
    for row, value in zip(rows.tolist(), _column(ds, column, rows).to_pylist(), strict=True):
        value = value or {}
        cells.append(_Cell(f"{where}[{row}]", value.get("bytes"), value.get("path")))
    return cells


class HfSource(DataSource):
    """Datasets saved with ``datasets``: save_to_disk folders, parquet or arrow files."""

    name = "hf"
    aliases = ("huggingface",)
    description = "Hugging Face datasets saved locally: save_to_disk folder, .parquet, .arrow"
    takes_path = True

    def load(self, options: LoadOptions) -> Dataset:
        path, opts = parse_argument(self.argument or "")
        spec = f"hf:{self.argument}"
        datasets = import_datasets()
        if not options.progress:
            datasets.disable_progress_bars()
        splits = load_splits(path)
        train_name, test_name = _pick_splits(splits, opts, path)
        train = splits[train_name]
        where = f"{path}:{train_name}"
        image = _image_column(train.features, datasets, opts.get("image"), where)
        label = _label_column(train.features, datasets, opts.get("label"), where)

        parts: list[tuple[Any, np.ndarray, str]] = []
        if test_name is None:
            tr, te = split(len(train), options.test_fraction, options.seed)
            parts = [(train, tr, where), (train, te, where)]
        else:
            test = splits[test_name]
            for column in (image, label):
                if column is not None and column not in test.features:
                    raise DataError(f"{path}:{test_name}: no column {column!r}")
            parts = [
                (train, np.arange(len(train)), where),
                (test, np.arange(len(test)), f"{path}:{test_name}"),
            ]
        parts = [
            (ds, limit_indices(rows, options.limit, options.seed, salt), name)
            for salt, (ds, rows, name) in enumerate(parts)
        ]

        labels: list[np.ndarray | None] = []
        class_names = None
        for ds, rows, name in parts:
            if label is None:
                labels.append(None)
                continue
            values, names = _labels(ds, label, datasets, name)
            if class_names is not None and names is not None and names != class_names:
                raise DataError(f"{name}: label names differ from the train split's")
            class_names = class_names or names
            labels.append(values[rows])

        cells = [_cells(ds, image, rows, name) for ds, rows, name in parts]
        x, kept, skipped = load_files(cells[0] + cells[1], options, path.name, read=_read_cell)
        n_train = len(cells[0])
        keep = [
            np.array([k for k in kept if k < n_train], np.int64),
            np.array([k - n_train for k in kept if k >= n_train], np.int64),
        ]
        ys = [None if y is None else y[k] for y, k in zip(labels, keep, strict=True)]
        dataset = Dataset(
            spec,
            x[: len(keep[0])],
            x[len(keep[0]) :],
            ys[0],
            ys[1],
            class_names,
            skipped=len(skipped),
            skipped_files=skipped,
        )
        if skipped:
            dataset.notes.append(f"skipped {len(skipped)} unreadable images")
        return dataset


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
