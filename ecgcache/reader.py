"""Rows of a cached ``.npy`` array read with ``pread`` rather than through its memory map.

Training touches every window of the cache once per epoch. Read through ``np.memmap``, each page
read stays mapped into the process, so its resident size grows to the size of the cache (7.4 GB
for the 12-lead set of 88,000 records), although those pages are clean and the kernel may drop
them. Read with ``pread`` into a fresh buffer, the same bytes come from the same page cache but the
process keeps only what it uses: its RSS says what it really holds, and stays bounded.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import numpy as np


class RowReader:
    """Reads rows ``[start, stop)`` along the first axis of one array file, in its stored dtype.

    Made from the array ``np.load(..., mmap_mode="r")`` returned (its file name, data offset, dtype
    and shape); an array that is not a file map (an empty one is read whole) is indexed instead.
    The file is opened on first use in each process, so a reader can be pickled to a worker.
    """

    def __init__(self, array: np.ndarray) -> None:
        self._array = array if not isinstance(array, np.memmap) else None
        self.path = getattr(array, "filename", None) if isinstance(array, np.memmap) else None
        self.offset = int(getattr(array, "offset", 0))
        self.dtype = array.dtype
        self.row_shape = tuple(array.shape[1:])
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * array.dtype.itemsize
        self.num_rows = int(array.shape[0])
        self._fd: int | None = None
        self._pid = -1

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_fd"], state["_pid"] = None, -1
        return state

    def _descriptor(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            assert self.path is not None
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd

    def rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start``..``stop - 1`` as a new array (stored dtype, shape (stop - start, *row_shape))."""
        if not 0 <= start <= stop <= self.num_rows:
            raise IndexError(f"rows {start}:{stop} out of range for {self.num_rows} rows of {self.path}")
        if self.path is None:
            assert self._array is not None
            return np.array(self._array[start:stop])
        size = (stop - start) * self.row_bytes
        data = os.pread(self._descriptor(), size, self.offset + start * self.row_bytes) if size else b""
        if len(data) != size:
            raise OSError(f"{self.path}: short read ({len(data)} of {size} bytes); the file changed on disk")
        return np.frombuffer(data, dtype=self.dtype).reshape((stop - start, *self.row_shape))

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None

    def __del__(self) -> None:
        with contextlib.suppress(OSError):
            self.close()


__all__ = ["RowReader"]
