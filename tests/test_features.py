"""Fiducial channels and global features: shapes, units, known values on synthetic ECGs, real records."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from test_delineate import gaussian_ecg

from ecgio import find_records, read_record
from ecgio.leads import TWELVE_LEADS
from ecgsignal import (
    FEATURE_NAMES,
    FEATURE_RANGES,
    FEATURE_UNITS,
    FIDUCIAL_CHANNELS,
    condition,
    delineate,
    fiducial_channels,
    global_features,
)

FS = 250.0


def _features(signal: np.ndarray, fs: float, leads: tuple[str, ...]):
    x, _ = condition(signal, fs)
    d = delineate(x, FS)
    return global_features(x, FS, d, leads), d, x


def test_names_units_ranges_agree():
    assert len(FEATURE_NAMES) == len(FEATURE_UNITS) == len(FEATURE_RANGES) == len(set(FEATURE_NAMES))
    assert all(low < high for low, high in FEATURE_RANGES)
    assert "qtc_bazett" in FEATURE_NAMES and "st_level_V6" in FEATURE_NAMES


def test_synthetic_values():
    """75 bpm Gaussian ECG: heart rate, RR spread, amplitudes (mV) and intervals come out as built."""
    signal, _ = gaussian_ecg(500.0, 10.0, hr=75.0, leads=12)
    (values, present), _, _ = _features(signal, 500.0, TWELVE_LEADS)
    v = dict(zip(FEATURE_NAMES, values))
    assert values.shape == present.shape == (len(FEATURE_NAMES),) and values.dtype == np.float32
    assert np.array_equal(present, np.isfinite(values))
    assert abs(v["heart_rate"] - 75.0) < 1.0 and v["rr_sdnn"] < 5.0 and v["rr_irregularity"] < 0.02
    assert v["p_presence"] > 0.9
    assert 0.9 < v["r_amp_I"] < 1.5 and v["s_amp_I"] < -0.1 and 0.2 < v["t_amp_I"] < 0.45
    assert 0.08 < v["p_amp_I"] < 0.2 and abs(v["st_level_I"]) < 0.1
    assert 40 < v["qrs_duration"] < 140 and 100 < v["pr_interval"] < 250 and 250 < v["qt_interval"] < 500
    rr = 0.8
    assert math.isclose(v["qtc_bazett"], v["qt_interval"] / math.sqrt(rr), rel_tol=0.02)
    assert math.isclose(v["qtc_fridericia"], v["qt_interval"] / rr ** (1 / 3), rel_tol=0.02)


def test_axis_and_lead_subsets():
    """Axis from I and aVF (60 deg built in), and from I and II alone; F fixed for every lead set; absent
    leads not present."""
    base, _ = gaussian_ecg(500.0, 10.0, hr=70.0, leads=1)
    angle = math.radians(60.0)
    signal = np.vstack([base * math.cos(angle), base, base * math.sin(angle) * math.sqrt(3) / 2])
    leads = ("I", "II", "aVF")
    (values, present), _, _ = _features(signal, 500.0, leads)
    v = dict(zip(FEATURE_NAMES, values))
    assert abs(v["qrs_axis"] - 60.0) < 5.0
    assert not present[FEATURE_NAMES.index("r_amp_V1")] and present[FEATURE_NAMES.index("r_amp_II")]
    assert np.isnan(v["precordial_max_p2p"]) and v["limb_max_p2p"] > 0.5
    (two, two_present), _, _ = _features(signal[:2], 500.0, ("I", "II"))
    assert two.shape == values.shape and two_present[FEATURE_NAMES.index("qrs_axis")]
    assert abs(two[FEATURE_NAMES.index("qrs_axis")] - 60.0) < 5.0  # aVF = II - I/2
    (_, one_present), _, _ = _features(signal[:1], 500.0, ("I",))
    assert not one_present[FEATURE_NAMES.index("qrs_axis")]


def test_no_beats_gives_all_missing():
    (values, present), d, _ = _features(np.zeros((12, 5000)), 500.0, TWELVE_LEADS)
    assert d.num_beats == 0 and not present.any() and np.isnan(values).all()
    channels = fiducial_channels(d, 2500)
    assert channels.shape == (len(FIDUCIAL_CHANNELS), 2500) and (channels == 0).all()


def test_fiducial_channels():
    signal, _ = gaussian_ecg(500.0, 10.0, hr=60.0, leads=4)
    _, d, x = _features(signal, 500.0, ("I", "II", "V1", "V2"))
    channels = fiducial_channels(d, x.shape[1])
    assert channels.dtype == np.float32 and channels.shape == (len(FIDUCIAL_CHANNELS), x.shape[1])
    assert channels.min() >= 0.0 and channels.max() <= 1.0 + 1e-6
    qrs, r_channel = channels[FIDUCIAL_CHANNELS.index("QRS")], channels[FIDUCIAL_CHANNELS.index("R_peak")]
    assert (qrs[d.r_peaks] >= 0.75).all() and np.allclose(r_channel[d.r_peaks], 1.0)
    p_wave = channels[FIDUCIAL_CHANNELS.index("P_wave")]
    assert (p_wave[d.r_peaks] == 0).all() and p_wave.max() > 0.5


def test_real_records_in_range_and_af_has_fewer_p_waves(ptbxl_dir, cinc_dir):
    """Real records: core features present and inside their documented ranges; AF records (PTB-XL
    'AFIB') have a lower P-wave presence and a higher RR irregularity than 'NORM' records."""
    table = pd.read_csv(ptbxl_dir / "ptbxl_database.csv", index_col="ecg_id")
    core = ["heart_rate", "qrs_duration", "qt_interval", "limb_max_p2p", "precordial_max_p2p", "qrs_axis"]
    groups: dict[str, list[np.ndarray]] = {"AFIB": [], "NORM": []}
    outside = 0
    paths = find_records(ptbxl_dir / "records500") + find_records(cinc_dir)
    for path in paths:
        rec = read_record(path)
        (values, present), _, _ = _features(rec.signal, rec.fs, rec.leads)
        v = dict(zip(FEATURE_NAMES, values))
        assert all(present[FEATURE_NAMES.index(name)] for name in core), path
        for name in core:
            low, high = FEATURE_RANGES[FEATURE_NAMES.index(name)]
            outside += not low <= v[name] <= high
        if path.parent.parent.name == "records500":
            codes = table.loc[int(rec.name.split("_")[0]), "scp_codes"]
            for group in groups:
                if f"'{group}'" in codes:
                    groups[group].append(values)
    assert outside <= 0.03 * len(paths) * len(core), outside
    af, norm = np.array(groups["AFIB"]), np.array(groups["NORM"])
    p, irr = FEATURE_NAMES.index("p_presence"), FEATURE_NAMES.index("rr_irregularity")
    assert len(af) >= 5 and len(norm) >= 100
    assert np.nanmean(af[:, p]) < np.nanmean(norm[:, p]) - 0.3
    assert np.nanmedian(af[:, irr]) > 2 * np.nanmedian(norm[:, irr])


def test_lead_by_lead_normalised_records_lose_their_amplitudes(ptbxl_dir):
    """A record whose leads were each rescaled to the same range (LUDB's are) keeps its intervals and
    rhythm but not its amplitudes nor its axis; the original keeps them all."""
    from ecgsignal import prepare
    from ecgsignal.features import AMPLITUDE_FEATURES, amplitudes_normalised

    record = read_record(find_records(ptbxl_dir / "records500")[0])
    spans = np.ptp(record.signal, axis=1, keepdims=True)
    rescaled = record.signal / spans
    assert not amplitudes_normalised(record.signal) and amplitudes_normalised(rescaled)
    assert not amplitudes_normalised(rescaled[:1])  # one lead: nothing to compare
    original = prepare(record.signal, record.fs, record.leads)
    normalised = prepare(rescaled, record.fs, record.leads)
    amplitude = np.array([name in AMPLITUDE_FEATURES for name in FEATURE_NAMES])
    assert original.feature_present[amplitude].sum() > 50 and not normalised.feature_present[amplitude].any()
    kept = ~amplitude & original.feature_present
    assert kept.sum() >= 10 and np.array_equal(normalised.feature_present[kept], original.feature_present[kept])
    np.testing.assert_allclose(normalised.features[kept], original.features[kept], rtol=0.05, atol=5.0)


def test_ludb_records_are_recognised_as_normalised():
    from pathlib import Path

    from ecgsignal.features import amplitudes_normalised

    ludb = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ludb" / "data"
    if not ludb.is_dir():
        import pytest

        pytest.skip(f"{ludb}: LUDB not there (../shared beside the checkout)")
    records = [read_record(ludb / f"{i}.hea") for i in (1, 50, 150)]
    assert all(amplitudes_normalised(r.signal) for r in records)
