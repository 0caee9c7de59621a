"""The noise stress test's noise: the stated SNR, reproducible, each kind where it should be in frequency."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecgdata.qrs_stress import add_noise, make_noise

FS = 500.0
ROOT = Path(__file__).resolve().parents[1]


def _beats_signal() -> tuple[np.ndarray, np.ndarray]:
    """Two leads of 1-mV-peak-to-peak spikes once a second (QRS-like amplitude), flat between."""
    x = np.zeros((2, 5000))
    beats = np.arange(250, 5000, 500)
    x[0, beats] = 1.0
    x[1, beats] = 0.5
    return x, beats


@pytest.mark.parametrize("kind", ["bw", "ma", "em"])
@pytest.mark.parametrize("snr_db", [12.0, 0.0])
def test_noise_has_the_stated_snr_and_is_reproducible(kind, snr_db):
    x, beats = _beats_signal()
    noisy = add_noise(x, beats, FS, kind, snr_db, seed=7)
    for lead, peak_to_peak in ((0, 1.0), (1, 0.5)):
        measured = 10 * np.log10(peak_to_peak**2 / 8 / np.var(noisy[lead] - x[lead]))
        assert measured == pytest.approx(snr_db, abs=0.01)
    assert np.array_equal(noisy, add_noise(x, beats, FS, kind, snr_db, seed=7))
    assert not np.array_equal(noisy, add_noise(x, beats, FS, kind, snr_db, seed=8))


def test_noise_kinds_sit_in_their_bands():
    rng = np.random.default_rng(0)
    freqs = np.fft.rfftfreq(50_000, 1 / FS)

    def share(kind: str, lo: float, hi: float) -> float:
        power = np.abs(np.fft.rfft(make_noise(kind, 50_000, FS, rng))) ** 2
        return float(power[(freqs >= lo) & (freqs <= hi)].sum() / power.sum())

    assert share("bw", 0.0, 1.0) > 0.99
    assert share("ma", 8.0, 120.0) > 0.9
    assert share("em", 0.3, 25.0) > 0.9  # switched on and off, so wider than its 1-12 Hz band
    assert share("ma", 0.0, 5.0) < 0.01


def test_no_noise_and_bad_arguments():
    x, beats = _beats_signal()
    assert add_noise(x, beats, FS, "none", 0.0, seed=0) is x
    with pytest.raises(ValueError, match="unknown noise"):
        make_noise("pink", 100, FS, np.random.default_rng(0))


def test_the_benchmark_script_refuses_a_lead_pair_it_cannot_read(tmp_path):
    """benchmarks/bench_qrs_noise.py is a leaf script: run as one, a bad --pairs is a usage error."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_qrs_noise.py"), "--data", str(tmp_path), "--pairs", "ii"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 2 and "two LUDB leads" in run.stderr, run.stderr
