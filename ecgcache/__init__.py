"""The feature cache: prepared records computed once, in parallel, kept on disk, memory-mapped, verified.

Training reads tens of thousands of records many times; preprocessing and delineating them
again every epoch (or every run) would cost hours, and holding 88,000 prepared records in RAM
would not fit. :func:`prepare_folder` therefore runs :func:`ecgsignal.pipeline.prepare` once per
record in worker processes (:mod:`ecgcache.pool`), streams the results into flat ``.npy`` files
on disk, and hands back a :class:`PreparedStore` that maps them with ``mmap_mode='r'``: the
operating system pages in only the windows the trainer touches.

Modules: :mod:`~ecgcache.keys` (content hashes and cache keys), :mod:`~ecgcache.arrays` (the
growing ``.npy`` file and its checksum), :mod:`~ecgcache.segments` (writing, publishing,
verifying and dropping segments), :mod:`~ecgcache.store` (the memory-mapped store),
:mod:`~ecgcache.pool` and :mod:`~ecgcache.worker` (the worker processes),
:mod:`~ecgcache.shared` (lock, shared JSON files, write probe), :mod:`~ecgcache.build`
(:func:`prepare_folder`).

Cache key
---------
A cached result is reused only when all of these are unchanged (:mod:`ecgcache.keys`):
the record's content (a BLAKE2b hash of the bytes of the header and of the signal files it
names, each checked with :func:`ecgio.files.contained_file` before it is opened); the
parameters (``config.to_dict()``, ``leads``, the storage dtype); the code (a hash of the source
of the signal-processing modules, the record reader and :mod:`ecgcache.worker`); and
:data:`~ecgcache.keys.FORMAT_VERSION`. ``hashes.json`` remembers each record's files by
(size, mtime, ctime, inode, device), so a later run only ``stat``\\ s them; ctime and inode
cannot be restored by ``rsync -t``, ``cp -p`` or ``tar``, so a rewritten file is always hashed again.

On-disk layout
--------------
::

    cache_dir/
      hashes.json               header path -> {"files": [[path, size, mtime, ctime, inode, device], ...], "hash": h}
      .hashes.lock              flock'ed while hashes.json is merged
      <key>/                    one folder per (format, config, leads, dtype, code version); key = 16 hex
        meta.json               the config dict, leads, dtype, code version behind the key
        index.json              {"format": 2, "records": {content hash: [name, segment, row]}}
        .lock                   flock'ed while index.json is read, changed and replaced
        .tmp-seg-<random>/      a segment being written (hidden from readers; its writer flocks .writing)
        seg-<time>-<id>/        one complete segment per <= SEGMENT_RECORDS computed records
          windows.npy           (W_seg, L, T)  float16 (default) or float32
          fiducials.npy         (W_seg, C, T)  same dtype
          features.npy          (n_seg, F)     float32, NaN where absent
          feature_present.npy   (n_seg, F)     bool
          quality.npy           (n_seg, L)     bool
          segment.json          rows [[content hash, name], ...], window offsets (n_seg + 1; windows of
                                row r are offsets[r]:offsets[r+1]), and per array file its shape, dtype,
                                size and SHA-256 checksum; plus a checksum of this description

Writing and sharing
-------------------
Workers return each record's arrays to the parent, which appends them to the open segment's
files in a hidden ``.tmp-seg-*`` folder; every ``SEGMENT_RECORDS`` records (and at the end, or
when the run is interrupted) the segment is finished, renamed to ``seg-*`` and entered into
``index.json`` under ``.lock``. A reader therefore never sees half a segment, and several
processes can prepare into one cache at once: when two prepared the same record, the first
published copy is kept (a segment none of whose rows was kept is deleted at once). A segment is
never rewritten; later runs add segments for their misses. Every small file is replaced whole
through :func:`ecgio.files.atomic_write`.

Verification and its cost
-------------------------
Each segment a call needs is verified the first time this process opens it: its description's
checksum, offsets consistent with the array shapes, and every array file's size, header and
SHA-256 checksum. That reads every byte of the segments used, once per process: nothing else
of the arrays is read at open beyond the small per-record arrays (N x F). On our shared 2-core
development machine SHA-256 over a file in the page cache ran at 380-750 MB/s per thread (up
to 4 segments are checked in parallel threads); a 12-lead float16 cache of the 88,000
Challenge records holds about 9 GB (80 kB per 10-s window), so verifying it costs roughly
10-25 s of one core when it is in the page cache, and the disk's read time when it is not.
Without the array bytes, opening 88,000 records in 43 segments (index, descriptions, offsets,
store) took 1.4 s there. A segment still mapped by a store of this process is not verified
again. A missing or damaged segment is dropped from the index with a warning naming it and
its records are prepared again in the same call; damaged small files (``index.json``,
``hashes.json``) are ignored with a warning and rebuilt.

Failures
--------
A record that fails (unreadable or unsafe file, bad header, pipeline error, a worker that died
twice while preparing it) is logged, listed in :attr:`PreparedStore.failed` with its error
message, and skipped; failures are not cached, so a transient failure is retried next run.
With ``cache_dir=None`` the same layout is built in a temporary folder that is deleted when
the store is garbage collected.
"""

from ecgcache.build import SEGMENT_RECORDS, prepare_folder
from ecgcache.keys import FORMAT_VERSION, cache_key, content_hash
from ecgcache.shared import usable_cache_dir
from ecgcache.store import PreparedStore
from ecgcache.worker import select_leads

__all__ = [
    "FORMAT_VERSION",
    "SEGMENT_RECORDS",
    "PreparedStore",
    "cache_key",
    "content_hash",
    "prepare_folder",
    "select_leads",
    "usable_cache_dir",
]
