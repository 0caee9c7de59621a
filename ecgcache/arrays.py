"""Array files of a segment: an ``.npy`` file that grows along axis 0, and its checksum check.

A segment's arrays are written record by record as workers finish, without knowing the final
length: :class:`NpyAppender` writes a fixed-size ``.npy`` header, appends raw rows, hashes
them as they go (SHA-256), and rewrites the header with the final shape on close. What
:meth:`NpyAppender.close` returns (shape, dtype, size, checksum of the data after the header)
goes into the segment's metadata, and :func:`open_verified` checks a file against it before
mapping it: a truncated, padded, garbled or bit-flipped file is refused with the reason.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

#: Size of the ``.npy`` headers we write (fixed, so the final shape can be written in place).
NPY_HEADER_BYTES = 128
_BLOCK = 8 << 20


class ArrayFileError(Exception):
    """An array file that does not match its recorded description (the message says how)."""


def npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """A version-1.0 ``.npy`` header padded to :data:`NPY_HEADER_BYTES`."""
    descr = np.lib.format.dtype_to_descr(dtype)
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {tuple(int(n) for n in shape)!r}, }}"
    room = NPY_HEADER_BYTES - 10
    if len(text) + 1 > room:
        raise ValueError(f"shape {shape} does not fit a {NPY_HEADER_BYTES}-byte .npy header")
    body = text.ljust(room - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body.encode("latin1")


def _new_digest() -> Any:
    """SHA-256: with the SHA extensions of current x86 and ARM CPUs it hashes about twice as fast as
    BLAKE2b (measured 930 vs 402 MB/s on one core of our development machine), and verification
    reads whole segments."""
    return hashlib.sha256()


class NpyAppender:
    """An ``.npy`` file that grows along axis 0; the header gets the final shape on close."""

    def __init__(self, path: Path, dtype: np.dtype, tail: tuple[int, ...]) -> None:
        self.path, self.dtype, self.tail, self.rows = path, np.dtype(dtype), tail, 0
        self.digest = _new_digest()
        self.handle = open(path, "wb")  # noqa: SIM115 (closed by close())
        self.handle.write(npy_header(self.dtype, (0, *tail)))

    def append(self, array: np.ndarray) -> None:
        data = np.ascontiguousarray(array, dtype=self.dtype).tobytes()
        self.handle.write(data)
        self.digest.update(data)
        self.rows += array.shape[0]

    def close(self) -> dict[str, Any]:
        """Write the final header, flush to disk; returns the description :func:`open_verified` checks."""
        self.handle.seek(0)
        self.handle.write(npy_header(self.dtype, (self.rows, *self.tail)))
        self.handle.flush()
        os.fsync(self.handle.fileno())
        size = self.handle.seek(0, os.SEEK_END)
        self.handle.close()
        return {
            "shape": [self.rows, *self.tail],
            "dtype": self.dtype.str,
            "bytes": size,
            "sha256": self.digest.hexdigest(),
        }

    def discard(self) -> None:
        """Close without finishing (the folder holding the file is about to be removed)."""
        self.handle.close()


def data_checksum(path: Path, offset: int) -> str:
    """SHA-256 of the bytes of ``path`` from ``offset`` on (hashing releases the GIL: threads help)."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        return hashlib.file_digest(handle, _new_digest).hexdigest()


def open_array(path: Path) -> np.ndarray:
    """Memory-map an ``.npy`` file read-only (an empty array cannot be mapped, so it is read)."""
    try:
        return np.load(path, mmap_mode="r")
    except ValueError:
        return np.load(path)


def open_verified(path: Path, expected: dict[str, Any]) -> np.ndarray:
    """Map ``path`` after checking size, shape, dtype and checksum against ``expected``; else :class:`ArrayFileError`."""
    try:
        size = path.stat().st_size
        if size != int(expected["bytes"]):
            raise ArrayFileError(f"{path}: has {size} bytes, expected {expected['bytes']} (truncated or overwritten)")
        array = open_array(path)
        if list(array.shape) != list(expected["shape"]) or array.dtype.str != expected["dtype"]:
            raise ArrayFileError(
                f"{path}: holds {array.dtype.str} {list(array.shape)}, expected {expected['dtype']} {expected['shape']}"
            )
        if data_checksum(path, size - array.nbytes) != expected["sha256"]:
            raise ArrayFileError(f"{path}: checksum mismatch (the bytes changed since the segment was written)")
        return array
    except ArrayFileError:
        raise
    except FileNotFoundError:
        raise ArrayFileError(f"{path}: file is missing") from None
    except (OSError, ValueError, TypeError, KeyError, EOFError) as error:
        raise ArrayFileError(f"{path}: unreadable array file ({type(error).__name__}: {error})") from None


__all__ = [
    "NPY_HEADER_BYTES",
    "ArrayFileError",
    "NpyAppender",
    "data_checksum",
    "npy_header",
    "open_array",
    "open_verified",
]
