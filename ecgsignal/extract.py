"""Parallel, cached, memory-mapped extraction of :class:`~ecgsignal.pipeline.Prepared` records.

Training reads tens of thousands of records many times; preprocessing and delineating them
again every epoch (or every run) would cost hours, and holding 88,000 prepared records in
RAM would not fit. :func:`prepare_folder` therefore runs :func:`ecgsignal.pipeline.prepare`
once per record in joblib (loky) worker processes, streams the results into flat ``.npy``
files on disk, and hands back a :class:`PreparedStore` that opens them with
``mmap_mode='r'``: the operating system pages in only the windows the trainer touches.

Cache key
---------
A cached result is reused only when all of these are unchanged:

* the record's content: a BLAKE2b hash of the header bytes and of every signal file the
  header names (so an edited header or signal is recomputed, and a moved or renamed file
  with the same bytes is a hit);
* the parameters: ``config.to_dict()``, the requested ``leads`` and the storage dtype;
* the code: a hash of the source of the modules that compute the result
  (``ecgsignal.config/preprocess/wavelet/delineate/features/pipeline`` and the record
  reader), so a fixed delineator never serves stale features.

Hashing 88,000 records reads every byte once; afterwards ``hashes.json`` remembers each
file's (size, mtime) so a later run only ``stat``s the files, as ``git`` and ``make`` do.

On-disk layout
--------------
::

    cache_dir/
      hashes.json                 header path -> {"files": [[path, size, mtime_ns], ...], "hash": h}
      <key>/                      one folder per (config, leads, dtype, code version); key = 16 hex
        meta.json                 the config dict, leads, dtype, code version behind the key
        index.json                {"records": {content hash: [name, segment, row]}}
        .lock                     flock'ed while index.json is rewritten
        seg-<time>-<id>/          one segment per <= SEGMENT_RECORDS computed records
          windows.npy             (W_seg, L, T)  float16 (default) or float32
          fiducials.npy           (W_seg, C, T)  same dtype
          features.npy            (n_seg, F)     float32, NaN where absent
          feature_present.npy     (n_seg, F)     bool
          quality.npy             (n_seg, L)     bool
          offsets.npy             (n_seg + 1,)   int64: windows of row r are offsets[r]:offsets[r+1]
          rows.json               [[content hash, name], ...] per row (lets the index be rebuilt)

Workers return each record's arrays to the parent, which appends them to the open
segment's ``.npy`` files (fixed-size headers, rewritten with the final shape when the
segment closes); a segment closes and enters the index every ``SEGMENT_RECORDS`` records,
so an interrupted run keeps what it finished. A segment is never rewritten: later runs
add segments for their misses, and a store may span several segments.

A record that fails (unreadable file, bad header, pipeline error) is logged, listed in
:attr:`PreparedStore.failed` with its error message, and skipped; failures are not cached,
so a transient failure is retried next run. With ``cache_dir=None`` the same layout is
built in a temporary folder that is deleted when the store is garbage collected.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ecgio import RecordError, read_header, read_record
from ecgio.files import atomic_write
from ecgio.record import header_path
from ecglog.progress import progress as progress_bar

log = logging.getLogger(__name__)

#: Bump when the layout or the meaning of stored arrays changes.
FORMAT_VERSION = 1
#: Records per segment: a crash loses at most this many computed records.
SEGMENT_RECORDS = 2048
#: Modules whose source is part of the cache key (a code change recomputes).
KEYED_MODULES = (
    "ecgsignal/config.py",
    "ecgsignal/preprocess.py",
    "ecgsignal/wavelet.py",
    "ecgsignal/delineate.py",
    "ecgsignal/features.py",
    "ecgsignal/pipeline.py",
    "ecgio/header.py",
    "ecgio/record.py",
    "ecgio/leads.py",
)
_ARRAYS = ("windows", "fiducials", "features", "feature_present", "quality")
_WINDOWED = ("windows", "fiducials")
_NPY_HEADER_BYTES = 128
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- keys and hashes
@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of the source of :data:`KEYED_MODULES` (missing files hash as absent).

    Computed once per process: the code that runs is the code imported when it started, and
    one process keeps one key even while the files are being edited.
    """
    digest = hashlib.blake2b(digest_size=8)
    for relative in KEYED_MODULES:
        path = _PACKAGE_ROOT / relative
        digest.update(relative.encode() + b"\0")
        digest.update(path.read_bytes() if path.exists() else b"<absent>")
    return digest.hexdigest()


def cache_key(config: Any, leads: Sequence[str], dtype: str) -> tuple[str, dict]:
    """The folder name for one (config, leads, dtype, code) combination, and what it stands for."""
    meta = {
        "format": FORMAT_VERSION,
        "config": config.to_dict(),
        "leads": list(leads),
        "dtype": np.dtype(dtype).name,
        "code": code_version(),
    }
    text = json.dumps(meta, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest(), meta


def record_files(header: Path) -> list[Path]:
    """The header and the signal files it names (or the ``.mat``/``.dat`` beside it)."""
    files = [header]
    try:
        named = {header.parent / name for name in read_header(header).file_names}
    except RecordError:
        named = set()
    named |= {p for p in (header.with_suffix(".mat"), header.with_suffix(".dat")) if p.exists()}
    return files + sorted(named)


def content_hash(files: Sequence[Path]) -> str:
    """BLAKE2b of the files' bytes, each prefixed by its name relative to the first (the header)."""
    digest = hashlib.blake2b(digest_size=16)
    for i, path in enumerate(files):
        label = "header" if i == 0 else path.name
        digest.update(label.encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _stat_signature(files: Sequence[Path]) -> list[list]:
    out = []
    for path in files:
        stat = path.stat()
        out.append([str(path), stat.st_size, stat.st_mtime_ns])
    return out


def _hash_one(header: Path, memo: dict) -> tuple[str, dict]:
    """Content hash of one record, reusing ``memo`` when no file's size or mtime changed."""
    known = memo.get(str(header))
    if known is not None:
        try:
            if _stat_signature([Path(p) for p, _, _ in known["files"]]) == known["files"]:
                return known["hash"], known
        except OSError:
            pass
    if not header.exists():
        raise RecordError(header, "header file is missing")
    files = record_files(header)
    try:
        signature = _stat_signature(files)
        digest = content_hash(files)
    except OSError as error:
        raise RecordError(header, f"cannot read record files ({error})") from None
    return digest, {"files": signature, "hash": digest}


def hash_records(headers: Sequence[Path], memo: dict, progress: bool) -> tuple[list[str | None], dict[int, str]]:
    """Content hashes of all records (threads: reading and hashing release the GIL)."""
    hashes: list[str | None] = [None] * len(headers)
    errors: dict[int, str] = {}

    def work(i: int) -> tuple[int, str | None, dict | None, str | None]:
        try:
            digest, entry = _hash_one(headers[i], memo)
            return i, digest, entry, None
        except RecordError as error:
            return i, None, None, str(error)

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        results = pool.map(work, range(len(headers)))
        bar = progress_bar(
            results, total=len(headers), desc="hashing", unit="rec", enabled=progress and len(headers) >= 500
        )
        for i, digest, entry, error in bar:
            if error is not None:
                errors[i] = error
            else:
                hashes[i] = digest
                memo[str(headers[i])] = entry
    return hashes, errors


# --------------------------------------------------------------------------- small file helpers
def _write_json(path: Path, content: Any) -> None:
    """Atomic JSON write (a reader never sees half a file)."""
    atomic_write(path, json.dumps(content, separators=(",", ":")), sync=False)


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as error:
        log.warning("ignoring unreadable cache file %s (%s)", path, error)
        return default


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Exclusive flock on ``path`` (so two runs sharing a cache never lose index entries)."""
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """A version-1.0 ``.npy`` header padded to a fixed size, so it can be rewritten in place."""
    descr = np.lib.format.dtype_to_descr(dtype)
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {tuple(int(n) for n in shape)!r}, }}"
    room = _NPY_HEADER_BYTES - 10
    if len(text) + 1 > room:
        raise ValueError(f"shape {shape} does not fit a {_NPY_HEADER_BYTES}-byte .npy header")
    body = text.ljust(room - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body.encode("latin1")


class _NpyAppender:
    """An ``.npy`` file that grows along axis 0; the header gets the final shape on close."""

    def __init__(self, path: Path, dtype: np.dtype, tail: tuple[int, ...]) -> None:
        self.path, self.dtype, self.tail, self.rows = path, np.dtype(dtype), tail, 0
        self.handle = open(path, "wb")  # noqa: SIM115 (closed by close())
        self.handle.write(_npy_header(self.dtype, (0, *tail)))

    def append(self, array: np.ndarray) -> None:
        self.handle.write(np.ascontiguousarray(array, dtype=self.dtype).tobytes())
        self.rows += array.shape[0]

    def close(self) -> None:
        self.handle.seek(0)
        self.handle.write(_npy_header(self.dtype, (self.rows, *self.tail)))
        self.handle.close()


def _open_array(path: Path) -> np.ndarray:
    """Memory-map an ``.npy`` file (an empty array cannot be mapped, so it is read)."""
    try:
        return np.load(path, mmap_mode="r")
    except ValueError:
        return np.load(path)


# --------------------------------------------------------------------------- worker
def select_leads(signal: np.ndarray, have: Sequence[str], want: Sequence[str]) -> np.ndarray:
    """Rows of ``signal`` (leads ``have``) in the order ``want``; absent leads are zero rows."""
    position = {name: i for i, name in enumerate(have)}
    out = np.zeros((len(want), signal.shape[1]), dtype=np.float32)
    for row, name in enumerate(want):
        if name in position:
            out[row] = signal[position[name]]
    return out


def _describe(error: BaseException, header: Path) -> str:
    """An error message that names the file (RecordError already does)."""
    if isinstance(error, RecordError):
        return str(error)
    return f"{header}: {type(error).__name__}: {error}"


def prepare_one(header: Path, leads: tuple[str, ...], config: Any, dtype: str) -> dict:
    """Read and prepare one record (runs in a worker); never raises, reports the error instead."""
    from ecgsignal.pipeline import prepare

    try:
        record = read_record(header)
        signal = select_leads(record.signal, record.leads, leads)
        prepared = prepare(signal, record.fs, leads, config)
        arrays = {
            "windows": np.asarray(prepared.windows, dtype=dtype),
            "fiducials": np.asarray(prepared.fiducials, dtype=dtype),
            "features": np.asarray(prepared.features, dtype=np.float32),
            "feature_present": np.asarray(prepared.feature_present, dtype=bool),
            "quality": np.asarray(prepared.quality, dtype=bool),
        }
        return {"ok": True, "arrays": arrays}
    except Exception as error:  # one bad record must never stop the batch
        return {"ok": False, "error": _describe(error, header)}


def _prepare_indexed(i: int, header: Path, leads: tuple[str, ...], config: Any, dtype: str) -> tuple[int, dict]:
    return i, prepare_one(header, leads, config, dtype)


# --------------------------------------------------------------------------- segments
def _tail(key: str, array: np.ndarray) -> tuple[int, ...]:
    """Per-row shape of an array in a segment file (windowed arrays add rows per window)."""
    return tuple(array.shape[1:]) if key in _WINDOWED else tuple(array.shape)


class _SegmentWriter:
    """Appends computed records to one new segment folder; ``close`` publishes it in the index."""

    def __init__(self, root: Path, dtype: str) -> None:
        self.root, self.dtype = root, np.dtype(dtype)
        self.name = f"seg-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self.folder = root / self.name
        self.folder.mkdir()
        self.files: dict[str, _NpyAppender] = {}
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
            for key in _ARRAYS:
                dtype = self.dtype if key in _WINDOWED else arrays[key].dtype
                self.files[key] = _NpyAppender(self.folder / f"{key}.npy", dtype, _tail(key, arrays[key]))
        for key in _ARRAYS:
            array = arrays[key] if key in _WINDOWED else arrays[key][None]
            self.files[key].append(array)
        self.offsets.append(self.offsets[-1] + arrays["windows"].shape[0])
        self.rows.append([digest, name])
        return None

    def __len__(self) -> int:
        return len(self.rows)

    def close(self) -> None:
        """Finish the files and add the rows to ``index.json`` (or drop an empty segment)."""
        for appender in self.files.values():
            appender.close()
        if not self.rows:
            shutil.rmtree(self.folder, ignore_errors=True)
            return
        np.save(self.folder / "offsets.npy", np.asarray(self.offsets, dtype=np.int64))
        _write_json(self.folder / "rows.json", self.rows)
        with _locked(self.root / ".lock"):
            index = _read_json(self.root / "index.json", {"records": {}})
            for row, (digest, name) in enumerate(self.rows):
                index["records"][digest] = [name, self.name, row]
            _write_json(self.root / "index.json", index)


# --------------------------------------------------------------------------- the store
@dataclass
class _Segment:
    arrays: dict[str, np.ndarray]
    offsets: np.ndarray


class PreparedStore:
    """Prepared records backed by memory-mapped segment files (see the module docstring).

    Record ``i`` (0 <= i < len(store)) is ``names[i]``, in the order the headers were given,
    failed records left out. Windows can be addressed per record (``window(i, j)``) or by a
    flat index ``k`` over all windows of the store (``window_offsets``, ``windows_at``),
    which is what a training data loader wants. Arrays come back as float32 copies; the
    files are only read, never loaded whole.
    """

    def __init__(
        self,
        root: Path,
        entries: Sequence[tuple[str, Path, str, int]],
        failed: dict[str, str],
        stats: dict[str, float] | None = None,
    ) -> None:
        self.root = root
        self.names: list[str] = [name for name, _, _, _ in entries]
        self.paths: list[Path] = [path for _, path, _, _ in entries]
        self.failed: dict[str, str] = dict(failed)
        self.stats: dict[str, float] = dict(stats or {})
        self._segments: dict[str, _Segment] = {}
        self._segment_of = [segment for _, _, segment, _ in entries]
        self._row_of = np.asarray([row for _, _, _, row in entries], dtype=np.int64)
        counts = np.asarray([self._counts(i) for i in range(len(entries))], dtype=np.int64)
        self.window_offsets: np.ndarray = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.features, self.feature_present, self.quality = self._gather_small()

    # -- segment access
    def _segment(self, name: str) -> _Segment:
        if name not in self._segments:
            folder = self.root / name
            arrays = {key: _open_array(folder / f"{key}.npy") for key in _ARRAYS}
            self._segments[name] = _Segment(arrays, np.load(folder / "offsets.npy"))
        return self._segments[name]

    def _counts(self, i: int) -> int:
        seg = self._segment(self._segment_of[i])
        row = self._row_of[i]
        return int(seg.offsets[row + 1] - seg.offsets[row])

    def _gather_small(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-record arrays (small: N x F) gathered into RAM for fast access."""
        if not self.names:
            empty = np.zeros((0, 0), dtype=np.float32)
            return empty, empty.astype(bool), empty.astype(bool)
        parts: dict[str, list[np.ndarray]] = {"features": [], "feature_present": [], "quality": []}
        for i in range(len(self.names)):
            seg = self._segment(self._segment_of[i])
            for key in parts:
                parts[key].append(np.asarray(seg.arrays[key][self._row_of[i]]))
        return (
            np.stack(parts["features"]).astype(np.float32),
            np.stack(parts["feature_present"]).astype(bool),
            np.stack(parts["quality"]).astype(bool),
        )

    # -- public API
    def __len__(self) -> int:
        return len(self.names)

    @property
    def total_windows(self) -> int:
        return int(self.window_offsets[-1])

    def num_windows(self, i: int) -> int:
        """Windows of record ``i``."""
        return int(self.window_offsets[i + 1] - self.window_offsets[i])

    def _window_rows(self, i: int) -> tuple[_Segment, int, int]:
        seg = self._segment(self._segment_of[i])
        start = int(seg.offsets[self._row_of[i]])
        return seg, start, start + self.num_windows(i)

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
        return Prepared(
            windows=np.array(views["windows"], dtype=np.float32),
            fiducials=np.array(views["fiducials"], dtype=np.float32),
            features=np.array(views["features"], dtype=np.float32),
            feature_present=np.array(views["feature_present"], dtype=bool),
            quality=np.array(views["quality"], dtype=bool),
        )

    def window(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Window ``j`` of record ``i``: (signal float32 (L, T), fiducials float32 (C, T))."""
        if not 0 <= j < self.num_windows(i):
            raise IndexError(f"window {j} out of range: record {self.names[i]} has {self.num_windows(i)}")
        seg, start, _ = self._window_rows(i)
        return (
            np.array(seg.arrays["windows"][start + j], dtype=np.float32),
            np.array(seg.arrays["fiducials"][start + j], dtype=np.float32),
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


# --------------------------------------------------------------------------- driver
def _compute_misses(
    todo: list[tuple[str, Path]],
    root: Path,
    leads: tuple[str, ...],
    config: Any,
    dtype: str,
    n_jobs: int,
    progress: bool,
) -> dict[str, str]:
    """Prepare the records in ``todo`` (content hash, header) into new segments; returns failures by hash."""
    from joblib import Parallel, delayed

    failures: dict[str, str] = {}
    if not todo:
        return failures
    jobs = 1 if len(todo) == 1 else n_jobs
    tasks = (delayed(_prepare_indexed)(i, header, leads, config, dtype) for i, (_, header) in enumerate(todo))
    runner = Parallel(n_jobs=jobs, backend="loky", return_as="generator_unordered")
    writer = _SegmentWriter(root, dtype)
    try:
        for i, result in progress_bar(runner(tasks), total=len(todo), desc="preparing", unit="rec", enabled=progress):
            digest, header = todo[i]
            if not result["ok"]:
                failures[digest] = result["error"]
                log.warning("skipping record: %s", result["error"])
                continue
            problem = writer.add(digest, header.stem, result["arrays"])
            if problem is not None:
                failures[digest] = f"{header}: {problem}"
                log.warning("skipping record: %s", failures[digest])
            if len(writer) >= SEGMENT_RECORDS:
                writer.close()
                writer = _SegmentWriter(root, dtype)
    finally:
        writer.close()
    return failures


def prepare_folder(
    headers: Sequence[Path],
    leads: tuple[str, ...],
    config: Any,
    cache_dir: Path | None,
    n_jobs: int = -1,
    progress: bool = True,
    dtype: str = "float16",
) -> PreparedStore:
    """Prepare every record in ``headers`` (cached, in parallel) and return a memory-mapped store.

    ``leads`` is the lead set the model sees (absent leads become zero rows, as the Challenge's
    ``choose_leads`` does); ``dtype`` is how windows and fiducials are stored (float16 halves the
    disk and page cache a 88,000-record cache needs; values come back as float32). Failed records
    are skipped and listed in ``store.failed``.
    """
    start = time.perf_counter()
    leads = tuple(leads)
    headers = [header_path(Path(h)) for h in headers]
    key, meta = cache_key(config, leads, dtype)
    temporary = cache_dir is None
    base = Path(tempfile.mkdtemp(prefix="ecgsignal-cache-")) if cache_dir is None else Path(cache_dir)
    root = base / key
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "meta.json").exists():
        _write_json(root / "meta.json", meta)

    memo = _read_json(base / "hashes.json", {})
    hashes, hash_errors = hash_records(headers, memo, progress)
    index = _read_json(root / "index.json", {"records": {}})["records"]
    known = {d for d, (_, seg, _) in index.items() if (root / seg).is_dir()}
    todo: dict[str, Path] = {}
    for header, digest in zip(headers, hashes):
        if digest is not None and digest not in known and digest not in todo:
            todo[digest] = header
    hits = sum(1 for d in hashes if d is not None and d in known)
    failures = _compute_misses(list(todo.items()), root, leads, config, dtype, n_jobs, progress)
    if not temporary:
        with _locked(base / ".hashes.lock"):
            merged = _read_json(base / "hashes.json", {})
            merged.update(memo)
            _write_json(base / "hashes.json", merged)

    index = _read_json(root / "index.json", {"records": {}})["records"]
    entries, failed = [], {}
    for i, (header, digest) in enumerate(zip(headers, hashes)):
        if digest is None:
            failed[header.stem] = hash_errors[i]
        elif digest in failures or digest not in index:
            failed[header.stem] = failures.get(digest, f"{header}: not prepared")
        else:
            _, segment, row = index[digest]
            entries.append((header.stem, header, segment, int(row)))
    seconds = time.perf_counter() - start
    stats = {"records": len(headers), "failed": len(failed), "hits": hits, "computed": len(todo), "seconds": seconds}
    store = PreparedStore(root, entries, failed, stats)
    if temporary:
        weakref.finalize(store, shutil.rmtree, str(base), True)
    log.info(
        "prepare_folder: %d records, %d failed, %d cache hits, %d computed, %.1f s (cache %s)",
        len(headers),
        len(failed),
        hits,
        len(todo),
        seconds,
        root,
    )
    return store


__all__ = ["FORMAT_VERSION", "PreparedStore", "cache_key", "content_hash", "prepare_folder", "select_leads"]
