"""The manifest of a saved encoder, ``toksuite.json``: written by `Encoder.save`, read by
`toksuite.registry.load_encoder`.

One module holds the format (file name, version, fields), so that what is written and what is read
cannot drift apart. The manifest names the encoder and its parameters; the fitted state lies next
to it as plain files (``tokenizer.json``, ``centroids.npy``) that the encoder itself writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toksuite.errors import ManifestError

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST",
    "Manifest",
    "identity_bytes",
    "new_manifest",
    "read_manifest",
]

MANIFEST = "toksuite.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    """What ``toksuite.json`` holds: which encoder, with which parameters, written by which
    toksuite (informative only: it never changes the ids)."""

    encoder: str
    params: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    toksuite_version: str | None = None

    def to_json(self) -> str:
        data = {
            "format_version": self.format_version,
            "encoder": self.encoder,
            "params": self.params,
            "toksuite_version": self.toksuite_version,
        }
        return json.dumps(data, indent=2) + "\n"

    def write(self, directory: str | Path) -> Path:
        """Write ``toksuite.json`` into ``directory`` (the caller makes the directory atomic)."""
        path = Path(directory) / MANIFEST
        path.write_text(self.to_json())
        return path


def new_manifest(encoder: str, params: dict[str, Any]) -> Manifest:
    """The manifest of an encoder saved now, by this toksuite."""
    from toksuite import __version__

    return Manifest(encoder=encoder, params=params, toksuite_version=__version__)


def read_manifest(directory: str | Path) -> Manifest:
    """Read and check ``directory/toksuite.json``; ManifestError says what is wrong with it."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ManifestError(f"{directory}: no {MANIFEST} here; not a saved toksuite encoder")
    try:
        data = json.loads(path.read_text())
        version, name, params = data["format_version"], data["encoder"], data["params"]
    except (ValueError, KeyError, TypeError) as exc:
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise ManifestError(f"{path}: malformed manifest ({reason})") from None
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ManifestError(
            f"{path}: format version {version} is newer than this toksuite reads "
            f"({FORMAT_VERSION}); upgrade toksuite"
        )
    return Manifest(name, params, version, data.get("toksuite_version"))


def identity_bytes(data: bytes) -> bytes:
    """A manifest's bytes without what does not change the ids (the toksuite version), as
    canonical JSON: what an encoder's fingerprint hashes."""
    meta = json.loads(data)
    meta.pop("toksuite_version", None)
    return json.dumps(meta, sort_keys=True).encode()
