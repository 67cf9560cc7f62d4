"""Data sources, registered through the same hook as third-party ones, and `load_dataset`.

Spec strings (``--data``):

==================  ============================================================================
``digits``          scikit-learn's 8×8 grey digits, embedded (the default); labels 0–9
``sample-images``   scikit-learn's two photos cut into tiles of ``resolution`` (default 64×64)
``npz:PATH``        arrays ``x`` (+ ``y``) or ``x_train``/``y_train``/``x_test``/``y_test``,
                    uint8 N×H×W×C or N×H×W; optional ``class_names``
``cifar10:PATH``    ``cifar-10-python.tar.gz`` or its extracted folder (restricted unpickler)
``cifar100:PATH``   ``cifar-100-python.tar.gz`` or its extracted folder, fine labels
``folder:PATH``     class sub-folders (labels), a flat folder, or ``train/`` + ``test/``
``idx:PATH``        MNIST-style IDX files (alias ``mnist``): a folder of ``train-*``/``t10k-*``
                    pairs, plain or ``.gz``, or one images file
``hf:PATH``         Hugging Face ``save_to_disk`` folder, ``.parquet`` or ``.arrow`` files;
                    options as a query: ``hf:PATH?image=img&label=fine&test=none``
==================  ============================================================================

Every source honours `LoadOptions`: crop box, then resize (shorter side) + centre-crop to
``resolution``; ``channels`` (RGB → grey by luma, grey → RGB by repetition); ``limit`` per split
(a seeded random subset, kept in source order); a seeded ``test_fraction`` split where the source
has none; ``on_error`` for bad image files (stop with the file's name, or skip and count).
"""

from __future__ import annotations

from toksuite.data.base import Dataset, DataSource, LoadOptions
from toksuite.errors import DataError
from toksuite.hookspecs import hookimpl

__all__ = ["DataSource", "Dataset", "LoadOptions", "load_dataset", "parse_spec"]

DEFAULT_SPEC = "digits"


@hookimpl
def toksuite_register_datasets(register):
    from toksuite.data.cifar import Cifar10Source, Cifar100Source
    from toksuite.data.folder import FolderSource
    from toksuite.data.hf import HfSource
    from toksuite.data.idx import IdxSource
    from toksuite.data.sources import DigitsSource, NpzSource, SampleImagesSource

    for source in (
        DigitsSource,
        SampleImagesSource,
        NpzSource,
        Cifar10Source,
        Cifar100Source,
        FolderSource,
        IdxSource,
        HfSource,
    ):
        register(source)


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"cifar10:/data/x.tar.gz"`` → ``("cifar10", "/data/x.tar.gz")``."""
    name, sep, argument = spec.partition(":")
    return name.strip().lower(), (argument if sep else None)


def load_dataset(spec: str = DEFAULT_SPEC, options: LoadOptions | None = None) -> Dataset:
    """Load a dataset from a spec string such as ``digits`` or ``folder:faces/``."""
    from toksuite.registry import get_host

    name, argument = parse_spec(spec)
    cls = get_host().datasets.get(name)
    if cls.takes_path and not argument:
        raise DataError(f"data source {cls.name!r} needs a path: {cls.name}:PATH")
    dataset = cls(argument).load(options or LoadOptions())
    if len(dataset.x_train) == 0 and len(dataset.x_test) == 0:
        raise DataError(f"{spec}: no images")
    return dataset
