"""prepare(): the classifier's one call per record, on real records and on awkward inputs."""

from __future__ import annotations

import numpy as np
import pytest
from test_delineate import gaussian_ecg

from ecgio import find_records, read_record
from ecgio.leads import TWELVE_LEADS, TWO_LEADS, lead_indices
from ecgsignal import FEATURE_NAMES, FIDUCIAL_CHANNELS, SignalConfig, prepare
from ecgsignal.pipeline import UnusableSignalError

C, F = len(FIDUCIAL_CHANNELS), len(FEATURE_NAMES)


def _check(prepared, leads: int, windows: int = 1, T: int = 2500) -> None:
    assert prepared.windows.shape == (windows, leads, T) and prepared.windows.dtype == np.float32
    assert prepared.fiducials.shape == (windows, C, T) and prepared.fiducials.dtype == np.float32
    assert prepared.features.shape == (F,) and prepared.features.dtype == np.float32
    assert prepared.feature_present.shape == (F,) and prepared.feature_present.dtype == bool
    assert prepared.quality.shape == (leads,) and prepared.quality.dtype == bool
    assert np.isfinite(prepared.windows).all() and np.isfinite(prepared.fiducials).all()
    assert np.array_equal(prepared.feature_present, np.isfinite(prepared.features))


def test_real_records_all_and_reduced_leads(cinc_dir, ptbxl_dir):
    for path in find_records(cinc_dir)[::3] + find_records(ptbxl_dir / "records500")[::40]:
        rec = read_record(path)
        full = prepare(rec.signal, rec.fs, rec.leads)
        _check(full, 12)
        assert full.fiducials[0, FIDUCIAL_CHANNELS.index("QRS")].max() > 0.5
        rows = [i for i in lead_indices(rec.leads, TWO_LEADS)]
        two = prepare(rec.signal[rows], rec.fs, TWO_LEADS)
        _check(two, 2)
        assert np.allclose(two.windows, full.windows[:, rows], atol=1e-5)  # same leads, same order
        assert two.feature_present.sum() < full.feature_present.sum()


def test_awkward_inputs():
    # 2.5 s, one lead, 1000 Hz
    one, _ = gaussian_ecg(1000.0, 2.5, start=0.3)
    p = prepare(one, 1000.0, ("II",))
    _check(p, 1)
    assert (p.windows[0, 0, 625:] == 0).all() and p.feature_present[FEATURE_NAMES.index("heart_rate")]
    # all zero, all NaN, pure noise on every lead: nothing usable is an error, not all-zero inputs
    with pytest.raises(UnusableSignalError, match="none of the 12 leads"):
        prepare(np.zeros((12, 5000)), 500.0, TWELVE_LEADS)
    with pytest.raises(UnusableSignalError, match="no finite sample"):
        prepare(np.full((2, 5000), np.nan), 500.0, ("I", "II"))
    with pytest.raises(UnusableSignalError, match="quality check"):
        prepare(np.random.default_rng(0).standard_normal((12, 5000)), 500.0, TWELVE_LEADS)
    # a flat lead and missing samples in a 257 Hz record of 40 s
    signal, _ = gaussian_ecg(257.0, 40.0, leads=12)
    signal[3] = 0.0
    signal[5, 1000:1500] = np.nan
    p = prepare(signal, 257.0, TWELVE_LEADS, SignalConfig(max_windows=3))
    _check(p, 12, windows=3)
    assert p.quality.tolist() == [i != 3 for i in range(12)]
    assert not p.feature_present[FEATURE_NAMES.index("r_amp_aVR")]


def test_thirty_minutes_at_257_hz():
    signal, truth = gaussian_ecg(257.0, 1800.0, hr=72.0, leads=12)
    p = prepare(signal, 257.0, TWELVE_LEADS)
    _check(p, 12, windows=SignalConfig().max_windows)
    assert abs(p.features[FEATURE_NAMES.index("num_beats")] - truth.size) <= 2
