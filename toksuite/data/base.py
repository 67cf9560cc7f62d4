"""Data sources: a spec string (``digits``, ``npz:PATH``, ``folder:PATH`` …) to a `Dataset`."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np

ON_ERROR_CHOICES = ("stop", "skip")


def check_on_error(value: str, error: type[Exception]) -> None:
    """``on_error`` must be ``stop`` or ``skip``; raise ``error`` otherwise."""
    if value not in ON_ERROR_CHOICES:
        raise error(f"on_error {value!r}: expected stop or skip")


@dataclass(frozen=True)
class LoadOptions:
    """Options every source honours (``--resolution``, ``--channels``, ``--limit`` …)."""

    resolution: tuple[int, int] | None = None  # (H, W) after resize + centre crop
    crop: tuple[int, int, int, int] | None = None  # (left, top, width, height) box, before resize
    channels: int | None = None  # 1 → grey by luma, 3 → RGB; None keeps the source's
    limit: int | None = None  # at most this many per split: a seeded random subset, in order
    test_fraction: float = 0.2  # split for sources that have none
    seed: int = 0  # the split and any sampling are deterministic in this
    on_error: Literal["stop", "skip"] = "stop"  # bad files: stop with one line, or skip and count
    progress: bool = True  # rich progress bar on stderr
    workers: int | None = None  # decoding threads; None → a few more than the CPU count

    def __post_init__(self) -> None:
        # Before any source allocates N×H×W×C: an absurd --resolution must fail here, at once,
        # not after the machine has run out of memory.
        from toksuite.errors import ConfigError
        from toksuite.limits import check_size

        check_on_error(self.on_error, ConfigError)
        if self.resolution is not None:
            check_size(*self.resolution, "--resolution")
        if self.crop is not None:
            check_size(self.crop[3], self.crop[2], "--crop")


@dataclass
class Dataset:
    """Images as uint8 N×H×W×C arrays with optional integer labels, split into train and test."""

    spec: str
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray | None = None
    y_test: np.ndarray | None = None
    class_names: list[str] | None = None
    skipped: int = 0  # bad files skipped under on_error="skip"
    notes: list[str] = field(default_factory=list)
    # each skipped file as {"file": path, "reason": its one-line error}, in load order
    skipped_files: list[dict[str, str]] = field(default_factory=list)

    def skip_report(self) -> dict:
        """The bad files left out under on_error="skip" (see `skip_report`)."""
        return {"count": self.skipped, "files": list(self.skipped_files)}

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:]) if len(self.x_train) else tuple(self.x_test.shape[1:])

    @property
    def labelled(self) -> bool:
        return self.y_train is not None and self.y_test is not None

    def fingerprint(self) -> str:
        """SHA-256 over pixels and labels of both splits (cache key)."""
        digest = hashlib.sha256()
        for arr in (self.x_train, self.y_train, self.x_test, self.y_test):
            if arr is None:
                digest.update(b"none")
                continue
            arr = np.ascontiguousarray(arr)
            digest.update(f"{arr.dtype}{arr.shape}".encode())
            digest.update(arr.data.cast("B"))
        return digest.hexdigest()


class DataSource(ABC):
    """A registered source. ``name`` is the spec prefix (``cifar10`` in ``cifar10:PATH``)."""

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    takes_path: ClassVar[bool] = False  # whether the spec needs ``:PATH``

    def __init__(self, argument: str | None = None):
        self.argument = argument

    @abstractmethod
    def load(self, options: LoadOptions) -> Dataset:
        """Read the images, apply ``options`` and return both splits."""


def skip_report(datasets: Iterable[Dataset]) -> dict:
    """``{"count": n, "files": [{"file", "reason"}]}`` over the datasets a command loaded.

    Every command's --json records it, so a skipped file is never silent.
    """
    return merge_skip_reports(d.skip_report() for d in datasets)


def merge_skip_reports(reports: Iterable[dict | None]) -> dict:
    """Several skip reports as one; a file skipped in two loads (the grey and the RGB view of one
    folder) counts once."""
    files: dict[str, dict[str, str]] = {}
    unnamed = 0  # skips a source counted without naming the files
    for report in reports:
        if not report:
            continue
        for entry in report["files"]:
            files.setdefault(entry["file"], entry)
        unnamed = max(unnamed, report["count"] - len(report["files"]))
    return {"count": len(files) + unnamed, "files": list(files.values())}
