"""The memory-mapped view of prepared records that :func:`ecgcache.prepare_folder` returns."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ecgcache.reader import RowReader
from ecgcache.segments import Segment

#: The per-window arrays, read row by row with pread (see :mod:`ecgcache.reader`).
WINDOW_ARRAYS = ("windows", "fiducials")


class PreparedStore:
    """Prepared records backed by verified, memory-mapped segment files (see :mod:`ecgcache`).

    Record ``i`` (0 <= i < len(store)) is ``names[i]``, in the order the headers were given,
    failed records left out. Windows can be addressed per record (``window(i, j)``) or by a
    flat index ``k`` over all windows of the store (``window_offsets``, ``windows_at``),
    which is what a training data loader wants. Arrays come back as float32 copies; the
    files are only read, never loaded whole, and windows are read with ``pread``, so the
    process's resident memory does not grow with the pages an epoch has touched. Per-record arrays (``features``,
    ``feature_present``, ``quality``: N x F) are gathered into RAM when the store opens.
    """

    def __init__(
        self,
        root: Path,
        entries: Sequence[tuple[str, Path, str, int]],
        failed: dict[str, str],
        segments: dict[str, Segment],
        stats: dict[str, float] | None = None,
    ) -> None:
        self.root = root
        self.names: list[str] = [name for name, _, _, _ in entries]
        self.paths: list[Path] = [path for _, path, _, _ in entries]
        self.failed: dict[str, str] = dict(failed)
        self.stats: dict[str, float] = dict(stats or {})
        self._segments = {name: segments[name] for name in {segment for _, _, segment, _ in entries}}
        self._readers = {
            name: {key: RowReader(segment.arrays[key]) for key in WINDOW_ARRAYS}
            for name, segment in self._segments.items()
        }
        self._segment_of = [segment for _, _, segment, _ in entries]
        self._row_of = np.asarray([row for _, _, _, row in entries], dtype=np.int64)
        self._start_of = np.zeros(len(entries), dtype=np.int64)
        counts = np.zeros(len(entries), dtype=np.int64)
        for name, positions in self._by_segment().items():
            offsets, rows = self._segments[name].offsets, self._row_of[positions]
            self._start_of[positions] = offsets[rows]
            counts[positions] = offsets[rows + 1] - offsets[rows]
        self.window_offsets: np.ndarray = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.features, self.feature_present, self.quality = self._gather_small()

    def _by_segment(self) -> dict[str, np.ndarray]:
        """Positions of the store's records, grouped by the segment holding them."""
        groups: dict[str, list[int]] = {}
        for i, name in enumerate(self._segment_of):
            groups.setdefault(name, []).append(i)
        return {name: np.asarray(positions, dtype=np.int64) for name, positions in groups.items()}

    def _gather_small(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-record arrays (small: N x F) gathered into RAM, one fancy index per segment."""
        if not self.names:
            empty = np.zeros((0, 0), dtype=np.float32)
            return empty, empty.astype(bool), empty.astype(bool)
        first = next(iter(self._segments.values())).arrays
        out = {
            key: np.zeros((len(self.names), first[key].shape[1]), dtype=dtype)
            for key, dtype in (("features", np.float32), ("feature_present", bool), ("quality", bool))
        }
        for name, positions in self._by_segment().items():
            rows = self._row_of[positions]
            for key, array in out.items():
                array[positions] = self._segments[name].arrays[key][rows]
        return out["features"], out["feature_present"], out["quality"]

    # -- public API
    def __len__(self) -> int:
        return len(self.names)

    @property
    def total_windows(self) -> int:
        return int(self.window_offsets[-1])

    def num_windows(self, i: int) -> int:
        """Windows of record ``i``."""
        return int(self.window_offsets[i + 1] - self.window_offsets[i])

    def _window_rows(self, i: int) -> tuple[Segment, int, int]:
        start = int(self._start_of[i])
        return self._segments[self._segment_of[i]], start, start + self.num_windows(i)

    def record_arrays(self, i: int) -> dict[str, np.ndarray]:
        """Zero-copy memory-mapped views of record ``i`` (stored dtype)."""
        if not 0 <= i < len(self):
            raise IndexError(f"record {i} out of range for a store of {len(self)}")
        seg, start, stop = self._window_rows(i)
        row = self._row_of[i]
        return {
            "windows": seg.arrays["windows"][start:stop],
            "fiducials": seg.arrays["fiducials"][start:stop],
            "features": seg.arrays["features"][row],
            "feature_present": seg.arrays["feature_present"][row],
            "quality": seg.arrays["quality"][row],
        }

    def record(self, i: int) -> Any:
        """Record ``i`` as a :class:`~ecgsignal.pipeline.Prepared` (float32 copies)."""
        from ecgsignal.pipeline import Prepared

        views = self.record_arrays(i)
        readers = self._readers[self._segment_of[i]]
        _, start, stop = self._window_rows(i)
        return Prepared(
            windows=readers["windows"].rows(start, stop).astype(np.float32),
            fiducials=readers["fiducials"].rows(start, stop).astype(np.float32),
            features=np.array(views["features"], dtype=np.float32),
            feature_present=np.array(views["feature_present"], dtype=bool),
            quality=np.array(views["quality"], dtype=bool),
        )

    def window(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Window ``j`` of record ``i``: (signal float32 (L, T), fiducials float32 (C, T))."""
        if not 0 <= j < self.num_windows(i):
            raise IndexError(f"window {j} out of range: record {self.names[i]} has {self.num_windows(i)}")
        start = int(self._start_of[i])
        readers = self._readers[self._segment_of[i]]
        return (
            readers["windows"].rows(start + j, start + j + 1)[0].astype(np.float32),
            readers["fiducials"].rows(start + j, start + j + 1)[0].astype(np.float32),
        )

    def locate(self, k: int | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat window index (over the whole store) -> (record index, window within record)."""
        k = np.asarray(k, dtype=np.int64)
        if np.any((k < 0) | (k >= self.total_windows)):
            raise IndexError(f"flat window index out of range 0..{self.total_windows - 1}")
        record = np.searchsorted(self.window_offsets, k, side="right") - 1
        return record, k - self.window_offsets[record]

    def windows_at(self, flat: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A batch of windows by flat index: (float32 (K, L, T), float32 (K, C, T))."""
        records, within = self.locate(np.asarray(flat, dtype=np.int64).reshape(-1))
        pairs = [self.window(int(i), int(j)) for i, j in zip(records, within)]
        if not pairs:
            raise ValueError("windows_at needs at least one index")
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    def __repr__(self) -> str:
        return (
            f"PreparedStore({len(self)} records, {self.total_windows} windows, {len(self.failed)} failed, {self.root})"
        )


__all__ = ["PreparedStore"]
