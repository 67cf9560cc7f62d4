"""Atomic writes: a reader never sees a half-written file or directory. And the read of a JSON
file whose absence or damage is the caller's own error (`read_json`).

A write that is killed leaves its temporary ``.NAME.*.tmp`` beside the target; the next
`atomic_dir` for that target removes those older than `STALE_TMP_SECONDS` (a younger one may
belong to a write still running in another process).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


_UMASK = _current_umask()
_FILE_MODE = 0o666 & ~_UMASK
STALE_TMP_SECONDS = 24 * 3600  # temporaries older than this are leftovers of killed runs


def remove_stale_tmp(directory: str | os.PathLike[str], pattern: str = ".*.tmp") -> int:
    """Remove ``pattern`` entries of ``directory`` older than `STALE_TMP_SECONDS`; the count."""
    directory = Path(directory)
    if not directory.is_dir():
        return 0
    now, removed = time.time(), 0
    for path in directory.glob(pattern):
        try:
            if now - path.lstat().st_mtime <= STALE_TMP_SECONDS:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
        except OSError:  # gone already (another process cleaned up), or not ours to remove
            continue
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600); give it the mode open() would have.
        os.chmod(tmp_path, _FILE_MODE)
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> None:
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def read_json(
    path: str | os.PathLike[str], error: type[Exception], *, missing: str, invalid: str
) -> Any:
    """JSON from ``path``; a missing file raises ``error(missing)``, bad JSON ``error(invalid)``
    with the parser's reason, one line either way."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise error(missing) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise error(f"{invalid} ({exc})") from None


@contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; it replaces ``path`` only if the block succeeds.

    An existing ``path`` is swapped out and removed after the new one is in place, so a crash leaves
    either the old directory or the new one, never a mix.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Only this target's own temporaries: other `.*.tmp` files beside it are not toksuite's.
    remove_stale_tmp(path.parent, f".{glob.escape(path.name)}.*.tmp")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, _FILE_MODE | 0o111 & ~_UMASK)  # mkdtemp makes it private (0700)
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old.{os.getpid()}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
