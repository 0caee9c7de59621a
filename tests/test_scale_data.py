"""ecgdata.scale_data (benchmarks/make_scale_data.py): Challenge-like sources, rates and lengths; distinct records; labels kept."""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pytest

from ecgdata import scale_data as scale
from ecgdata.index import build_index
from ecgio import read_record


def test_plan_reproduces_the_challenge_source_counts():
    counts = Counter(source.name for source in scale.plan(88253, seed=0))
    assert counts == {s.name: int(s.share) for s in scale.SOURCES}
    assert scale.plan(500, 1) == scale.plan(500, 1) and scale.plan(500, 1) != scale.plan(500, 2)


@pytest.mark.parametrize("source", scale.SOURCES, ids=lambda s: s.name)
def test_each_source_gets_its_rate_and_length(source):
    base = scale.Base(np.random.default_rng(0).normal(size=(12, 5000)).astype(np.float32), 500.0, 50.0, "Male", ())
    signal = scale.synthesize(base, source, np.random.default_rng(1))
    seconds = signal.shape[1] / source.fs
    assert signal.shape[0] == 12 and signal.dtype == np.float32
    assert source.seconds[0] - 1 / source.fs <= seconds <= source.seconds[1] + 1 / source.fs


def test_written_records_are_distinct_labelled_and_named_by_source(tmp_path, cinc_dir, ptbxl_dir):
    scale.make_scale_data(tmp_path, 40, seed=3, jobs=1, per_folder=25)
    headers = sorted(tmp_path.glob("g*/*.hea"))
    assert len(headers) == 40 and {h.parent.name for h in headers} == {"g1", "g2"}
    digests = {hashlib.sha256(h.with_suffix(".mat").read_bytes()).hexdigest() for h in headers}
    assert len(digests) == 40
    index = build_index(tmp_path, progress=False)
    assert len(index) == 40 and "unknown" not in set(index.sources)
    assert index.targets.any(axis=1).mean() > 0.8  # the real records' labels came along
    record = read_record(headers[0])
    assert record.signal.shape[0] == 12 and np.isfinite(record.signal).all()


def _row(**changes) -> dict:
    """One bench_scale row: 100 12-lead records, 10 records/s per worker, 100 KB each, one network's rates."""
    row = {
        "records": 100,
        "leads": 12,
        "prepare_rate_per_worker": 10.0,
        "cache_bytes_per_record": 1e5,
        "train_records_per_s": 100.0,
        "val_records_per_s": 200.0,
    }
    return {**row, **changes}


def test_projection_counts_fold_networks_epochs_and_preparation():
    from ecgtrain.projection import CHALLENGE_RECORDS, projection

    row = _row()
    one = projection([row], jobs=2, epochs=10, folds=1)
    expected = 5 * (CHALLENGE_RECORDS / 20 + 10 * (0.8 * CHALLENGE_RECORDS / 100 + 0.2 * CHALLENGE_RECORDS / 200))
    assert abs(one["hours"] - expected / 3600) < 1e-9
    three = projection([row], jobs=2, epochs=10, folds=3)
    per_epoch = 2 / 3 * CHALLENGE_RECORDS / 100 + 1 / 3 * CHALLENGE_RECORDS / 200
    assert abs(three["hours"] - 5 * (CHALLENGE_RECORDS / 20 + 30 * per_epoch) / 3600) < 1e-9
    assert abs(three["cache_gb"] - 1e5 * (12 + 6 + 4 + 3 + 2) / 12 * CHALLENGE_RECORDS / 1e9) < 1e-9


def test_projection_sums_the_networks_of_each_fold():
    """The stacked default trains two networks per fold: the projection pays for both, at their own rates."""
    from ecgtrain.projection import CHALLENGE_RECORDS, default_networks, projection

    networks = [
        {"branches": ["raw", "fiducial", "tabular"], "train_records_per_s": 100.0, "val_records_per_s": 200.0},
        {"branches": ["fiducial", "tabular"], "train_records_per_s": 400.0, "val_records_per_s": 800.0},
    ]
    row = _row(networks=networks)
    got = projection([row], jobs=2, epochs=10, folds=1)
    per_epoch = sum(0.8 * CHALLENGE_RECORDS / n["train_records_per_s"] for n in networks)
    per_epoch += sum(0.2 * CHALLENGE_RECORDS / n["val_records_per_s"] for n in networks)
    assert abs(got["hours"] - 5 * (CHALLENGE_RECORDS / 20 + 10 * per_epoch) / 3600) < 1e-9
    assert [list(group) for group in default_networks()] == [["raw", "fiducial", "tabular"], ["fiducial", "tabular"]]
