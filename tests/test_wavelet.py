"""The delineator's wavelet transform against PyWavelets' stationary (à trous) transform.

PyWavelets, given the quadratic-spline filter bank (h = [1, 3, 3, 1] / 8, g = [2, -2]), computes the
causal transform: its scale 2^k is our zero-phase scale 2^k advanced by 2^(k-1) - 1/2 samples (the
linear-phase factors ``e^{jw/2}`` our module drops on purpose). A half-sample shift is not an integer
filter, so the comparison is made in the frequency domain, on the same circular signal, after removing
exactly that linear phase: what remains must be equal to float tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

from ecgio import read_record
from ecgsignal.config import SignalConfig
from ecgsignal.preprocess import condition
from ecgsignal.wavelet import DESIGN_FS, SCALES, dyadic_wavelet_transform, frequency_response
from tests.conftest import cinc_headers

pywt = pytest.importorskip("pywt")

LOW = np.array([1.0, 3.0, 3.0, 1.0]) / 8.0
HIGH = np.array([0.0, 2.0, -2.0, 0.0])


def _quadratic_spline() -> pywt.Wavelet:
    return pywt.Wavelet("quadratic_spline", filter_bank=[LOW, HIGH, LOW[::-1], HIGH[::-1]])


def _pywt_details(x: np.ndarray) -> list[np.ndarray]:
    """Detail coefficients of scales 2^1 .. 2^5 (float64), circular, unnormalised."""
    coeffs = pywt.swt(x, _quadratic_spline(), level=max(SCALES), axis=-1, trim_approx=True, norm=False)
    return list(coeffs[1:][::-1])


def _zero_phase(detail: np.ndarray, scale: int) -> np.ndarray:
    """The spectrum of one PyWavelets detail with its linear phase (advance 2^(k-1) - 1/2) removed."""
    n = detail.shape[-1]
    omega = 2.0 * np.pi * np.fft.rfftfreq(n)
    advance = 2.0 ** (scale - 1) - 0.5
    return np.fft.rfft(detail, axis=-1) * np.exp(-1j * omega * advance)


def test_impulse_responses_match_pywavelets() -> None:
    """Each scale's response equals PyWavelets' quadratic-spline SWT impulse response, phase removed."""
    n = 256
    impulse = np.zeros(n)
    impulse[0] = 1.0
    freqs = np.fft.rfftfreq(n, d=1.0 / DESIGN_FS)
    for scale, detail in zip(SCALES, _pywt_details(impulse)):
        np.testing.assert_allclose(_zero_phase(detail, scale), frequency_response(freqs, scale), atol=1e-12)


@pytest.mark.parametrize("header", cinc_headers()[:6], ids=lambda p: p.stem)
def test_records_match_pywavelets(header) -> None:
    """On conditioned Challenge records at 250 Hz: our filters applied to the spectrum equal PyWavelets'."""
    record = read_record(header)
    x, _ = condition(record.signal, record.fs, SignalConfig())
    n = x.shape[1] - x.shape[1] % 32  # SWT needs a multiple of 2^5 samples
    x = x[:, :n].astype(np.float64)
    freqs = np.fft.rfftfreq(n, d=1.0 / DESIGN_FS)
    spectrum = np.fft.rfft(x, axis=-1)
    for scale, detail in zip(SCALES, _pywt_details(x)):
        ours = spectrum * frequency_response(freqs, scale)
        theirs = _zero_phase(detail, scale)
        assert np.abs(ours - theirs).max() <= 1e-9 * np.abs(ours).max()


@pytest.mark.parametrize("header", cinc_headers()[:3], ids=lambda p: p.stem)
def test_transform_interior_follows_pywavelets(header) -> None:
    """Away from the ends, the float32 transform equals PyWavelets' shifted by its advance (integer part)
    and half a sample: compared at the half-sample by averaging the two neighbouring causal outputs,
    the relative gap is below 5 % of the scale's peak at 2^3 .. 2^5 (the half sample matters more at 2^1, 2^2)."""
    record = read_record(header)
    x, _ = condition(record.signal, record.fs, SignalConfig())
    ours = dyadic_wavelet_transform(x, DESIGN_FS)
    n = x.shape[1] - x.shape[1] % 32
    details = _pywt_details(x[:, :n].astype(np.float64))
    edge = int(DESIGN_FS)
    for i, (scale, detail) in enumerate(zip(SCALES, details)):
        if scale < 3:
            continue
        whole = 2 ** (scale - 1) - 1  # advance = whole + 1/2
        halfway = 0.5 * (np.roll(detail, whole, axis=-1) + np.roll(detail, whole + 1, axis=-1))
        gap = np.abs(halfway[:, edge : n - edge] - ours[i][:, edge : n - edge]).max()
        assert gap <= 0.05 * np.abs(ours[i]).max(), (scale, gap)
