"""The one bound on image sizes: every size a user can ask for is checked against it first.

A resolution, a decode shape or a token file's ``shape`` above it would make toksuite try to
allocate gigabytes (or more than the machine has) before anything could go wrong in a readable way,
so it is refused up front with one line. Image files over it are refused before decoding
(`toksuite.data.images.read_image`), which is also the decompression-bomb guard.
"""

from __future__ import annotations

from toksuite.errors import ConfigError, ToksuiteError

# 64 megapixels: 8,000×8,000, far beyond what a pixel-level transformer can model, and still only
# ~200 MB as uint8 RGB. Larger is almost surely a mistake (or a decompression bomb).
MAX_PIXELS = 64_000_000


def check_size(
    height: int, width: int, what: str, error: type[ToksuiteError] = ConfigError
) -> None:
    """Raise ``error`` naming ``what`` when a ``height``×``width`` image is over `MAX_PIXELS`."""
    if height * width > MAX_PIXELS:
        raise error(
            f"{what}: {height}×{width} is {height * width:,} pixels, over toksuite's limit of "
            f"{MAX_PIXELS:,} (e.g. 8000×8000)"
        )
