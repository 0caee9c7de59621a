"""prepare_folder: cache hits and misses, invalidation, bad records, memory maps, parallel = serial."""

from __future__ import annotations

import gc
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import FEW_RECORDS

import ecgcache.build as build
from ecgcache import PreparedStore, prepare_folder, select_leads
from ecgio import read_record
from ecgio.leads import TWELVE_LEADS
from ecgsignal.config import SignalConfig
from ecgsignal.pipeline import prepare

CONFIG = SignalConfig()
NUM = FEW_RECORDS


def _run(headers, cache, config=CONFIG, leads=TWELVE_LEADS, **kwargs) -> PreparedStore:
    kwargs.setdefault("n_jobs", 1)
    return prepare_folder(headers, leads, config, cache, progress=False, **kwargs)


def _same(a: PreparedStore, b: PreparedStore) -> None:
    assert a.names == b.names
    assert np.array_equal(a.window_offsets, b.window_offsets)
    np.testing.assert_array_equal(a.features, b.features)
    for i in range(len(a)):
        for key, value in a.record_arrays(i).items():
            np.testing.assert_array_equal(np.asarray(value), np.asarray(b.record_arrays(i)[key]), err_msg=key)


def test_miss_then_hit_and_values_match_prepare(records: list[Path], tmp_path: Path) -> None:
    first = _run(records, tmp_path / "cache", dtype="float32")
    assert first.stats["computed"] == NUM and first.stats["hits"] == 0
    second = _run(records, tmp_path / "cache", dtype="float32")
    assert second.stats["computed"] == 0 and second.stats["hits"] == NUM
    _same(first, second)
    record = read_record(records[1])
    direct = prepare(select_leads(record.signal, record.leads, TWELVE_LEADS), record.fs, TWELVE_LEADS, CONFIG)
    stored = second.record(1)
    np.testing.assert_array_equal(stored.windows, direct.windows)
    np.testing.assert_array_equal(stored.fiducials, direct.fiducials)
    np.testing.assert_array_equal(stored.features, direct.features)  # NaN where absent, in both
    np.testing.assert_array_equal(stored.feature_present, direct.feature_present)
    np.testing.assert_array_equal(stored.quality, direct.quality)


def test_float16_storage_is_close(records: list[Path], tmp_path: Path) -> None:
    store = _run(records[:1], tmp_path / "cache")
    direct = prepare(read_record(records[0]).signal, 500.0, TWELVE_LEADS, CONFIG)
    assert store.record_arrays(0)["windows"].dtype == np.float16
    stored = store.record(0)
    assert stored.windows.dtype == np.float32
    np.testing.assert_allclose(stored.windows, direct.windows, atol=2e-2, rtol=1e-3)


def test_changed_config_or_leads_recomputes(records: list[Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _run(records[:2], cache)
    other = _run(records[:2], cache, config=SignalConfig(lowpass_hz=40.0))
    assert other.stats["computed"] == 2
    two = _run(records[:2], cache, leads=("I", "II"))
    assert two.stats["computed"] == 2 and two.record(0).windows.shape[1] == 2
    again = _run(records[:2], cache)
    assert again.stats["hits"] == 2  # the first key is still there
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 3


def test_changed_record_recomputes_only_that_record(records: list[Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    before = _run(records, cache)
    mat = records[2].with_suffix(".mat")
    data = bytearray(mat.read_bytes())
    data[-2:] = bytes([data[-2] ^ 0x7F, data[-1]])  # one sample of the last lead changes
    mat.write_bytes(bytes(data))
    header = records[0]
    header.write_text(header.read_text() + "#Note: edited\n")
    after = _run(records, cache)
    assert after.stats["computed"] == 2 and after.stats["hits"] == NUM - 2
    for i in (1, 3):  # untouched records: served from the cache, unchanged
        np.testing.assert_array_equal(before.record(i).windows, after.record(i).windows)
    records[1].with_suffix(".mat").touch()  # new mtime, same bytes: rehashed, still a hit
    moved = tmp_path / "moved"
    shutil.copytree(records[0].parent, moved)  # same bytes elsewhere: a hit
    again = _run(records + [moved / records[3].name], cache)
    assert again.stats["computed"] == 0 and len(again) == NUM + 1


def test_bad_records_are_reported_and_skipped(records: list[Path], tmp_path: Path) -> None:
    folder = records[0].parent
    (folder / "broken.hea").write_text("broken 12 five-hundred 5000\n")
    (folder / "broken.mat").write_bytes(b"junk")
    (folder / "short.hea").write_text(records[0].read_text().replace(" 5000", " 5001", 1))
    shutil.copy2(records[0].with_suffix(".mat"), folder / "short.mat")
    headers = [folder / "broken.hea", records[0], folder / "missing.hea", folder / "short.hea", records[1]]
    store = _run(headers, tmp_path / "cache", n_jobs=2)
    assert store.names == [records[0].stem, records[1].stem]
    assert set(store.failed) == {"broken", "missing", "short"}
    for name, message in store.failed.items():
        assert f"{name}.hea" in message or f"{name}.mat" in message, message
    assert "5001" in store.failed["short"]


def test_arrays_are_memory_mapped_and_flat_indexing(records: list[Path], tmp_path: Path) -> None:
    store = _run(records, tmp_path / "cache")
    views = store.record_arrays(0)
    assert isinstance(views["windows"], np.memmap) and not views["windows"].flags.writeable
    segment = store.root / store._segment_of[0]
    assert np.load(segment / "windows.npy", mmap_mode="r").shape[0] == store.total_windows
    assert store.features.shape[0] == len(store) == store.quality.shape[0]
    k = np.arange(store.total_windows)
    rec, within = store.locate(k)
    x, fid = store.windows_at(k)
    for n, (i, j) in enumerate(zip(rec, within)):
        w, f = store.window(int(i), int(j))
        np.testing.assert_array_equal(x[n], w)
        np.testing.assert_array_equal(fid[n], f)
        np.testing.assert_array_equal(store.record(int(i)).windows[j], w)
    with pytest.raises(IndexError):
        store.window(0, store.num_windows(0))
    with pytest.raises(IndexError):
        store.locate(store.total_windows)


def test_parallel_equals_serial_across_segments(
    records: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serial = _run(records, tmp_path / "serial", n_jobs=1)
    monkeypatch.setattr(build, "SEGMENT_RECORDS", 1)  # every record its own segment
    parallel = _run(records, tmp_path / "parallel", n_jobs=2)
    assert len({parallel._segment_of[i] for i in range(len(parallel))}) == NUM
    _same(serial, parallel)


def test_without_cache_dir_uses_a_temporary_folder(records: list[Path]) -> None:
    store = _run(records[:1], None)
    base = store.root.parent
    assert base.exists() and len(store) == 1 and store.num_windows(0) >= 1
    del store
    gc.collect()
    assert not base.exists()


def test_select_leads_fills_absent_leads_with_zeros() -> None:
    signal = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = select_leads(signal, ("I", "II"), ("II", "V1", "I"))
    assert out.tolist() == [[3, 4, 5], [0, 0, 0], [0, 1, 2]]


def test_keyed_modules_exist_and_cover_the_signal_code() -> None:
    """A moved module must not silently drop out of the code version (it hashes as absent)."""
    from ecgcache import keys

    root = Path(keys.__file__).resolve().parents[1]
    assert all((root / module).is_file() for module in keys.KEYED_MODULES), keys.KEYED_MODULES
    signal_modules = {f"ecgsignal/{name}.py" for name in ("config", "preprocess", "wavelet", "delineate", "features")}
    assert signal_modules | {"ecgsignal/pipeline.py", "ecgcache/worker.py"} <= set(keys.KEYED_MODULES)


def test_segment_description_matches_its_files(records: list[Path], tmp_path: Path) -> None:
    import hashlib
    import json

    store = _run(records[:2], tmp_path / "cache")
    segment = store.root / store._segment_of[0]
    description = json.loads((segment / "segment.json").read_text())
    assert [row[1] for row in description["rows"]] == store.names
    assert description["offsets"] == store.window_offsets.tolist()
    for name, expected in description["arrays"].items():
        data = (segment / f"{name}.npy").read_bytes()
        array = np.load(segment / f"{name}.npy", mmap_mode="r")
        assert len(data) == expected["bytes"] and list(array.shape) == expected["shape"]
        assert hashlib.sha256(data[len(data) - array.nbytes :]).hexdigest() == expected["sha256"]


def _square(x: int) -> int:
    return x * x


def test_joblib_parallel_still_works_after_a_parallel_preparation(records: list[Path], tmp_path: Path) -> None:
    """The cache's worker pool is its own: joblib's process-wide executor (and its extra state) is left alone."""
    from joblib import Parallel, delayed

    Parallel(n_jobs=2)(delayed(_square)(i) for i in range(4))  # joblib's executor exists before
    store = _run(records[:3], tmp_path / "cache", n_jobs=2)
    assert len(store) == 3
    assert Parallel(n_jobs=2)(delayed(_square)(i) for i in range(4)) == [0, 1, 4, 9]
