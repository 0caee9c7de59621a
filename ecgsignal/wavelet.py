"""Quadratic-spline dyadic wavelet transform (Li et al. 1995; Martinez et al. 2004), vectorised over leads.

The à-trous filters of the design at 250 Hz are
``H(w) = e^{jw/2} cos^3(w/2)`` and ``G(w) = 4j e^{jw/2} sin(w/2)``; the equivalent filter of scale
2^k is ``Q_1 = G(w)``, ``Q_k = G(2^{k-1} w) prod_{l=0}^{k-2} H(2^l w)``. Each ``Q_k`` is a smoothing
followed by a derivative, so ``W_k`` is proportional to the slope of a low-passed ECG: its modulus
maxima mark the steepest slopes of a wave and its zero crossings the wave's peaks.

Two deliberate choices:

* The filters are applied in the frequency domain (one real FFT per lead, one inverse per scale),
  evaluated on physical frequency ``f`` as ``Q_k(2 pi f / 250)``. So the transform of a record at any
  rate (100-1000 Hz) equals that of the same ECG at 250 Hz: the thresholds of the delineator do not
  depend on the rate. Above 125 Hz (only present when fs > 250 Hz) the response is set to zero, as
  resampling the 250 Hz impulse responses would do.
* The linear-phase factors ``e^{jw/2}`` are dropped (zero-phase filters). With them, scale 2^k lags
  the signal by (2^k - 1)/2 samples at 250 Hz (30 ms at 2^4) and every scale needs its own
  correction; without them a zero crossing of any scale sits exactly on the signal's extremum.

Edges: each record is reflected by half a second on both sides before the (circular) FFT
convolution, so no wrap-around reaches the record. Long records are transformed in overlapping
chunks of 2^16 samples (the WTdelineator's recommended maximum), bounding memory.

Why not ``pywt.swt``: PyWavelets' stationary transform with the same filter bank (h = [1, 3, 3, 1] / 8,
g = [2, -2]) is the causal version of this one; its scale 2^k leads ours by 2^(k-1) - 1/2 samples.
The half sample is not an integer filter, so no shift of its output reproduces the zero-phase
scales (5-9 % of a scale's peak apart at 2^1 and 2^2 on the Challenge sample), and it works at the
sampling rate only, not at any rate. ``tests/test_wavelet.py`` checks that our responses are exactly
PyWavelets' with that linear phase removed, on an impulse and on real records.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import fft as spfft

DESIGN_FS = 250.0
SCALES: tuple[int, ...] = (1, 2, 3, 4, 5)
CHUNK = 2**16


def frequency_response(freqs_hz: np.ndarray, scale: int) -> np.ndarray:
    """Zero-phase response ``Q_k`` (purely imaginary) of scale 2^``scale`` at physical frequencies (Hz)."""
    if scale < 1:
        raise ValueError(f"wavelet scale must be >= 1, got {scale}")
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


def _transform_block(x: np.ndarray, fs: float, scales: tuple[int, ...], pad: int) -> np.ndarray:
    n = x.shape[-1]
    pad = min(pad, n - 1)
    padded = np.pad(x, ((0, 0), (pad, pad)), mode="reflect") if pad > 0 else x
    n_fft = spfft.next_fast_len(padded.shape[-1], real=True)
    spectrum = spfft.rfft(padded, n=n_fft, axis=-1, workers=1)
    product = spectrum[None, :, :] * _responses(n_fft, float(fs), scales)[:, None, :]
    out = spfft.irfft(product, n=n_fft, axis=-1, workers=1)
    return out[:, :, pad : pad + n]


def dyadic_wavelet_transform(x: np.ndarray, fs: float, scales: tuple[int, ...] = SCALES) -> np.ndarray:
    """W float32 (len(scales), L, N): the transform of ``x`` (L, N) or (N,) at scales 2^k, k in ``scales``.

    ``W[i]`` is the scale ``2**scales[i]``. Any rate; see the module docstring for the rate-independence.
    """
    x = np.asarray(x, dtype=np.float32)
    squeeze = x.ndim == 1
    x2 = x[None, :] if squeeze else x
    if x2.ndim != 2:
        raise ValueError(f"expected (leads, samples) or (samples,), got shape {x.shape}")
    if not 20.0 <= fs <= 20000.0:
        raise ValueError(f"sampling rate {fs} Hz is outside the supported range")
    scales = tuple(int(s) for s in scales)
    n = x2.shape[1]
    if n == 0:
        out = np.zeros((len(scales), x2.shape[0], 0), dtype=np.float32)
        return out[:, 0] if squeeze else out
    pad = int(round(0.5 * fs))
    if n <= CHUNK:
        out = _transform_block(x2, fs, scales, pad).astype(np.float32)
    else:
        out = np.empty((len(scales), x2.shape[0], n), dtype=np.float32)
        for start in range(0, n, CHUNK):
            lo, hi = max(0, start - pad), min(n, start + CHUNK + pad)
            block = _transform_block(x2[:, lo:hi], fs, scales, pad)
            stop = min(n, start + CHUNK)
            out[:, :, start:stop] = block[:, :, start - lo : stop - lo]
    return out[:, 0] if squeeze else out
