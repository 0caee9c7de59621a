"""The synthetic demo set: every label checked by measuring the written signals, and reproducibility.

The measurements here are independent of the generator's own checks: they run on the files as
written (noise, baseline wander and int16 rounding included), with their own filtering, their own
R-peak detector and median beats.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, find_peaks, sosfiltfilt

from ecgdata import synthetic
from ecgio import read_record
from ecgio.leads import TWELVE_LEADS

FS = 500
NSR, SB, STACH, SA, AF, LQRSV = "426783006", "426177001", "427084000", "427393009", "164889003", "251146004"
N_RECORDS = 20


def bandpass(x: np.ndarray, low: float, high: float) -> np.ndarray:
    sos = butter(3, [low, high], btype="band", fs=FS, output="sos")
    return sosfiltfilt(sos, x, axis=-1)


def detect_r_peaks(x: np.ndarray) -> np.ndarray:
    """QRS detection on the noisy record: summed absolute slope of the 8-30 Hz band, smoothed 50 ms."""
    energy = np.abs(np.diff(bandpass(x, 8, 30), axis=1)).sum(axis=0)
    energy = np.convolve(energy, np.ones(25) / 25, mode="same")
    peaks, _ = find_peaks(energy, distance=int(0.25 * FS), height=0.4 * np.percentile(energy, 99))
    return peaks


def median_beat(x: np.ndarray, peaks: np.ndarray, before: float, after: float) -> np.ndarray:
    b, a = int(before * FS), int(after * FS)
    beats = [x[:, p - b : p + a] for p in peaks if p - b >= 0 and p + a <= x.shape[1]]
    return np.median(np.stack(beats), axis=0)


def measure(path: Path) -> dict[str, float]:
    """Heart rate, RR spread, P-wave size (lead II) and QRS amplitudes of a written record."""
    record = read_record(path)
    x = record.signal.astype(np.float64)
    peaks = detect_r_peaks(x)
    rr = np.diff(peaks) / FS
    beat = median_beat(bandpass(x, 0.5, 40), peaks, 0.4, 0.3)
    r = int(0.4 * FS)
    qrs = np.ptp(beat[:, r - 30 : r + 31], axis=1)  # +-60 ms around R
    p_start = r - int(min(0.3, 0.35 * rr.min()) * FS)
    p_window = beat[1, p_start : r - int(0.06 * FS)]
    return {
        "rate": 60.0 / rr.mean(),
        "rr_range": float(rr.max() - rr.min()),
        "rr_cv": float(rr.std() / rr.mean()),
        "p_ratio": float(np.ptp(p_window) / np.ptp(beat[1])),
        "limb_qrs": float(qrs[:6].max()),
        "precordial_qrs": float(qrs[6:].max()),
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out = tmp_path_factory.mktemp("demo")
    counts = synthetic.make_demo_set(out, N_RECORDS, seed=0, jobs=2, progress=False)
    return out, counts


@pytest.fixture(scope="module")
def measured(demo) -> dict[str, tuple[tuple[str, ...], dict[str, float]]]:
    out, _ = demo
    return {path.stem: (read_record(path).labels, measure(path)) for path in sorted(out.glob("*.hea"))}


def test_files_and_header_fields(demo):
    out, counts = demo
    headers = sorted(out.glob("*.hea"))
    assert len(headers) == N_RECORDS and len(list(out.glob("*.mat"))) == N_RECORDS
    for path in headers:
        record = read_record(path)
        assert record.fs == FS and record.signal.shape == (12, 10 * FS) and record.leads == TWELVE_LEADS
        assert 18 <= record.age <= 90 and record.sex in {"Male", "Female"}
        assert path.read_text().count("#Dx: ") == 1
    for code in (NSR, SB, STACH, SA, AF, LQRSV):
        assert counts.get(code, 0) >= 2, f"the demo sample should hold every label at least twice: {counts}"


def test_rate_labels_match_the_measured_heart_rate(measured):
    for name, (labels, m) in measured.items():
        if SB in labels:
            assert m["rate"] < 60, name
        if STACH in labels:
            assert m["rate"] > 100, name
        if NSR in labels:
            assert 60 <= m["rate"] <= 100, name
        if AF not in labels:
            assert any(code in labels for code in (NSR, SB, STACH)), name


def test_regular_and_irregular_rhythms_are_measurably_so(measured):
    for name, (labels, m) in measured.items():
        if AF in labels:
            assert m["rr_cv"] > 0.08 and m["rr_range"] > 0.15, (name, m)
        elif SA in labels:
            assert m["rr_range"] >= 0.15, (name, m)
        else:
            assert m["rr_range"] < 0.12 and m["rr_cv"] < 0.05, (name, m)


def test_p_waves_present_in_sinus_rhythms_and_absent_in_af(measured):
    p_sinus = [m["p_ratio"] for labels, m in measured.values() if AF not in labels]
    p_af = [m["p_ratio"] for labels, m in measured.values() if AF in labels]
    assert p_af and p_sinus
    assert max(p_af) < 0.1 < 0.2 < min(p_sinus), (p_af, p_sinus)


def test_low_qrs_voltage_matches_measured_amplitudes(measured):
    for name, (labels, m) in measured.items():
        if LQRSV in labels:
            assert m["limb_qrs"] < 0.5 and m["precordial_qrs"] < 1.0, (name, m)
        else:
            assert m["limb_qrs"] >= 0.5 and m["precordial_qrs"] >= 1.0, (name, m)


def test_same_seed_gives_identical_files(demo, tmp_path):
    out, _ = demo
    synthetic.make_demo_set(tmp_path, 4, seed=0, jobs=1, progress=False)  # other worker count, fewer records
    for path in sorted(tmp_path.iterdir()):
        assert path.read_bytes() == (out / path.name).read_bytes(), path.name


def test_other_seed_gives_other_records():
    first, other = synthetic.simulate_record(0, seed=0), synthetic.simulate_record(0, seed=1)
    assert first.signal.shape == other.signal.shape
    assert not np.allclose(first.signal, other.signal)
    again = synthetic.simulate_record(0, seed=0)
    assert np.array_equal(first.signal, again.signal) and first.labels == again.labels


def test_plan_is_balanced_and_seeded():
    plans = [synthetic.record_plan(i, 3) for i in range(50)]
    rhythms = [rhythm.name for rhythm, _ in plans]
    assert all(rhythms.count(r.name) == 10 for r in synthetic.RHYTHMS)
    assert plans == [synthetic.record_plan(i, 3) for i in range(50)]
    assert 0 < sum(low for _, low in plans) < 50


def test_rejects_an_empty_set(tmp_path):
    with pytest.raises(ValueError):
        synthetic.make_demo_set(tmp_path, 0)


def test_cli(tmp_path, capsys):
    assert synthetic.main([str(tmp_path), "--records", "1", "--seed", "5", "--jobs", "1"]) == 0
    assert "wrote 1 records" in capsys.readouterr().out
    assert (tmp_path / "SYN00001.hea").is_file()
