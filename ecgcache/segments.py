"""Segments: the unit in which prepared records are written, published, verified and dropped.

A segment is a folder of array files holding up to ``SEGMENT_RECORDS`` records, plus
``segment.json`` (rows, window offsets, and each array file's shape, dtype, size and SHA-256
checksum, itself checksummed). It is written under a unique hidden name (``.tmp-seg-*``,
flock'ed by its writer), renamed to ``seg-*`` when complete, and only then entered into
``index.json`` under the cache's lock. A reader that finds a segment through the index
therefore never sees half of one; a crashed writer leaves only a hidden folder, which the
next run removes once no process holds its lock.

:func:`open_segment` checks everything ``segment.json`` promises (offsets consistent with the
array shapes, every file's size and checksum) before mapping the files; a segment that fails
is dropped from the index with :func:`drop_segments` and its records are computed again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ecgcache.arrays import ArrayFileError, NpyAppender, open_verified
from ecgcache.keys import FORMAT_VERSION
from ecgcache.shared import locked, read_json, write_json

log = logging.getLogger(__name__)

ARRAYS = ("windows", "fiducials", "features", "feature_present", "quality")
WINDOWED = ("windows", "fiducials")
SEGMENT_NAME = re.compile(r"^seg-[0-9]{14}-[0-9a-f]{12}$")
_TEMPORARY_PREFIX = ".tmp-seg-"
_WRITING = ".writing"
#: A hidden segment folder without a lock file, or an unpublished segment, this old is a crashed writer's.
_ORPHAN_SECONDS = 3600.0


class SegmentError(Exception):
    """A segment that cannot be used (the message names it and the problem)."""


@dataclass
class Segment:
    name: str
    arrays: dict[str, np.ndarray]
    offsets: np.ndarray
    rows: list[list[str]]


def _tail(key: str, array: np.ndarray) -> tuple[int, ...]:
    """Per-row shape of an array in a segment file (windowed arrays add rows per window)."""
    return tuple(array.shape[1:]) if key in WINDOWED else tuple(array.shape)


def _checksum(content: dict[str, Any]) -> str:
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


# --------------------------------------------------------------------------- index
def load_index(root: Path) -> dict[str, tuple[str, str, int]]:
    """``index.json`` as {content hash: (name, segment, row)}; malformed entries are left out with a warning."""
    content = read_json(root / "index.json", {})
    records = content.get("records", {}) if isinstance(content, dict) else {}
    index: dict[str, tuple[str, str, int]] = {}
    bad = 0
    for digest, entry in records.items() if isinstance(records, dict) else ():
        try:
            name, segment, row = entry
            if isinstance(name, str) and SEGMENT_NAME.match(segment) and isinstance(row, int) and row >= 0:
                index[digest] = (name, segment, row)
                continue
        except (TypeError, ValueError):
            pass
        bad += 1
    if bad:
        log.warning("%s: ignoring %d malformed entries", root / "index.json", bad)
    return index


def _save_index(root: Path, index: dict[str, tuple[str, str, int]]) -> None:
    write_json(root / "index.json", {"format": FORMAT_VERSION, "records": {d: list(e) for d, e in index.items()}})


def publish(root: Path, segment: str, rows: list[list[str]]) -> int:
    """Enter a renamed segment's rows into the index (a record already held by a present segment keeps it).

    Returns how many rows were entered; two processes that prepared the same record keep the
    first one published.
    """
    with locked(root / ".lock"):
        index = load_index(root)
        present: dict[str, bool] = {}
        accepted = 0
        for row, (digest, name) in enumerate(rows):
            current = index.get(digest)
            if current is not None:
                holder = current[1]
                if holder not in present:
                    present[holder] = (root / holder / "segment.json").is_file()
                if present[holder]:
                    continue
            index[digest] = (name, segment, row)
            accepted += 1
        if accepted:
            _save_index(root, index)
    return accepted


def drop_segments(root: Path, names: set[str], digests: frozenset[str] = frozenset()) -> None:
    """Remove segments (and single wrong entries, by content hash) from the index, then the segments from the disk.

    Processes that already mapped a removed segment keep their maps (POSIX keeps unlinked files alive).
    """
    if not names and not digests:
        return
    with locked(root / ".lock"):
        index = load_index(root)
        kept = {d: e for d, e in index.items() if e[1] not in names and d not in digests}
        if len(kept) != len(index):
            _save_index(root, kept)
    for name in names:
        shutil.rmtree(root / name, ignore_errors=True)


# --------------------------------------------------------------------------- writing
class SegmentWriter:
    """Appends computed records to one hidden segment folder; ``close`` renames and publishes it."""

    def __init__(self, root: Path, dtype: str) -> None:
        self.root, self.dtype = root, np.dtype(dtype)
        self.folder = Path(tempfile.mkdtemp(prefix=_TEMPORARY_PREFIX, dir=root))
        try:
            self._lock = open(self.folder / _WRITING, "a+")  # noqa: SIM115 (held until close or abort)
            fcntl.flock(self._lock, fcntl.LOCK_EX)
        except BaseException:  # a full disk: no lock file, so nobody would know this folder is abandoned
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        self.files: dict[str, NpyAppender] = {}
        self.offsets = [0]
        self.rows: list[list[str]] = []

    def _shape_problem(self, arrays: dict[str, np.ndarray]) -> str | None:
        """Why a record's arrays cannot share this segment's files, or None."""
        w, f = arrays["windows"], arrays["fiducials"]
        if w.ndim != 3 or f.ndim != 3 or w.shape[0] != f.shape[0] or f.shape[2] != w.shape[2]:
            return f"inconsistent window shapes {w.shape} and {f.shape}"
        if arrays["features"].shape != arrays["feature_present"].shape:
            return "features and feature_present differ in shape"
        for key, appender in self.files.items():
            actual = _tail(key, arrays[key])
            if actual != appender.tail:
                return f"{key} shape {actual} differs from earlier records' {appender.tail}"
        return None

    def add(self, digest: str, name: str, arrays: dict[str, np.ndarray]) -> str | None:
        """Append one record; returns an error message instead when its shapes do not fit."""
        problem = self._shape_problem(arrays)
        if problem is not None:
            return problem
        if not self.files:
            for key in ARRAYS:
                dtype = self.dtype if key in WINDOWED else arrays[key].dtype
                self.files[key] = NpyAppender(self.folder / f"{key}.npy", dtype, _tail(key, arrays[key]))
        for key in ARRAYS:
            self.files[key].append(arrays[key] if key in WINDOWED else arrays[key][None])
        self.offsets.append(self.offsets[-1] + arrays["windows"].shape[0])
        self.rows.append([digest, name])
        return None

    def __len__(self) -> int:
        return len(self.rows)

    def close(self) -> str | None:
        """Finish the files, rename the folder to its final name and publish it; returns that name.

        None when nothing was published (no rows, or every record was already published by
        another process, in which case this copy is removed).
        """
        if not self.rows:
            self.abort()
            return None
        description = {key: appender.close() for key, appender in self.files.items()}
        content = {"format": FORMAT_VERSION, "rows": self.rows, "offsets": self.offsets, "arrays": description}
        write_json(self.folder / "segment.json", {**content, "checksum": _checksum(content)})
        name = f"seg-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:12]}"
        os.rename(self.folder, self.root / name)
        (self.root / name / _WRITING).unlink(missing_ok=True)
        self._release()
        if not publish(self.root, name, self.rows):
            shutil.rmtree(self.root / name, ignore_errors=True)
            return None
        return name

    def abort(self) -> None:
        """Drop the unfinished segment (nothing of it was ever visible to readers)."""
        for appender in self.files.values():
            appender.discard()
        shutil.rmtree(self.folder, ignore_errors=True)
        self._release()

    def _release(self) -> None:
        if not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()


def remove_abandoned(root: Path) -> None:
    """Remove what crashed writers left: hidden folders whose writer is gone, complete but unpublished segments.

    A hidden folder is abandoned when no process holds its lock (or it never took one and is
    old); a ``seg-*`` folder the index does not name is one renamed by a writer that died
    before publishing it, once it is old enough that no live writer can be about to publish it.
    """
    for folder in root.glob(f"{_TEMPORARY_PREFIX}*"):
        if _writer_gone(folder):
            log.info("removing %s, left by an interrupted run", folder)
            shutil.rmtree(folder, ignore_errors=True)
    published = {entry[1] for entry in load_index(root).values()}
    for folder in root.glob("seg-*"):
        with contextlib.suppress(OSError):
            if folder.name not in published and time.time() - folder.stat().st_mtime > _ORPHAN_SECONDS:
                log.info("removing %s, a segment no index entry names", folder)
                shutil.rmtree(folder, ignore_errors=True)


def _writer_gone(folder: Path) -> bool:
    try:
        handle = os.open(folder / _WRITING, os.O_RDONLY)
    except FileNotFoundError:
        try:
            return time.time() - folder.stat().st_mtime > _ORPHAN_SECONDS
        except OSError:
            return False
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False  # a live writer holds it
    finally:
        os.close(handle)


# --------------------------------------------------------------------------- reading
def _read_description(folder: Path) -> dict[str, Any]:
    path = folder / "segment.json"
    try:
        content = json.loads(path.read_text())
    except FileNotFoundError:
        raise SegmentError(f"{folder}: segment is missing" if not folder.exists() else f"{path}: missing") from None
    except (OSError, ValueError) as error:
        raise SegmentError(f"{path}: unreadable ({error})") from None
    if not isinstance(content, dict) or content.get("format") != FORMAT_VERSION:
        raise SegmentError(f"{path}: not a format-{FORMAT_VERSION} segment description")
    checksum = content.pop("checksum", None)
    if checksum != _checksum(content):
        raise SegmentError(f"{path}: checksum mismatch")
    return content


def _offsets(content: dict[str, Any], folder: Path) -> tuple[np.ndarray, list[list[str]]]:
    rows, offsets = content["rows"], np.asarray(content["offsets"])
    if not isinstance(rows, list) or not rows or offsets.shape != (len(rows) + 1,) or offsets.dtype.kind != "i":
        raise SegmentError(f"{folder}: {len(rows)} rows do not match {offsets.shape} offsets")
    if not all(isinstance(row, list) and len(row) == 2 and all(isinstance(v, str) for v in row) for row in rows):
        raise SegmentError(f"{folder}: malformed rows (expected [content hash, name] pairs)")
    if offsets[0] != 0 or np.any(np.diff(offsets) < 0):
        raise SegmentError(f"{folder}: window offsets are not increasing from 0")
    return offsets.astype(np.int64), rows


def open_segment(root: Path, name: str) -> Segment:
    """Verify and map one segment (reads every byte of it once); :class:`SegmentError` says what is wrong."""
    folder = root / name
    content = _read_description(folder)
    try:
        offsets, rows = _offsets(content, folder)
        arrays = {key: open_verified(folder / f"{key}.npy", content["arrays"][key]) for key in ARRAYS}
    except ArrayFileError as error:
        raise SegmentError(str(error)) from None
    except (KeyError, TypeError, ValueError) as error:
        raise SegmentError(f"{folder}: malformed segment description ({type(error).__name__}: {error})") from None
    windows = int(offsets[-1])
    for key in WINDOWED:
        if arrays[key].ndim != 3 or arrays[key].shape[0] != windows:
            raise SegmentError(f"{folder}: {key} has shape {arrays[key].shape}, offsets say {windows} windows")
    for key in ("features", "feature_present", "quality"):
        if arrays[key].ndim != 2 or arrays[key].shape[0] != len(rows):
            raise SegmentError(f"{folder}: {key} has shape {arrays[key].shape} for {len(rows)} rows")
    if arrays["features"].shape != arrays["feature_present"].shape:
        raise SegmentError(f"{folder}: features and feature_present differ in shape")
    return Segment(name, arrays, offsets, rows)


__all__ = [
    "ARRAYS",
    "Segment",
    "SegmentError",
    "SegmentWriter",
    "drop_segments",
    "load_index",
    "open_segment",
    "publish",
    "remove_abandoned",
]
