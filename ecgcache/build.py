""":func:`prepare_folder`: hash the records, reuse what the cache holds and verifies, prepare the rest."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ecgcache.keys import cache_key, hash_records
from ecgcache.pool import prepare_records
from ecgcache.segments import Segment, SegmentError, SegmentWriter, drop_segments, load_index, open_segment
from ecgcache.segments import remove_abandoned as remove_abandoned_segments
from ecgcache.shared import locked, read_json, write_json
from ecgcache.store import PreparedStore
from ecgio.record import header_path
from ecglog.progress import progress as progress_bar

log = logging.getLogger(__name__)

#: Records per segment: a crash loses at most this many computed records.
SEGMENT_RECORDS = 2048
#: Rounds of (verify, compute the missing); the last only verifies. A record computed and still missing
#: (another process dropped the segment holding it) is computed once more before it counts as failed.
_ROUNDS = 3
#: Segments verified (checksummed) in this process and still mapped by some store: not verified again.
_VERIFIED: weakref.WeakValueDictionary[tuple[str, str], Segment] = weakref.WeakValueDictionary()


def _open_segments(root: Path, names: set[str], opened: dict[str, Segment], progress: bool) -> dict[str, str]:
    """Verify and map ``names`` into ``opened`` (threads: hashing releases the GIL); returns the bad ones' problems."""
    todo = []
    for name in names - opened.keys():
        known = _VERIFIED.get((str(root), name))
        if known is not None:
            opened[name] = known
        else:
            todo.append(name)
    bad: dict[str, str] = {}

    def verify(name: str) -> tuple[str, Segment | None, str | None]:
        try:
            return name, open_segment(root, name), None
        except SegmentError as error:
            return name, None, str(error)

    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1, len(todo)))) as pool:
        checked = progress_bar(
            pool.map(verify, todo), total=len(todo), desc="verifying", unit="seg", enabled=progress and len(todo) > 4
        )
        for name, segment, problem in checked:
            if segment is None:
                bad[name] = problem or "unusable"
            else:
                opened[name] = segment
                _VERIFIED[(str(root), name)] = segment
    return bad


def _locate(
    root: Path, wanted: Sequence[str], opened: dict[str, Segment], progress: bool
) -> dict[str, tuple[str, int]]:
    """Where each wanted record lies in a verified segment; bad segments and wrong entries are dropped."""
    index = load_index(root)
    bad = _open_segments(root, {index[d][1] for d in wanted if d in index}, opened, progress)
    for name, problem in sorted(bad.items()):
        log.warning("dropping cache segment %s: %s; its records will be prepared again", root / name, problem)
    placed: dict[str, tuple[str, int]] = {}
    wrong: set[str] = set()
    for digest in wanted:
        entry = index.get(digest)
        if entry is None or entry[1] in bad:
            continue
        _, name, row = entry
        rows = opened[name].rows
        if row < len(rows) and rows[row][0] == digest:
            placed[digest] = (name, row)
        else:
            wrong.add(digest)
    if wrong:
        log.warning("%s: dropping %d index entries that do not match their segment", root / "index.json", len(wrong))
    drop_segments(root, set(bad), frozenset(wrong))
    return placed


def _compute(
    todo: list[tuple[str, Path]],
    root: Path,
    leads: tuple[str, ...],
    config: Any,
    dtype: str,
    n_jobs: int,
    progress: bool,
) -> dict[str, str]:
    """Prepare ``todo`` (content hash, header) into new segments; returns failures by content hash."""
    failures: dict[str, str] = {}
    results = prepare_records([header for _, header in todo], leads, config, dtype, n_jobs)
    try:
        _write_segments(todo, results, root, dtype, progress, failures)
    except OSError as error:  # a full or read-only cache disk: the cache is named, not just the errno
        raise OSError(
            f"{root}: cannot write the feature cache ({error.strerror or error}); free space there, or set"
            " ECG_CACHE_DIR (training: the cache_dir setting) to a folder on another disk"
        ) from error
    return failures


def _write_segments(
    todo: list[tuple[str, Path]], results: Any, root: Path, dtype: str, progress: bool, failures: dict[str, str]
) -> None:
    """Append each prepared record to a segment (a new one every ``SEGMENT_RECORDS``); failures by content hash."""
    writer = SegmentWriter(root, dtype)
    try:
        for i, result in progress_bar(results, total=len(todo), desc="preparing", unit="rec", enabled=progress):
            digest, header = todo[i]
            if result["ok"]:
                problem = writer.add(digest, header.stem, result["arrays"])
                error = None if problem is None else f"{header}: {problem}"
            else:
                error = result["error"]
            if error is not None:
                failures[digest] = error
                log.warning("skipping record: %s", error)
            if len(writer) >= SEGMENT_RECORDS:
                writer.close()
                writer = SegmentWriter(root, dtype)
    except BaseException:
        try:
            writer.close()  # an interrupted run keeps what it finished
        except Exception:
            writer.abort()
        raise
    writer.close()


def _save_memo(base: Path, learned: dict[str, dict]) -> None:
    if not learned:
        return
    with locked(base / ".hashes.lock"):
        merged = read_json(base / "hashes.json", {})
        merged = merged if isinstance(merged, dict) else {}
        merged.update(learned)
        write_json(base / "hashes.json", merged)


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
    are skipped and listed in ``store.failed``; a damaged cache segment is dropped (with a warning
    naming it) and its records are prepared again in this call.
    """
    start = time.perf_counter()
    leads = tuple(leads)
    headers = [header_path(Path(h)) for h in headers]
    key, meta = cache_key(config, leads, dtype)
    temporary = cache_dir is None
    base = Path(tempfile.mkdtemp(prefix="ecgcache-")) if cache_dir is None else Path(cache_dir)
    root = base / key
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "meta.json").exists():
        write_json(root / "meta.json", meta)
    remove_abandoned_segments(root)

    memo = read_json(base / "hashes.json", {})
    hashes, hash_errors, learned = hash_records(headers, memo if isinstance(memo, dict) else {}, progress)
    header_of: dict[str, Path] = {}
    for header, digest in zip(headers, hashes):
        if digest is not None:
            header_of.setdefault(digest, header)
    opened: dict[str, Segment] = {}
    failures: dict[str, str] = {}
    hits, computed = 0, 0
    for round_ in range(_ROUNDS):
        placed = _locate(root, [d for d in header_of if d not in failures], opened, progress)
        if round_ == 0:
            hits = sum(1 for d in hashes if d is not None and d in placed)
        todo = [(d, h) for d, h in header_of.items() if d not in placed and d not in failures]
        if not todo or round_ == _ROUNDS - 1:
            break
        computed += len(todo)
        failures.update(_compute(todo, root, leads, config, dtype, n_jobs, progress))
    if not temporary:
        _save_memo(base, learned)

    entries, failed = [], {}
    for i, (header, digest) in enumerate(zip(headers, hashes)):
        if digest is None:
            failed[header.stem] = hash_errors[i]
        elif digest in failures or digest not in placed:
            failed[header.stem] = failures.get(digest, f"{header}: not prepared (its cache segment kept disappearing)")
        else:
            entries.append((header.stem, header, *placed[digest]))
    seconds = time.perf_counter() - start
    stats = {"records": len(headers), "failed": len(failed), "hits": hits, "computed": computed, "seconds": seconds}
    store = PreparedStore(root, entries, failed, opened, stats)
    if temporary:
        weakref.finalize(store, shutil.rmtree, str(base), True)
    log.info(
        "prepare_folder: %d records, %d failed, %d cache hits, %d computed, %.1f s (cache %s)",
        len(headers),
        len(failed),
        hits,
        computed,
        seconds,
        root,
    )
    return store


__all__ = ["SEGMENT_RECORDS", "prepare_folder"]
