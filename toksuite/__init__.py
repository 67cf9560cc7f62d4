"""toksuite: compare image-to-sequence encoders for pixel-level autoregressive transformers."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("toksuite")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from toksuite.hookspecs import hookimpl  # noqa: E402  (plugins import this)

__all__ = ["__version__", "hookimpl"]
