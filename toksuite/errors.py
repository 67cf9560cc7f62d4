"""One error hierarchy: the CLI turns any ToksuiteError into one red line and exit 1."""

__all__ = [
    "ConfigError",
    "DataError",
    "DuplicateNameError",
    "EncoderParamError",
    "ManifestError",
    "NotFittedError",
    "PluginError",
    "ToksuiteError",
    "UnknownNameError",
]


class ToksuiteError(Exception):
    """Base class of every error toksuite raises on purpose."""


class UnknownNameError(ToksuiteError, KeyError):
    """An encoder, data source or preset name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(ToksuiteError):
    """Two plugins registered the same name."""


class PluginError(ToksuiteError):
    """A plugin registered something invalid."""


class NotFittedError(ToksuiteError):
    """An encoder was used before `fit` (or `load`)."""


class EncoderParamError(ToksuiteError, ValueError):
    """A bad encoder parameter."""


class ManifestError(ToksuiteError):
    """A saved directory that cannot be loaded (missing, newer format, unknown encoder)."""


class DataError(ToksuiteError):
    """Bad input data: a file, an archive, a spec string."""


class ConfigError(ToksuiteError, ValueError):
    """A bad option value or configuration."""
