"""What a cached result is keyed by: the record's content, the parameters and the code.

Content
-------
A record's key is a BLAKE2b hash of the bytes of its header and of every signal file the
header names (plus the ``.mat``/``.dat`` beside it), each prefixed by its name: an edited
header or signal is recomputed, a moved or renamed record with the same bytes is a hit.
Every file is resolved with :func:`ecgio.files.contained_file` before it is opened, so a
header naming ``../../etc/passwd``, an absolute path, a link out of the folder, a device or a
FIFO is that record's error and is never read.

Hashing 88,000 records reads every byte once. To avoid that on every run, ``hashes.json``
remembers for each header the files' ``stat`` signature (path, size, mtime, ctime, inode,
device). ``rsync -t``, ``cp -p`` and ``tar`` restore size and mtime, so those two alone let a
rewritten file with the same size pass as unchanged; the change time (ctime) and the inode
cannot be set by any copy tool: every write, rename or copy changes one of them. A file whose
ctime is within :data:`RACY_SECONDS` of the moment it was hashed is not remembered at all
(it may still be being written, as git's "racy" index entries), so it is hashed again next run.

Parameters and code
-------------------
:func:`cache_key` names one folder per (format, config, leads, dtype, code version); the code
version hashes the source of :data:`KEYED_MODULES`, the modules that compute what is stored.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ecgio import RecordError, read_header
from ecgio.files import contained_file
from ecglog.progress import progress as progress_bar

#: Bump when the layout or the meaning of stored arrays changes.
FORMAT_VERSION = 2
#: Modules whose source is part of the cache key (a code change recomputes), relative to the repository root.
KEYED_MODULES = (
    "ecgsignal/config.py",
    "ecgsignal/preprocess.py",
    "ecgsignal/wavelet.py",
    "ecgsignal/delineate.py",
    "ecgsignal/beats.py",
    "ecgsignal/waves.py",
    "ecgsignal/sample_windows.py",
    "ecgsignal/confidence.py",
    "ecgsignal/pacing.py",
    "ecgsignal/features.py",
    "ecgsignal/order_stats.py",
    "ecgsignal/pipeline.py",
    "ecgio/header.py",
    "ecgio/record.py",
    "ecgio/leads.py",
    "ecgcache/worker.py",
)
#: Largest header we read (Challenge headers are about 1 kB).
MAX_HEADER_BYTES = 1 << 20
#: Largest signal file we read (the longest Challenge records, 30 min x 12 leads, are about 11 MB).
MAX_SIGNAL_BYTES = 1 << 30
#: Files changed this recently before hashing are not remembered in the stat memo.
RACY_SECONDS = 2.0
_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


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
    """The header, then the signal files it names and the ``.mat``/``.dat`` beside it, all checked.

    Raises :class:`RecordError` naming the first file that is not a bounded regular file inside
    the header's folder. An unparseable header still yields its own file (and the ones beside
    it): the worker then reports the parse error.
    """
    folder = header.parent
    files = [contained_file(folder, header.name, max_bytes=MAX_HEADER_BYTES)]
    try:
        named = set(read_header(header).file_names)
    except RecordError:
        named = set()
    named |= {header.stem + suffix for suffix in (".mat", ".dat") if os.path.lexists(folder / (header.stem + suffix))}
    return files + [contained_file(folder, name, max_bytes=MAX_SIGNAL_BYTES) for name in sorted(named)]


def content_hash(files: Sequence[Path]) -> str:
    """BLAKE2b of the files' bytes, each prefixed by its name relative to the first (the header)."""
    digest = hashlib.blake2b(digest_size=16)
    for i, path in enumerate(files):
        label = "header" if i == 0 else path.name
        digest.update(label.encode() + b"\0")
        # O_NONBLOCK and the fstat check: a file swapped for a FIFO since it was checked must not hang us
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(descriptor, "rb") as handle:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise RecordError(path, "not a regular file")
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def stat_signature(files: Sequence[Path]) -> list[list]:
    """Per file: path, size, mtime, ctime, inode, device (the last three no copy tool can restore)."""
    out: list[list] = []
    for path in files:
        info = os.stat(path)
        out.append([str(path), info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev])
    return out


def _remembered(memo: dict, header: Path) -> str | None:
    """The memo's hash of ``header`` when no file's signature changed, else None."""
    known = memo.get(str(header))
    if not isinstance(known, dict) or not isinstance(known.get("files"), list):
        return None
    try:
        paths = [Path(entry[0]) for entry in known["files"]]
        if stat_signature(paths) == known["files"]:
            return str(known["hash"])
    except (OSError, TypeError, IndexError, KeyError):
        pass
    return None


def hash_one(header: Path, memo: dict) -> tuple[str, dict | None]:
    """Content hash of one record and its new memo entry (None: reused, or too fresh to remember)."""
    remembered = _remembered(memo, header)
    if remembered is not None:
        return remembered, None
    started = time.time_ns()
    files = record_files(header)
    try:
        signature = stat_signature(files)
        digest = content_hash(files)
        after = stat_signature(files)
    except OSError as error:
        raise RecordError(header, f"cannot read record files ({error})") from None
    fresh = max(entry[3] for entry in signature) >= started - int(RACY_SECONDS * 1e9)
    if fresh or after != signature:
        return digest, None
    return digest, {"files": signature, "hash": digest}


def hash_records(
    headers: Sequence[Path], memo: dict, progress: bool
) -> tuple[list[str | None], dict[int, str], dict[str, dict]]:
    """Content hashes of all records (threads: reading and hashing release the GIL).

    Returns the hashes (None where the record failed), the failures' messages by position, and
    the memo entries to add to ``hashes.json``.
    """
    hashes: list[str | None] = [None] * len(headers)
    errors: dict[int, str] = {}
    learned: dict[str, dict] = {}

    def work(i: int) -> tuple[int, str | None, dict | None, str | None]:
        try:
            digest, entry = hash_one(headers[i], memo)
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
                continue
            hashes[i] = digest
            if entry is not None:
                learned[str(headers[i])] = entry
    return hashes, errors, learned


__all__ = [
    "FORMAT_VERSION",
    "KEYED_MODULES",
    "cache_key",
    "code_version",
    "content_hash",
    "hash_records",
    "record_files",
    "stat_signature",
]
