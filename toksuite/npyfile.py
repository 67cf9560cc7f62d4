""".npy files written piece by piece and read in place: the two halves of larger-than-memory data.

* `NpyAppender` writes a 1-D ``.npy`` whose length is not known in advance (a dataset's tokens,
  encoded batch by batch): the header is written first with length 0 and rewritten at the end.
  numpy pads every header so that the length field can grow to 21 digits without moving the data
  (``np.lib.format.GROWTH_AXIS_MAX_DIGITS``), so the rewrite never shifts a byte. Chunks go out
  with plain ``write`` calls, not through a memory map, so writing costs no resident memory.
* `npz_member_memmap` maps an array stored *uncompressed* in a ``.npz`` (what ``np.savez``
  writes) straight from the zip file: ``np.load(mmap_mode=...)`` cannot do it for an archive,
  but a stored member is a plain ``.npy`` at a fixed offset. A compressed member gives None and
  is read the ordinary way.
"""

from __future__ import annotations

import hashlib
import struct
import zipfile
from pathlib import Path

import numpy as np

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")  # a zip local file header, 30 bytes
_LOCAL_MAGIC = b"PK\x03\x04"
_HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


class NpyAppender:
    """A 1-D ``.npy`` of ``dtype`` written chunk by chunk; use as a context manager.

    The SHA-256 of the data bytes is computed on the way (``sha256``), so a caller that records a
    checksum does not read the file back. On an exception the file is left incomplete: write it
    inside a temporary directory or path that is thrown away on failure (`toksuite.io`).
    """

    def __init__(self, path: str | Path, dtype: np.dtype | type):
        self.path = Path(path)
        self.dtype = np.dtype(dtype)
        self.count = 0
        self._digest = hashlib.sha256()
        self._file = self.path.open("wb")
        self._data_start = self._write_header()

    def _write_header(self) -> int:
        header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False}
        np.lib.format.write_array_header_1_0(self._file, header | {"shape": (self.count,)})
        return self._file.tell()

    def append(self, values: np.ndarray) -> None:
        """Add ``values`` (flattened, converted to the file's dtype) at the end."""
        chunk = np.ascontiguousarray(values, dtype=self.dtype).reshape(-1)
        data = chunk.data.cast("B")
        self._file.write(data)
        self._digest.update(data)
        self.count += chunk.size

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.seek(0)
        if self._write_header() != self._data_start:  # numpy's growth padding guarantees this
            raise AssertionError(f"{self.path}: .npy header changed size on rewrite")
        self._file.close()

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()

    def __enter__(self) -> NpyAppender:
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._file.close()


def npz_member_memmap(path: str | Path, key: str) -> np.ndarray | None:
    """Array ``key`` of the ``.npz`` at ``path``, memory-mapped copy-on-write, or None when the
    member is compressed (or encrypted), holds Python objects, or is not a plain ``.npy``.

    Copy-on-write (``mode="c"``): the array behaves like one read into memory (writes stay in
    this process), but only the pages that are touched are read, and the kernel can drop them
    again, so an image array larger than memory can still be encoded chunk by chunk.
    """
    path = Path(path)
    with zipfile.ZipFile(path) as archive:
        try:
            info = archive.getinfo(f"{key}.npy")
        except KeyError:
            return None
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        return None
    with path.open("rb") as f:
        f.seek(info.header_offset)
        fields = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
        if fields[0] != _LOCAL_MAGIC:
            return None
        name_length, extra_length = fields[-2], fields[-1]  # the local ones, not the directory's
        member_start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
        f.seek(member_start)
        try:
            version = np.lib.format.read_magic(f)
            read_header = _HEADER_READERS.get(version)
            if read_header is None:
                return None
            shape, fortran, dtype = read_header(f)
        except ValueError:
            return None
        offset = f.tell()
    if dtype.hasobject:
        return None
    if offset - member_start + dtype.itemsize * _size(shape) > info.file_size:
        return None  # the header claims more data than the member holds
    if _size(shape) == 0:
        return np.zeros(shape, dtype)  # mmap cannot map zero bytes
    mapped = np.memmap(
        path, dtype=dtype, mode="c", offset=offset, shape=shape, order="F" if fortran else "C"
    )
    return mapped.view(np.ndarray)  # a plain array type downstream; the map stays its base


def _size(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))
