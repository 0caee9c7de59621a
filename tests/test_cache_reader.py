"""Windows read by pread (ecgcache.reader) are the mapped file's bytes, in any process (synthetic arrays)."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from ecgcache.reader import RowReader


def _array_file(tmp_path: Path, dtype: str = "float16") -> tuple[Path, np.ndarray]:
    values = np.random.default_rng(0).normal(size=(7, 3, 11)).astype(dtype)
    path = tmp_path / "windows.npy"
    np.save(path, values)
    return path, values


def test_rows_equal_the_memory_map_and_survive_pickling(tmp_path: Path):
    path, values = _array_file(tmp_path)
    mapped = np.load(path, mmap_mode="r")
    reader = RowReader(mapped)
    for start, stop in ((0, 1), (2, 5), (6, 7), (0, 7), (3, 3)):
        got = reader.rows(start, stop)
        assert got.dtype == values.dtype and got.shape == (stop - start, 3, 11)
        np.testing.assert_array_equal(got, values[start:stop])
    copy = pickle.loads(pickle.dumps(reader))  # a worker process opens its own descriptor
    np.testing.assert_array_equal(copy.rows(4, 6), values[4:6])
    reader.close()
    np.testing.assert_array_equal(reader.rows(1, 2), values[1:2])  # reopens after close


def test_out_of_range_and_truncated_files_are_errors_naming_the_file(tmp_path: Path):
    path, _ = _array_file(tmp_path)
    reader = RowReader(np.load(path, mmap_mode="r"))
    with pytest.raises(IndexError, match="windows.npy"):
        reader.rows(5, 9)
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size - 100)
    with pytest.raises(OSError, match="short read"):
        reader.rows(5, 7)


def test_an_array_read_whole_is_indexed():
    values = np.zeros((0, 2, 4), dtype=np.float32)
    reader = RowReader(values)
    assert reader.rows(0, 0).shape == (0, 2, 4)
