"""The delineator's wavelet transform (PyWavelets at 250 * 2^j Hz) against the frequency-domain design it replaced.

The reference below is the transform the delineator used before PyWavelets computed it: the zero-phase
quadratic-spline scales applied as one FFT product per scale, evaluated on physical frequency (so at any
rate), nothing above 125 Hz, half a second of reflection on each side, chunks of 2^16 samples. It is kept
here, not in the library, as the definition the pywt route must reproduce: to float32 precision on
impulses, on real records of every shared source at their own rates and at the delineator's 250 Hz, on
chunked long inputs, and in the delineation built on it.

The first two tests tie the reference to PyWavelets' own causal stationary transform at 250 Hz (equal once
its linear phase, a lead of 2^(k-1) - 1/2 samples at scale 2^k, is removed), which is what makes the
500-Hz route of :mod:`ecgsignal.wavelet` exact.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from scipy import fft as spfft
from scipy import signal as spsignal

from ecgio import read_record
from ecgsignal.config import SignalConfig
from ecgsignal.pacing import spikes_at
from ecgsignal.preprocess import condition
from ecgsignal.wavelet import (
    CHUNK,
    DESIGN_FS,
    QUADRATIC_SPLINE,
    SCALES,
    _first_smoothing,
    _last_detail,
    dyadic_wavelet_transform,
)
from tests.conftest import SHARED_DATA, cinc_headers

pywt = pytest.importorskip("pywt")

LUDB_DATA = SHARED_DATA / "ludb" / "data"
#: float32 precision, relative to each scale's peak: the pywt route measured at most 2.8e-6 on all
#: 25 Challenge, 706 PTB-XL (100 and 500 Hz) and 200 LUDB records.
TOLERANCE = 1e-5


# ------------------------------------------------------------------ the reference (the previous transform)


def frequency_response(freqs_hz: np.ndarray, scale: int) -> np.ndarray:
    """Zero-phase response ``Q_k`` (purely imaginary) of scale 2^``scale`` at physical frequencies (Hz)."""
    omega = 2.0 * np.pi * np.asarray(freqs_hz, dtype=np.float64) / DESIGN_FS
    response = 4.0 * np.sin(2.0 ** (scale - 1) * omega / 2.0)
    for level in range(scale - 1):
        response = response * np.cos(2.0**level * omega / 2.0) ** 3
    response = np.where(omega <= np.pi, response, 0.0)
    return 1j * response


@lru_cache(maxsize=32)
def _responses(n_fft: int, fs: float, scales: tuple[int, ...]) -> np.ndarray:
    freqs = spfft.rfftfreq(n_fft, d=1.0 / fs)
    return np.stack([frequency_response(freqs, scale) for scale in scales]).astype(np.complex64)


def _reference_block(x: np.ndarray, fs: float, scales: tuple[int, ...], pad: int) -> np.ndarray:
    n = x.shape[-1]
    pad = min(pad, n - 1)
    padded = np.pad(x, ((0, 0), (pad, pad)), mode="reflect") if pad > 0 else x
    n_fft = spfft.next_fast_len(padded.shape[-1], real=True)
    spectrum = spfft.rfft(padded, n=n_fft, axis=-1, workers=1)
    product = spectrum[None, :, :] * _responses(n_fft, float(fs), scales)[:, None, :]
    out = spfft.irfft(product, n=n_fft, axis=-1, workers=1)
    return out[:, :, pad : pad + n]


def reference_transform(x: np.ndarray, fs: float, scales: tuple[int, ...] = SCALES) -> np.ndarray:
    """The frequency-domain transform, exactly as the delineator computed it before (same shapes, float32)."""
    x = np.asarray(x, dtype=np.float32)
    squeeze = x.ndim == 1
    x2 = x[None, :] if squeeze else x
    scales = tuple(int(s) for s in scales)
    n = x2.shape[1]
    pad = int(round(0.5 * fs))
    if n <= CHUNK:
        out = _reference_block(x2, fs, scales, pad).astype(np.float32)
    else:
        out = np.empty((len(scales), x2.shape[0], n), dtype=np.float32)
        for start in range(0, n, CHUNK):
            lo, hi = max(0, start - pad), min(n, start + CHUNK + pad)
            block = _reference_block(x2[:, lo:hi], fs, scales, pad)
            stop = min(n, start + CHUNK)
            out[:, :, start:stop] = block[:, :, start - lo : stop - lo]
    return out[:, 0] if squeeze else out


def worst_gap(ours: np.ndarray, reference: np.ndarray) -> float:
    """Largest |difference| over leads and samples (edges included), relative to each scale's peak; worst scale."""
    gaps = [np.abs(o - r).max() / max(float(np.abs(r).max()), 1e-30) for o, r in zip(ours, reference)]
    return float(max(gaps))


# ------------------------------------------------------------------ the reference is PyWavelets' transform


def _pywt_details(x: np.ndarray) -> list[np.ndarray]:
    """PyWavelets' causal details of scales 2^1 .. 2^5 at the design rate (float64), circular, unnormalised."""
    coeffs = pywt.swt(x, QUADRATIC_SPLINE, level=max(SCALES), axis=-1, trim_approx=True, norm=False)
    return list(coeffs[1:][::-1])


def _zero_phase(detail: np.ndarray, scale: int) -> np.ndarray:
    """The spectrum of one PyWavelets detail with its linear phase (advance 2^(k-1) - 1/2) removed."""
    omega = 2.0 * np.pi * np.fft.rfftfreq(detail.shape[-1])
    return np.fft.rfft(detail, axis=-1) * np.exp(-1j * omega * (2.0 ** (scale - 1) - 0.5))


def test_reference_responses_are_pywavelets_on_an_impulse() -> None:
    n = 256
    impulse = np.zeros(n)
    impulse[0] = 1.0
    freqs = np.fft.rfftfreq(n, d=1.0 / DESIGN_FS)
    for scale, detail in zip(SCALES, _pywt_details(impulse)):
        np.testing.assert_allclose(_zero_phase(detail, scale), frequency_response(freqs, scale), atol=1e-12)


@pytest.mark.parametrize("start_level", [0, 1, 2])
def test_steps_done_outside_pywt_are_bit_identical(start_level: int) -> None:
    """Skipping pywt's first step (its detail is the unread 2^1) and its last step's approximation
    (never read) must leave the scales' floats as they were."""
    x = np.random.default_rng(start_level).standard_normal(4096).astype(np.float32)
    full = pywt.swt(x, QUADRATIC_SPLINE, level=4, start_level=start_level, trim_approx=True, norm=False)
    smoothed = _first_smoothing(x, 2**start_level)
    rest = pywt.swt(smoothed, QUADRATIC_SPLINE, level=3, start_level=start_level + 1, trim_approx=True, norm=False)
    approx = pywt.swt(x, QUADRATIC_SPLINE, level=1, start_level=start_level, trim_approx=False, norm=False)[0][0]
    assert np.array_equal(smoothed, approx)
    for scale in (2, 3, 4):
        assert np.array_equal(rest[-(scale - 1)], full[-scale])
    # ... and the last step's detail without its approximation
    steps = pywt.swt(smoothed, QUADRATIC_SPLINE, level=2, start_level=start_level + 1, norm=False)
    assert np.array_equal(_last_detail(steps[0][0], 2 ** (start_level + 3)), full[1])


@pytest.mark.parametrize("header", cinc_headers()[:3], ids=lambda p: p.stem)
def test_reference_responses_are_pywavelets_on_records(header: Path) -> None:
    record = read_record(header)
    x, _ = condition(record.signal, record.fs, SignalConfig())
    n = x.shape[1] - x.shape[1] % 32  # the SWT needs a multiple of 2^5 samples
    x = x[:, :n].astype(np.float64)
    spectrum = np.fft.rfft(x, axis=-1)
    freqs = np.fft.rfftfreq(n, d=1.0 / DESIGN_FS)
    for scale, detail in zip(SCALES, _pywt_details(x)):
        ours = spectrum * frequency_response(freqs, scale)
        assert np.abs(ours - _zero_phase(detail, scale)).max() <= 1e-9 * np.abs(ours).max()


# ------------------------------------------------------------------ the pywt route equals the reference


@pytest.mark.parametrize("fs", [100.0, 200.0, 250.0, 500.0, 1000.0, 1000.0 / 3.0])
@pytest.mark.parametrize("length_s", [0.15, 4.0, 4.003])
def test_impulses_equal_reference(fs: float, length_s: float) -> None:
    """Two impulses (one near the start, where the reflection acts): every scale, edges included.

    Impulses are the hard case: they carry all frequencies up to 125 Hz, where the 2^1 response is cut."""
    n = int(length_s * fs)
    x = np.zeros((2, n), np.float32)
    x[0, n // 2] = 1.0
    x[1, 3] = -2.0
    assert worst_gap(dyadic_wavelet_transform(x, fs), reference_transform(x, fs)) <= TOLERANCE


@pytest.mark.parametrize("fs", [257.0, 360.0])
def test_rates_without_a_common_period(fs: float) -> None:
    """257 or 360 Hz: no 250 * 2^j Hz rate holds the reference's FFT period in whole samples, so the pywt
    route wraps on a slightly different period. Scales 2^2..2^5 (those the delineator uses) are unaffected;
    the 2^1 response, cut sharply at 125 Hz, wraps differently wherever the input reaches 125 Hz: measured
    0.9 % of its peak on an impulse, 0.05-0.35 % on raw LUDB records resampled to these rates."""
    n = int(4 * fs) + 1
    x = np.zeros((1, n), np.float32)
    x[0, n // 2] = 1.0
    ours, reference = dyadic_wavelet_transform(x, fs), reference_transform(x, fs)
    assert worst_gap(ours[1:], reference[1:]) <= TOLERANCE
    assert worst_gap(ours[:1], reference[:1]) <= 0.01
    ecg = _ludb(45)
    resampled = spsignal.resample(ecg.signal, int(ecg.num_samples * fs / ecg.fs), axis=-1).astype(np.float32)
    ours, reference = dyadic_wavelet_transform(resampled, fs), reference_transform(resampled, fs)
    assert worst_gap(ours[1:], reference[1:]) <= TOLERANCE
    assert worst_gap(ours[:1], reference[:1]) <= 0.005


def _ludb(number: int):
    if not LUDB_DATA.is_dir():
        pytest.skip(f"LUDB not found at {LUDB_DATA} (the ../shared folder beside the repository is absent)")
    return read_record(LUDB_DATA / f"{number}.hea")


def _ptbxl_100hz() -> list[Path]:
    return sorted((SHARED_DATA / "ptb-xl-sample").glob("records100/*/*.hea"))[:5]


@pytest.mark.parametrize("header", cinc_headers(), ids=lambda p: p.stem)
def test_challenge_records_equal_reference(header: Path) -> None:
    """All leads, conditioned at 250 Hz (what the delineator sees) and raw at the record's 500 Hz."""
    record = read_record(header)
    x, _ = condition(record.signal, record.fs, SignalConfig())
    assert worst_gap(dyadic_wavelet_transform(x, 250.0), reference_transform(x, 250.0)) <= TOLERANCE
    raw = record.signal.astype(np.float32)
    assert worst_gap(dyadic_wavelet_transform(raw, record.fs), reference_transform(raw, record.fs)) <= TOLERANCE


@pytest.mark.parametrize("number", [1, 8, 34, 45, 95, 111, 150, 200])
def test_ludb_records_equal_reference(number: int) -> None:
    """LUDB (paced ones among them), all leads: raw at 500 Hz, conditioned at 250 Hz, and FFT-resampled to 1000 Hz."""
    record = _ludb(number)
    raw = record.signal.astype(np.float32)
    assert worst_gap(dyadic_wavelet_transform(raw, 500.0), reference_transform(raw, 500.0)) <= TOLERANCE
    x, _ = condition(record.signal, record.fs, SignalConfig())
    assert worst_gap(dyadic_wavelet_transform(x, 250.0), reference_transform(x, 250.0)) <= TOLERANCE
    fast = spsignal.resample(raw, 2 * raw.shape[1], axis=-1).astype(np.float32)
    assert worst_gap(dyadic_wavelet_transform(fast, 1000.0), reference_transform(fast, 1000.0)) <= TOLERANCE


def test_ptbxl_100hz_records_equal_reference() -> None:
    headers = _ptbxl_100hz()
    if not headers:
        pytest.skip(
            "PTB-XL sample not found under ../shared/data (the ../shared folder beside the repository is absent)"
        )
    for header in headers:
        raw = read_record(header).signal.astype(np.float32)
        assert worst_gap(dyadic_wavelet_transform(raw, 100.0), reference_transform(raw, 100.0)) <= TOLERANCE


@pytest.mark.parametrize("fs", [250.0, 1000.0])
def test_chunked_long_input_equals_reference(fs: float) -> None:
    """Longer than one chunk of 2^16 samples (a 5-min record at 250 Hz, 70 s at 1000 Hz): same chunks, same values."""
    seconds = 300.0 if fs == 250.0 else 70.0
    n = int(seconds * fs)
    assert n > CHUNK
    rng = np.random.default_rng(3)
    t = np.arange(n) / fs
    x = np.stack([np.sin(2 * np.pi * 1.1 * t) ** 31, rng.standard_normal(n)]).astype(np.float32)
    x[0, CHUNK - 2] += 5.0  # a spike at the chunk boundary
    ours, reference = dyadic_wavelet_transform(x, fs, scales=(2, 3, 4)), reference_transform(x, fs, scales=(2, 3, 4))
    assert worst_gap(ours, reference) <= TOLERANCE


def test_shapes_and_single_lead() -> None:
    x = np.random.default_rng(0).standard_normal((3, 1000)).astype(np.float32)
    w = dyadic_wavelet_transform(x, 250.0, scales=(2, 4))
    assert w.shape == (2, 3, 1000) and w.dtype == np.float32
    np.testing.assert_allclose(dyadic_wavelet_transform(x[1], 250.0, scales=(2, 4)), w[:, 1], atol=1e-6)
    assert dyadic_wavelet_transform(np.zeros((2, 0)), 250.0).shape == (5, 2, 0)
    assert dyadic_wavelet_transform(np.ones(1), 250.0).shape == (5, 1)


# ------------------------------------------------------------------ the delineation built on it


def _delineate_both(monkeypatch: pytest.MonkeyPatch, x: np.ndarray, fs: float, spikes: np.ndarray):
    module = sys.modules["ecgsignal.delineate"]
    ours = module.delineate(x, fs, spikes)
    with monkeypatch.context() as patch:
        patch.setattr(module, "dyadic_wavelet_transform", reference_transform)
        reference = module.delineate(x, fs, spikes)
    return ours, reference


def test_delineation_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fiducials from the pywt route equal those from the reference, exactly, on Challenge and LUDB records.

    (On all 931 shared and LUDB record files the two transforms gave identical fiducials except two P onsets,
    one sample apart, in two PTB-XL records: a float32 rounding difference at a threshold.)"""
    headers = cinc_headers()
    if not headers:
        pytest.skip("Challenge sample not found under ../shared/data")
    records = [read_record(h) for h in headers[::3]] + ([_ludb(n) for n in (8, 45, 100)] if LUDB_DATA.is_dir() else [])
    config = SignalConfig()
    for record in records:
        x, quality = condition(record.signal, record.fs, config)
        spikes = spikes_at(record.signal, record.fs, config.fs, quality)
        ours, reference = _delineate_both(monkeypatch, x, config.fs, spikes)
        np.testing.assert_array_equal(ours.r_peaks, reference.r_peaks)
        np.testing.assert_array_equal(ours.points, reference.points)
        np.testing.assert_array_equal(ours.unsure, reference.unsure)
    raw = records[-1].signal.astype(np.float32)  # and at a record's own rate (500 Hz)
    ours, reference = _delineate_both(monkeypatch, raw, records[-1].fs, np.zeros(0, np.int64))
    np.testing.assert_array_equal(ours.points, reference.points)
