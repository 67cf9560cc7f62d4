"""CIFAR-10 / CIFAR-100 in the official python format: ``.tar.gz`` or its extracted folder.

The batch files are pickles, and unpickling runs whatever code a pickle names. They are read with
`SafeUnpickler`, which admits only the globals the real files use — numpy's array
reconstruction (``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``; the
Python-3 re-pickles also use ``_codecs.encode`` for bytes) — and refuses everything else before it
is called. The dicts, lists, strings and ints around the arrays need no globals at all.
"""

from __future__ import annotations

import codecs
import io
import pickle
import tarfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from toksuite.data.base import Dataset, DataSource, LoadOptions
from toksuite.data.transform import finish_split
from toksuite.errors import DataError

ROW_BYTES = 3 * 32 * 32


def _numpy_reconstruct() -> Any:
    try:
        from numpy._core.multiarray import _reconstruct  # numpy ≥ 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    return _reconstruct


def _numpy_scalar() -> Any:
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    return scalar


_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("_codecs", "encode"): lambda: codecs.encode,
}


class SafeUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy-array globals; anything else is a DataError."""

    def __init__(self, file: io.BufferedIOBase, name: str):
        # latin1: Python-2 str payloads (the pixel bytes) come back byte for byte.
        super().__init__(file, encoding="latin1")
        self.name = name

    def find_class(self, module: str, name: str) -> Any:
        factory = _ALLOWED.get((module, name))
        if factory is None:
            raise DataError(
                f"{self.name}: refused to unpickle {module}.{name} "
                "(only numpy arrays and plain data are allowed)"
            )
        return factory()

    def persistent_load(self, pid: Any) -> Any:
        raise DataError(f"{self.name}: refused a persistent id in the pickle")


def safe_unpickle(data: bytes, name: str) -> Any:
    try:
        return SafeUnpickler(io.BytesIO(data), name).load()
    except DataError:
        raise
    except Exception as exc:  # a malformed pickle can raise nearly anything
        raise DataError(f"{name}: not a valid CIFAR pickle ({type(exc).__name__}: {exc})") from None


class _Files:
    """The archive's or folder's files, looked up by base name (``data_batch_1``)."""

    def __init__(self, path: Path, needed: list[str]):
        self.path = path
        self.members: dict[str, Any] = {}
        if path.is_dir():
            candidates = [path, *sorted(p for p in path.iterdir() if p.is_dir())]
            for folder in candidates:
                if all((folder / n).is_file() for n in needed):
                    self.members = {p.name: p for p in folder.iterdir() if p.is_file()}
                    break
            self.tar = None
        elif path.is_file():
            try:
                self.tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by close()
                for member in self.tar.getmembers():
                    if member.isfile():
                        self.members.setdefault(Path(member.name).name, member)
            except (tarfile.TarError, OSError, EOFError) as exc:
                raise DataError(f"{path}: not a readable tar archive ({exc})") from None
        else:
            raise DataError(f"{path}: no such file or folder")
        missing = [n for n in needed if n not in self.members]
        if missing:
            raise DataError(
                f"{path}: not a CIFAR python-format archive or folder; missing {', '.join(missing)}"
            )

    def name(self, key: str) -> str:
        member = self.members[key]
        return str(member) if isinstance(member, Path) else f"{self.path}:{member.name}"

    def read(self, key: str) -> Any:
        member = self.members[key]
        try:
            if isinstance(member, Path):
                data = member.read_bytes()
            else:
                assert self.tar is not None  # members are tar members only for an archive
                handle = self.tar.extractfile(member)
                data = handle.read() if handle else b""
        except Exception as exc:  # tarfile and zlib raise many kinds on a damaged archive
            raise DataError(f"{self.name(key)}: unreadable ({type(exc).__name__}: {exc})") from None
        obj = safe_unpickle(data, self.name(key))
        if not isinstance(obj, dict):
            raise DataError(f"{self.name(key)}: expected a dict, got {type(obj).__name__}")
        return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()


class _CifarSource(DataSource):
    takes_path = True
    train_files: ClassVar[list[str]]
    test_files: ClassVar[list[str]]
    meta_file: ClassVar[str]
    label_key: ClassVar[str]
    names_key: ClassVar[str]
    n_classes: ClassVar[int]

    def load(self, options: LoadOptions) -> Dataset:
        path = Path(self.argument or "").expanduser()
        files = _Files(path, self.train_files + self.test_files)
        try:
            x_train, y_train = self._batches(files, self.train_files)
            x_test, y_test = self._batches(files, self.test_files)
            names = self._names(files)
        finally:
            files.close()
        spec = f"{self.name}:{path}"
        return finish_split(spec, x_train, y_train, x_test, y_test, options, names)

    def _batches(self, files: _Files, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for key in keys:
            batch, where = files.read(key), files.name(key)
            if "data" not in batch or self.label_key not in batch:
                found = ", ".join(map(str, batch))
                raise DataError(f"{where}: missing 'data' or {self.label_key!r} (has {found})")
            data = batch["data"]
            if isinstance(data, np.ndarray) and data.dtype != np.uint8:
                raise DataError(f"{where}: data is {data.dtype}; expected uint8")
            if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != ROW_BYTES:
                shape = getattr(data, "shape", type(data).__name__)
                raise DataError(f"{where}: data has shape {shape}; expected N×{ROW_BYTES}")
            try:
                labels = np.asarray(batch[self.label_key], dtype=np.int64).reshape(-1)
            except (TypeError, ValueError):
                raise DataError(f"{where}: {self.label_key} are not integers") from None
            if len(labels) != len(data):
                raise DataError(f"{where}: {len(labels)} labels for {len(data)} images")
            if len(labels) and (labels.min() < 0 or labels.max() >= self.n_classes):
                raise DataError(f"{where}: labels outside 0..{self.n_classes - 1}")
            # Each row is 1024 R, then 1024 G, then 1024 B, each plane row-major 32×32.
            xs.append(data.astype(np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            ys.append(labels)
        return np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys)

    def _names(self, files: _Files) -> list[str] | None:
        if self.meta_file not in files.members:
            return None
        meta = files.read(self.meta_file)
        names = meta.get(self.names_key)
        if not isinstance(names, list) or len(names) != self.n_classes:
            raise DataError(
                f"{files.name(self.meta_file)}: no list of {self.n_classes} {self.names_key}"
            )
        return [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]


class Cifar10Source(_CifarSource):
    """``cifar10:PATH`` — ``cifar-10-python.tar.gz`` or its extracted ``cifar-10-batches-py``."""

    name = "cifar10"
    aliases = ("cifar-10",)
    description = "CIFAR-10 python-format archive (.tar.gz) or its extracted folder"
    train_files = [f"data_batch_{i}" for i in range(1, 6)]
    test_files = ["test_batch"]
    meta_file = "batches.meta"
    label_key = "labels"
    names_key = "label_names"
    n_classes = 10


class Cifar100Source(_CifarSource):
    """``cifar100:PATH`` — ``cifar-100-python.tar.gz`` or its folder; the 100 fine labels."""

    name = "cifar100"
    aliases = ("cifar-100",)
    description = "CIFAR-100 python-format archive (.tar.gz) or its extracted folder (fine labels)"
    train_files = ["train"]
    test_files = ["test"]
    meta_file = "meta"
    label_key = "fine_labels"
    names_key = "fine_label_names"
    n_classes = 100
