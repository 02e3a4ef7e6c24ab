"""Read arrays from an ``.npz`` mask file one at a time, with a size bound checked before decompressing.

``numpy.load`` on an ``.npz`` reads nothing until an array is asked for, but it trusts each
member: a member whose ``.npy`` header claims 2^36 elements allocates them before failing, and
empty, truncated or non-zip files raise ``EOFError``/``BadZipFile``/``TypeError``. Here every
problem is a :class:`~accelsim.errors.MaskError` naming the file and the array:

- the file must be a zip archive of ``.npy`` members (a bare ``.npy`` is refused);
- an array is read only when a layer names it; its header (dtype, shape) is read first and the
  array refused when it holds more than :data:`MAX_ARRAY_BYTES` bytes or has an object,
  structured, string or complex dtype (a mask is bool, integer or float 0/1);
- ``allow_pickle=False`` always.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from ..errors import MaskError

#: largest array (decompressed bytes) read from a mask file: 1 GiB, e.g. a 32768 x 32768 uint8 mask
MAX_ARRAY_BYTES = 1 << 30


class NpzArchive:
    """Lazy, bounded reader of one ``.npz`` file (see the module docstring)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.source = str(self.path)
        if self.path.exists() and not self.path.is_dir() and not self.path.is_file():
            raise MaskError("mask file is not a regular file", source=self.source, field="masks")
        try:
            self._zip = zipfile.ZipFile(self.path)
            names = self._zip.namelist()
        except FileNotFoundError:
            raise MaskError("mask file not found", source=self.source, field="masks") from None
        except IsADirectoryError:
            raise MaskError("mask file is a directory", source=self.source, field="masks") from None
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, OverflowError) as exc:
            raise MaskError(f"not an .npz archive (a zip of .npy arrays, as numpy.savez writes): {exc}",
                            source=self.source, field="masks") from None
        self._members = {n[:-4]: n for n in names if n.endswith(".npy")}

    def keys(self) -> list[str]:
        return list(self._members)

    def __contains__(self, key: object) -> bool:
        return key in self._members

    def read(self, key: str, field: str = "masks") -> np.ndarray:
        """The array ``key``; header checked (dtype, size bound) before anything is decompressed."""
        member = self._members.get(key)
        if member is None:
            raise MaskError(f"array {key!r} not found in the mask file", source=self.source, field=field)
        fmt = np.lib.format
        try:
            with self._zip.open(member) as fh:
                version = fmt.read_magic(fh)
                reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
                shape, _fortran, dtype = reader(fh)
            if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biuf":
                raise MaskError(f"array {key!r} has dtype {dtype}, expected bool or 0/1 integers or floats",
                                source=self.source, field=field)
            nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if nbytes > MAX_ARRAY_BYTES:
                raise MaskError(f"array {key!r} of shape {tuple(shape)} holds {nbytes:,} bytes, more than the "
                                f"{MAX_ARRAY_BYTES:,} a mask may have", source=self.source, field=field)
            with self._zip.open(member) as fh:
                arr = fmt.read_array(fh, allow_pickle=False)
        except MaskError:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, OverflowError, TypeError, KeyError,
                NotImplementedError, RuntimeError) as exc:  # zlib.error is an Exception subclass: below
            raise MaskError(f"cannot read array {key!r}: {exc.__class__.__name__}: {exc}", source=self.source,
                            field=field) from None
        except Exception as exc:  # noqa: BLE001 (zlib.error and other decoder errors of a damaged member)
            if exc.__class__.__module__ in ("zlib", "bz2", "lzma"):
                raise MaskError(f"cannot read array {key!r}: damaged data ({exc})", source=self.source,
                                field=field) from None
            raise
        if arr.size * arr.dtype.itemsize != nbytes:
            raise MaskError(f"array {key!r} is truncated", source=self.source, field=field)
        return arr

    def close(self) -> None:
        self._zip.close()
