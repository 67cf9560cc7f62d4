"""Data sources, registered through the same hook as third-party ones, and `load_dataset`."""

from __future__ import annotations

from toksuite.data.base import Dataset, DataSource, LoadOptions
from toksuite.errors import DataError
from toksuite.hookspecs import hookimpl

__all__ = ["DataSource", "Dataset", "LoadOptions", "load_dataset", "parse_spec"]

DEFAULT_SPEC = "digits"


@hookimpl
def toksuite_register_datasets(register):
    from toksuite.data.sources import DigitsSource

    register(DigitsSource)


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
