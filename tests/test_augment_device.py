"""The device-imitating augmentations (``band_limit``, ``resample``): what another electrocardiograph leaves on a
window after the signal layer, and nothing else (a sine keeps its phase, a record its spread)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ecgdata.challenge_format import write_challenge_record
from ecgio.record import read_record
from ecgsignal.features import amplitudes_normalised
from ecgtrain.augment import (
    DEVICE_HIGHPASS_HZ,
    DEVICE_LOWPASS_HZ,
    DEVICE_RATES,
    augment_signals,
    band_limit,
    device_response,
    imitate_device,
    resample,
)
from ecgtrain.device_copies import write_copies
from ecgtrain.settings import Settings

FS = 250.0
T = 2500
TIME = np.arange(T) / FS


def _sines(records: int, *parts: tuple[float, float, float]) -> np.ndarray:
    """(records, 2, T) float32, both leads the sum of (frequency Hz, amplitude, phase) sines."""
    wave = sum(a * np.sin(2 * np.pi * f * TIME + p) for f, a, p in parts)
    return np.broadcast_to(np.asarray(wave, np.float32), (records, 2, T)).copy()


def _power_at(signal: np.ndarray, frequency: float) -> np.ndarray:
    """Power of each record's first lead at ``frequency`` (an exact FFT bin of the 10-s window)."""
    spectrum = np.abs(np.fft.rfft(signal[:, 0], axis=-1)) ** 2
    return spectrum[:, int(round(frequency * T / FS))]


def _fiducials(records: int) -> np.ndarray:
    return np.zeros((records, 4, T), np.float32)


@pytest.mark.parametrize("augment", [band_limit, resample])
def test_seeded_draws_repeat_and_differ_by_seed(augment):
    signal = np.random.default_rng(0).normal(size=(4, 12, T)).astype(np.float32)
    first, fiducials = augment(signal, _fiducials(4), np.random.default_rng(7), FS)
    again, _ = augment(signal, _fiducials(4), np.random.default_rng(7), FS)
    other, _ = augment(signal, _fiducials(4), np.random.default_rng(8), FS)
    assert first.dtype == np.float32 and first.shape == signal.shape and np.array_equal(first, again)
    assert not np.allclose(first, other)
    assert np.array_equal(fiducials, _fiducials(4))  # the delineation's channels are the record's, untouched


def test_device_response_is_half_power_at_each_cutoff():
    assert abs(abs(device_response(np.array(0.5), 0.5, 1e6)) - 2**-0.5) < 1e-6  # high-pass alone
    assert abs(abs(device_response(np.array(40.0), 1e-6, 40.0)) - 2**-0.5) < 1e-6  # low-pass alone
    assert device_response(np.array(0.0), 0.05, 40.0) == 0  # no DC through a high-pass
    assert np.angle(device_response(np.array(10.0), 0.05, 40.0)) < 0  # causal low-pass: the QRS lags


def test_band_limit_removes_high_frequency_power_and_keeps_the_spread():
    signal = _sines(200, (5.0, 1.0, 0.0), (40.0, 0.3, 1.0))
    out, _ = band_limit(signal, _fiducials(200), np.random.default_rng(1), FS)
    share_before = _power_at(signal, 40.0) / _power_at(signal, 5.0)
    share_after = _power_at(out, 40.0) / _power_at(out, 5.0)
    # a wide low-pass with a 0.67-Hz high-pass damps 5 Hz (by 2 %) more than 40 Hz: at most that
    assert np.all(share_after < 1.03 * share_before)
    # a 35-Hz second-order low-pass keeps 37 % of the power at 40 Hz, a 150-Hz one 99.5 % (mean draw 81 %)
    assert np.mean(share_after / share_before) < 0.9 and np.min(share_after / share_before) < 0.5
    assert np.allclose(out.std(axis=-1), signal.std(axis=-1), rtol=1e-3)


def test_band_limit_high_pass_removes_an_offset_and_the_lowest_draws_leave_a_beat_nearly_unchanged():
    signal = _sines(50, (1.0, 1.0, 0.0), (10.0, 0.5, 0.0)) + 2.0
    out, _ = band_limit(signal, _fiducials(50), np.random.default_rng(2), FS)
    assert np.all(np.abs(out.mean(axis=-1)) < 0.1 * np.abs(signal.mean(axis=-1)))
    # a diagnostic-mode device (0.05 Hz, 150 Hz) barely touches 1-10 Hz: same filter evaluated directly
    response = device_response(np.array([1.0, 10.0]), DEVICE_HIGHPASS_HZ[0], DEVICE_LOWPASS_HZ[1])
    assert np.allclose(np.abs(response), 1.0, atol=0.01)


def test_zero_windows_stay_zero():
    zeros = np.zeros((3, 12, T), np.float32)
    for augment in (band_limit, resample):
        out, _ = augment(zeros, _fiducials(3), np.random.default_rng(0), FS)
        assert np.all(out == 0)


def test_resample_keeps_a_sines_phase_and_amplitude():
    signal = _sines(40, (5.0, 1.0, 0.3))
    out, _ = resample(signal, _fiducials(40), np.random.default_rng(3), FS)
    inner = slice(10, T - 10)  # the first and last samples may read the window's edge
    basis = np.stack([np.sin(2 * np.pi * 5.0 * TIME), np.cos(2 * np.pi * 5.0 * TIME)])[:, inner]
    sin_part, cos_part = np.linalg.lstsq(basis.T, out[:, 0, inner].T, rcond=None)[0]
    assert np.allclose(np.hypot(sin_part, cos_part), 1.0, atol=0.01)
    assert np.allclose(np.arctan2(cos_part, sin_part), 0.3, atol=0.01)
    assert np.max(np.abs(out[..., inner] - signal[..., inner])) < 0.01


def test_resample_keeps_a_ramp_and_shifts_all_leads_alike():
    ramp = np.broadcast_to(np.linspace(-1, 1, T, dtype=np.float32), (8, 3, T)).copy()
    out, _ = resample(ramp, _fiducials(8), np.random.default_rng(4), FS)
    assert np.allclose(out[..., 2:-2], ramp[..., 2:-2], atol=1e-5)  # linear interpolation is exact on a line
    noisy = np.repeat(np.random.default_rng(5).normal(size=(8, 1, T)).astype(np.float32), 3, axis=1)
    out, _ = resample(noisy, _fiducials(8), np.random.default_rng(6), FS)
    assert np.array_equal(out[:, 0], out[:, 1]) and np.array_equal(out[:, 0], out[:, 2])
    assert np.all(out.std(axis=-1) < noisy.std(axis=-1))  # interpolation smooths white noise


def test_resample_damps_40_hz_less_than_a_monitor_filter():
    """Interpolation smooths, but a device's rate alone must not erase the pass band's top."""
    signal = _sines(100, (40.0, 1.0, 0.0))
    out, _ = resample(signal, _fiducials(100), np.random.default_rng(9), FS)
    kept = _power_at(out, 40.0) / _power_at(signal, 40.0)
    assert np.all(kept > 0.5) and np.all(kept <= 1.0 + 1e-6)


def test_device_names_are_valid_settings_and_run_in_one_pass():
    settings = Settings.from_dict({"augment": ["amplitude", "noise", "resample", "band_limit"]}, "test")
    assert settings.augment == ("amplitude", "noise", "resample", "band_limit")
    signal = np.random.default_rng(0).normal(size=(2, 12, T)).astype(np.float32)
    out, fiducials = augment_signals(signal, _fiducials(2), settings.augment, np.random.default_rng(0), FS)
    assert out.shape == signal.shape and out.dtype == np.float32 and fiducials.dtype == np.float32


def test_imitate_device_changes_rate_and_keeps_the_record():
    fs = 500.0
    t = np.arange(5000) / fs
    signal = np.stack([np.sin(2 * np.pi * 1.2 * t), 0.5 * np.sin(2 * np.pi * 1.2 * t + 1.0)]).astype(np.float32)
    rates = set()
    for seed in range(12):
        out, rate = imitate_device(signal, fs, np.random.default_rng(seed))
        rates.add(rate)
        assert rate in DEVICE_RATES and rate != fs and out.dtype == np.float32
        assert out.shape == (2, round(5000 * rate / fs))
        assert np.all(np.ptp(out, axis=1) > 0.7 * np.ptp(signal, axis=1))  # gain, filters, wander: all mild
        assert np.all(np.ptp(out, axis=1) < 1.5 * np.ptp(signal, axis=1))
    assert len(rates) > 1
    again, _ = imitate_device(signal, fs, np.random.default_rng(3))
    assert np.array_equal(again, imitate_device(signal, fs, np.random.default_rng(3))[0])


def test_device_copies_keep_names_labels_and_normalised_leads(records: list[Path], tmp_path: Path):
    """Copies of real records (skipped without ../shared): same names and labels, another rate; a record
    whose leads all span the same range is still read as normalised."""
    source = records[0].parent
    original = read_record(records[0])
    span = np.ptp(original.signal, axis=1, keepdims=True)
    normalised = original.signal / np.where(span > 0, span, 1.0)  # LUDB-like: every lead spans 1 mV
    write_challenge_record(
        source, "LU00999", normalised, original.fs, original.leads, 50, "Male", ("164889003",), 20000
    )
    assert write_copies(source, tmp_path / "copies") == len(records) + 1
    assert write_copies(source, tmp_path / "copies") == 0  # complete copies are kept
    for header in [*records, source / "LU00999.hea"]:
        before, after = read_record(header), read_record(tmp_path / "copies" / header.name)
        assert after.name == before.name and after.labels == before.labels and after.fs != before.fs
    assert amplitudes_normalised(read_record(tmp_path / "copies" / "LU00999.hea").signal)


def test_band_limit_leaves_a_beat_where_the_fiducials_say():
    """The device's delay is taken back: a QRS-like pulse keeps its peak within a sample, so the fiducial
    channels (left as they are) still mark it."""
    pulse = np.exp(-0.5 * ((np.arange(T) - 1200) / 4.0) ** 2).astype(np.float32)
    signal = np.broadcast_to(pulse, (100, 2, T)).copy()
    out, _ = band_limit(signal, _fiducials(100), np.random.default_rng(11), FS)
    assert np.all(np.abs(out[:, 0].argmax(axis=-1) - 1200) <= 1)
