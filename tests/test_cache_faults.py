"""The feature cache under faults: damaged segments, copied-over records, hostile headers, sharing, dead workers."""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import multiprocessing
import os
import shutil
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import FEW_RECORDS

import ecgcache.build as build
import ecgcache.keys as keys
import ecgcache.segments as segments
import ecgcache.worker as worker
from ecgcache import PreparedStore, prepare_folder, usable_cache_dir
from ecgio import read_record
from ecgio.leads import TWELVE_LEADS
from ecgsignal.config import SignalConfig
from ecgsignal.pipeline import prepare

CONFIG = SignalConfig()
NUM = FEW_RECORDS


def _run(headers, cache, **kwargs) -> PreparedStore:
    kwargs.setdefault("n_jobs", 1)
    return prepare_folder(headers, TWELVE_LEADS, CONFIG, cache, progress=False, **kwargs)


def _same(a: PreparedStore, b: PreparedStore) -> None:
    assert a.names == b.names
    assert np.array_equal(a.window_offsets, b.window_offsets)
    for i in range(len(a)):
        for key, value in a.record_arrays(i).items():
            np.testing.assert_array_equal(np.asarray(value), np.asarray(b.record_arrays(i)[key]), err_msg=key)


def _segment_of(store: PreparedStore, i: int) -> Path:
    return store.root / store._segment_of[i]


# --------------------------------------------------------------------------- 1. damaged segments
def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _garbage(path: Path) -> None:
    path.write_bytes(b"not an array " * 40)


def _flip_last_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("file", "damage"),
    [
        ("windows.npy", _truncate),
        ("features.npy", _garbage),
        ("windows.npy", _flip_last_bit),
        ("quality.npy", _flip_last_bit),
    ],
)
def test_damaged_segment_is_dropped_named_and_recomputed(
    records: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, file, damage
) -> None:
    monkeypatch.setattr(build, "SEGMENT_RECORDS", 2)  # two segments of two records
    reference = _run(records, tmp_path / "reference")
    first = _run(records, tmp_path / "cache")
    damaged = _segment_of(first, 3)
    assert damaged != _segment_of(first, 0)
    damage(damaged / file)
    del first
    with caplog.at_level(logging.WARNING):
        repaired = _run(records, tmp_path / "cache")
    assert repaired.stats["computed"] == 2 and repaired.stats["hits"] == 2
    assert any(damaged.name in message for message in caplog.messages), caplog.messages
    _same(repaired, reference)
    again = _run(records, tmp_path / "cache")
    assert again.stats["computed"] == 0 and again.stats["hits"] == NUM  # repaired for good
    _same(again, reference)


def test_missing_segment_is_named_and_recomputed(
    records: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(build, "SEGMENT_RECORDS", 2)
    first = _run(records, tmp_path / "cache")
    gone = _segment_of(first, 0)
    del first
    shutil.rmtree(gone)
    with caplog.at_level(logging.WARNING):
        store = _run(records, tmp_path / "cache")
    assert store.stats["computed"] == 2 and len(store) == NUM
    assert any(gone.name in message for message in caplog.messages), caplog.messages


def _rewrite_description(folder: Path, change) -> None:
    """Edit segment.json and give it a valid checksum again (so only the consistency checks can catch it)."""
    path = folder / "segment.json"
    content = json.loads(path.read_text())
    content.pop("checksum")
    change(content)
    path.write_text(json.dumps({**content, "checksum": segments._checksum(content)}))


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c["offsets"].reverse(),  # decreasing offsets
        lambda c: c["offsets"].append(c["offsets"][-1] + 1),  # one offset too many
        lambda c: c["offsets"].__setitem__(-1, c["offsets"][-1] + 5),  # more windows than windows.npy holds
        lambda c: c["rows"].pop(),  # fewer rows than the arrays
    ],
)
def test_inconsistent_offsets_are_caught(
    records: list[Path], tmp_path: Path, caplog: pytest.LogCaptureFixture, change
) -> None:
    first = _run(records[:2], tmp_path / "cache")
    segment = _segment_of(first, 0)
    del first
    _rewrite_description(segment, change)
    with caplog.at_level(logging.WARNING):
        store = _run(records[:2], tmp_path / "cache")
    assert store.stats["computed"] == 2 and len(store) == 2
    assert any(segment.name in message for message in caplog.messages), caplog.messages


def test_tampered_description_and_hostile_index_entries(records: list[Path], tmp_path: Path) -> None:
    first = _run(records[:2], tmp_path / "cache")
    root, segment = first.root, _segment_of(first, 0)
    del first
    text = (segment / "segment.json").read_text()
    (segment / "segment.json").write_text(text.replace('"offsets":[0,', '"offsets":[1,'))  # checksum now wrong
    index = json.loads((root / "index.json").read_text())
    digest = next(iter(index["records"]))
    index["records"][digest][1] = "../../outside"  # a path, not a segment name
    index["records"]["f" * 32] = "junk"
    (root / "index.json").write_text(json.dumps(index))
    store = _run(records[:2], tmp_path / "cache")
    assert store.stats["computed"] == 2 and store.names == [r.stem for r in records[:2]]
    (root / "index.json").write_text("{garbage")
    store = _run(records[:2], tmp_path / "cache")
    assert store.stats["computed"] == 2 and len(store) == 2


# --------------------------------------------------------------------------- 2. rewritten with the same size and mtime
def _rewrite_keeping_stat(path: Path, in_place: bool) -> None:
    """Change one sample, keep size and mtime (what rsync -t, cp -p or tar leave behind)."""
    info = path.stat()
    data = bytearray(path.read_bytes())
    data[-2] ^= 0x7F
    if in_place:
        with open(path, "r+b") as handle:
            handle.write(bytes(data))
        target = path
    else:  # rsync: a new file renamed over the old one
        target = path.with_name(".incoming")
        target.write_bytes(bytes(data))
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
    if not in_place:
        os.replace(target, path)
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (info.st_size, info.st_mtime_ns)


@pytest.mark.parametrize("in_place", [True, False])
def test_rewrite_with_same_size_and_mtime_is_recomputed(
    records: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_place: bool
) -> None:
    monkeypatch.setattr(keys, "RACY_SECONDS", 0.0, raising=False)  # remember the just-copied files at once
    cache = tmp_path / "cache"
    _run(records, cache, dtype="float32")
    memo = json.loads((cache / "hashes.json").read_text())
    assert str(records[2]) in memo  # the stat memo is in use
    mat = records[2].with_suffix(".mat")
    _rewrite_keeping_stat(mat, in_place)
    after = _run(records, cache, dtype="float32")
    assert after.stats["computed"] == 1 and after.stats["hits"] == NUM - 1
    record = read_record(records[2])
    direct = prepare(record.signal, record.fs, TWELVE_LEADS, CONFIG)
    np.testing.assert_array_equal(after.record(2).windows, direct.windows)


def test_memo_skips_unchanged_files_but_not_fresh_ones(
    records: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[str] = []
    original = keys.content_hash
    monkeypatch.setattr(keys, "content_hash", lambda files: hashed.append(files[0].name) or original(files))
    _run(records, tmp_path / "cache")
    _run(records, tmp_path / "cache")
    assert len(hashed) == 2 * NUM  # copied just now: too fresh to trust their stat, hashed again
    monkeypatch.setattr(keys, "RACY_SECONDS", 0.0)
    _run(records, tmp_path / "cache")
    hashed.clear()
    _run(records, tmp_path / "cache")
    assert hashed == []  # remembered: only stat'ed
    records[1].with_suffix(".mat").touch()
    _run(records, tmp_path / "cache")
    assert hashed == [records[1].name]


# --------------------------------------------------------------------------- 3. hostile file names in headers
def test_header_file_names_outside_the_folder_are_never_opened(records: list[Path], tmp_path: Path) -> None:
    folder = records[0].parent
    good = records[0]
    outside = tmp_path / "outside.mat"
    shutil.copy2(good.with_suffix(".mat"), outside)
    os.symlink(outside, folder / "link.mat")
    os.symlink("/dev/zero", folder / "zero.mat")
    os.mkfifo(folder / "fifo.mat")
    names = {
        "absolute": "/etc/passwd",
        "parent": "../outside.mat",
        "link": "link.mat",
        "device": "zero.mat",
        "pipe": "fifo.mat",
    }
    text = good.read_text()
    for stem, name in names.items():
        (folder / f"{stem}.hea").write_text(text.replace(f"{good.stem}.mat", name).replace(good.stem, stem, 1))
    headers = [good] + [folder / f"{stem}.hea" for stem in names]
    result: dict[str, PreparedStore] = {}
    thread = threading.Thread(target=lambda: result.update(store=_run(headers, tmp_path / "cache")), daemon=True)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "prepare_folder hung on a device or FIFO named by a header"
    store = result["store"]
    assert store.names == [good.stem]
    assert set(store.failed) == set(names)
    for stem, name in names.items():
        assert Path(name).name in store.failed[stem], store.failed[stem]
    memo = (tmp_path / "cache" / "hashes.json").read_text() if (tmp_path / "cache" / "hashes.json").exists() else ""
    for forbidden in ("passwd", "outside", "zero", "fifo", "link"):
        assert forbidden not in memo


def test_a_signal_file_over_the_size_bound_is_an_error(
    records: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys, "MAX_SIGNAL_BYTES", 1000)
    store = _run(records[:1], tmp_path / "cache")
    assert len(store) == 0 and "more than the 1000 allowed" in store.failed[records[0].stem]


# --------------------------------------------------------------------------- 4. sharing one cache
def test_write_probe_is_unique(tmp_path: Path) -> None:
    (tmp_path / ".write-test").mkdir()  # a fixed probe name left behind (or in use) by someone else
    assert usable_cache_dir(str(tmp_path)) == str(tmp_path)
    outcomes: list[str | None] = []

    def probe() -> None:
        for _ in range(200):
            outcomes.append(usable_cache_dir(str(tmp_path)))

    threads = [threading.Thread(target=probe) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == [str(tmp_path)] * 1600
    assert [p.name for p in tmp_path.iterdir()] == [".write-test"]  # no probe left behind


def _prepare_in_process(headers: list[str], cache: str, barrier, results) -> None:
    """Run in a separate process: prepare into the shared cache, report a fingerprint of what the store holds."""
    build.SEGMENT_RECORDS = 2
    barrier.wait()
    store = prepare_folder([Path(h) for h in headers], TWELVE_LEADS, CONFIG, Path(cache), n_jobs=1, progress=False)
    windows = [np.asarray(store.record_arrays(i)["windows"]).tobytes() for i in range(len(store))]
    results.put((store.names, store.features.tobytes(), windows, store.stats["computed"]))


def test_two_processes_preparing_the_same_records_at_once(records: list[Path], tmp_path: Path) -> None:
    reference = _run(records, tmp_path / "reference")
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    cache = tmp_path / "shared"
    processes = [
        context.Process(target=_prepare_in_process, args=([str(r) for r in records], str(cache), barrier, results))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    expected_windows = [np.asarray(reference.record_arrays(i)["windows"]).tobytes() for i in range(NUM)]
    for names, features, windows, _ in outcomes:
        assert names == reference.names
        assert features == reference.features.tobytes() and windows == expected_windows
    after = _run(records, cache)
    assert after.stats["hits"] == NUM and after.stats["computed"] == 0
    _same(after, reference)
    root = after.root
    referenced = {entry[1] for entry in json.loads((root / "index.json").read_text())["records"].values()}
    assert {p.name for p in root.glob("seg-*")} == referenced  # duplicates were not left behind
    assert not list(root.glob(".tmp-seg-*"))


def test_segments_become_visible_only_when_complete(
    records: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    checks: list[bool] = []

    def look(header: Path) -> None:  # runs between records (n_jobs=1: in this process)
        for root in (p for p in cache.iterdir() if p.is_dir()):
            index = json.loads((root / "index.json").read_text())["records"] if (root / "index.json").exists() else {}
            checks.append({p.name for p in root.glob("seg-*")} <= {entry[1] for entry in index.values()})

    monkeypatch.setattr(build, "SEGMENT_RECORDS", 2)
    monkeypatch.setattr(worker, "record_hook", look, raising=False)
    store = _run(records, cache)
    assert len(store) == NUM and len(checks) == NUM and all(checks)
    assert not list(store.root.glob(".tmp-seg-*"))


def test_an_interrupted_run_keeps_what_it_finished(
    records: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt_on_third(header: Path) -> None:
        if header == records[2]:
            raise KeyboardInterrupt

    monkeypatch.setattr(worker, "record_hook", interrupt_on_third, raising=False)
    with pytest.raises(KeyboardInterrupt):
        _run(records, tmp_path / "cache")
    monkeypatch.setattr(worker, "record_hook", None, raising=False)
    store = _run(records, tmp_path / "cache")
    assert store.stats["hits"] == 2 and store.stats["computed"] == 2 and len(store) == NUM


def test_abandoned_temporary_segments_are_removed(records: list[Path], tmp_path: Path) -> None:
    first = _run(records[:1], tmp_path / "cache")
    root = first.root
    dead, alive = root / ".tmp-seg-dead", root / ".tmp-seg-alive"
    for folder in (dead, alive):
        folder.mkdir()
        (folder / "windows.npy").write_bytes(b"partial")
        (folder / ".writing").touch()
    unpublished, fresh = root / "seg-20000101000000-0123456789ab", root / "seg-20000101000000-ba9876543210"
    shutil.copytree(_segment_of(first, 0), unpublished)  # renamed, then its writer died before publishing
    shutil.copytree(_segment_of(first, 0), fresh)  # renamed a moment ago: its writer may be publishing it now
    os.utime(unpublished, (0, 0))
    with open(alive / ".writing") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a live writer
        store = _run(records[:1], tmp_path / "cache")
        assert not dead.exists() and alive.exists()
        assert not unpublished.exists() and fresh.exists()
        assert store.stats["hits"] == 1 and _segment_of(store, 0).exists()


# --------------------------------------------------------------------------- 5. dead workers
def _kill_worker(stem: str, marker: str | None, header: Path) -> None:
    """Record hook: SIGKILL the worker (as the OOM killer does) on record ``stem`` (only once when ``marker`` is given)."""
    if header.stem != stem:
        return
    if marker is not None:
        if os.path.exists(marker):
            return
        Path(marker).touch()
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_record_that_kills_its_worker_costs_only_itself(
    records: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    killer = records[1].stem
    monkeypatch.setattr(worker, "record_hook", functools.partial(_kill_worker, killer, None), raising=False)
    with caplog.at_level(logging.WARNING):
        store = _run(records, tmp_path / "cache", n_jobs=2)
    assert store.names == [r.stem for r in records if r.stem != killer]
    assert set(store.failed) == {killer}
    assert "worker" in store.failed[killer] and "died" in store.failed[killer], store.failed[killer]
    monkeypatch.setattr(worker, "record_hook", None, raising=False)
    again = _run(records, tmp_path / "cache", n_jobs=2)  # not cached as failed: retried next run
    assert len(again) == NUM and again.stats["computed"] == 1


def test_a_worker_killed_once_is_retried(records: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = functools.partial(_kill_worker, records[2].stem, str(tmp_path / "killed-once"))
    monkeypatch.setattr(worker, "record_hook", hook, raising=False)
    store = _run(records, tmp_path / "cache", n_jobs=2)
    assert (tmp_path / "killed-once").exists()  # the worker did die
    assert len(store) == NUM and not store.failed
    _same(store, _run(records, tmp_path / "reference"))


def test_a_dead_worker_does_not_stop_the_records_queued_behind_it(
    cinc_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = sorted(cinc_dir.glob("*.hea"))[:10]  # more than the 2 x 2 records kept in flight
    killer = headers[0].stem
    monkeypatch.setattr(worker, "record_hook", functools.partial(_kill_worker, killer, None), raising=False)
    store = _run(headers, tmp_path / "cache", n_jobs=2)
    assert set(store.failed) == {killer} and "died 2 times" in store.failed[killer]
    assert store.names == [h.stem for h in headers[1:]]


FULL_CACHE_RUN = """
import resource, signal, sys
from pathlib import Path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
from ecgcache import prepare_folder
from ecgsignal.config import SignalConfig
headers = [Path(p) for p in sys.argv[2:]]
resource.setrlimit(resource.RLIMIT_FSIZE, (30000, 30000))  # no file over 30 kB: a cache disk that fills up
try:
    prepare_folder(headers, ("I", "II"), SignalConfig(), Path(sys.argv[1]), n_jobs=1, progress=False)
except OSError as error:
    print(error)
"""


def test_full_cache_disk_names_the_cache_and_leaves_no_hidden_segment(records: list[Path], tmp_path: Path) -> None:
    import subprocess
    import sys

    cache = tmp_path / "cache"
    result = subprocess.run(
        [sys.executable, "-c", FULL_CACHE_RUN, str(cache), *map(str, records)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    (root,) = [p for p in cache.iterdir() if p.is_dir()]
    assert result.stdout.strip() == (
        f"{root}: cannot write the feature cache (File too large); free space there, or set ECG_CACHE_DIR"
        " (training: the cache_dir setting) to a folder on another disk"
    )
    assert not list(root.glob(".tmp-seg-*"))


def test_a_segment_writer_that_cannot_start_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(segments, "open", no_space, raising=False)
    with pytest.raises(OSError, match="No space left"):
        segments.SegmentWriter(tmp_path, "float16")
    assert list(tmp_path.iterdir()) == []
