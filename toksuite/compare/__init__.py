"""`toksuite compare`: every encoder through the same pipeline, one configuration, one report."""

from toksuite.compare.config import BUILTIN_ENCODERS, CompareConfig, build_config
from toksuite.compare.run import compare

__all__ = ["BUILTIN_ENCODERS", "CompareConfig", "build_config", "compare"]
