"""Quadratic-spline dyadic wavelet transform (Li et al. 1995; Martinez et al. 2004), computed by PyWavelets.

The à-trous filters of the design at 250 Hz are
``H(w) = e^{jw/2} cos^3(w/2)`` and ``G(w) = 4j e^{jw/2} sin(w/2)`` (pywt: h = [1, 3, 3, 1] / 8,
g = [2, -2]); the equivalent filter of scale 2^k is ``Q_1 = G(w)``, ``Q_k = G(2^{k-1} w)
prod_{l=0}^{k-2} H(2^l w)``. Each ``Q_k`` is a smoothing followed by a derivative, so ``W_k`` is
proportional to the slope of a low-passed ECG: its modulus maxima mark the steepest slopes of a wave
and its zero crossings the wave's peaks.

What the delineator's thresholds were tuned on, and what this module computes:

* zero-phase scales: ``Q_k`` without its linear phase. With it, scale 2^k lags the signal by
  (2^k - 1)/2 samples at 250 Hz (30 ms at 2^4); without it a zero crossing of any scale sits
  exactly on the signal's extremum;
* on physical frequency, ``Q_k(2 pi f / 250)``, nothing above 125 Hz: a record at any rate
  (100-1000 Hz) gives the scales of the same ECG at 250 Hz, so the thresholds do not depend on the rate;
* each block reflected by half a second on both sides and transformed circularly on the FFT length
  of that padded block (zero-filled to it); records longer than 2^16 samples in overlapping chunks.

Why PyWavelets works at 500 Hz (``250 * 2^j`` Hz in general), not at 250: ``pywt.swt`` is the causal
transform, and at 250 Hz its scale 2^k leads the zero-phase one by 2^(k-1) - 1/2 samples; half a
sample is no shift of its output. At 500 Hz, ``pywt.swt(..., start_level=1)`` dilates the filters
from the first step, which makes its scale 2^k exactly ``Q_k(2 pi f / 250)`` with a lead of
2^k - 1 whole samples. Sampling at 500 Hz and keeping every other output only ever reads the odd
500-Hz samples, i.e. the signal delayed by 2 ms at 250 Hz; so the signal is delayed by 2 ms
(the FFT's band-limited interpolation, exact here since the design passes nothing at or above
the 250-Hz Nyquist) and pywt runs at 250 Hz with ``start_level=0``, its scale 2^k then leading by
2^(k-1) - 1 whole samples. The FFT also does the rest of the definition: it cuts 125 Hz, resamples
other rates to the lowest ``250 * 2^j`` Hz that is a multiple of theirs (100 Hz works at 500, 1000
Hz at 1000) and keeps the padded block's FFT period, so each circular convolution wraps exactly
where the frequency-domain design's did. pywt's filtering is circular on its whole input, whose
length must be a multiple of 2^(levels + start_level): each lead contributes the stretch its kept
outputs read (the record and a margin longer than the longest filter and its lead, taken circularly
from the period) as one segment of a single row, so one call transforms every lead.
When the scale 2^1 is not asked for (the delineator reads 2^2 to 2^4), pywt's first step, whose
only other output is that scale's detail, is replaced by its approximation summed in numpy in pywt's
own order (bit for bit the same floats) and pywt starts one level higher; and the last step's
approximation, which no scale reads, is not computed: that step's detail, 2 x[n + d] - 2 x[n] of the
previous approximation, is summed here as pywt sums it (``tests/test_wavelet.py`` checks both are
pywt's floats exactly). pywt computes the steps between, half of its former work at 2^2-2^4.

Equality: ``tests/test_wavelet.py`` keeps the frequency-domain design this replaced and checks the two
agree within 1e-5 of each scale's peak (measured at most 2.8e-6 on every shared and LUDB record,
edges included), on impulses at 100-1000 Hz, on chunked long inputs, and that the delineation on top
is unchanged. A rate whose FFT period no ``250 * 2^j`` Hz holds in whole samples (257, 360 Hz) gets
a slightly longer period: there the 2^1 scale, cut sharply at 125 Hz, differs by up to 1 % of its
peak where the input reaches 125 Hz (the delineator reads 2^2 to 2^4, which agree).
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np
import pywt
from scipy import fft as spfft

DESIGN_FS = 250.0
SCALES: tuple[int, ...] = (1, 2, 3, 4, 5)
CHUNK = 2**16
#: The working rates are WORK_FS * 2^octave Hz: pywt's filters are the design's there (dilated by 2^octave).
WORK_FS = Fraction(250)
#: The input is delayed by this much (s) before pywt's causal filters, so each scale's lag is whole.
PRE_DELAY = 1.0 / 500.0

_LOW = np.array([1.0, 3.0, 3.0, 1.0]) / 8.0
_HIGH = np.array([0.0, 2.0, -2.0, 0.0])
#: pywt's bank order: decomposition low and high pass, then the reconstruction pair (their reverses).
QUADRATIC_SPLINE = pywt.Wavelet("quadratic_spline", filter_bank=[_LOW, _HIGH, _LOW[::-1], _HIGH[::-1]])


@lru_cache(maxsize=64)
def _plan(length: int, fs: float) -> tuple[int, int, int]:
    """(period at ``fs``, period at the working rate, its octave) for a padded block of ``length`` samples.

    The period is the FFT length the frequency-domain design used, so every circular convolution
    wraps where it did and the two agree to float precision, edges included. The working rate is
    the lowest ``WORK_FS * 2^octave`` that is a whole multiple of ``fs`` (100, 250, 500, 1000 Hz:
    the output is then every R-th working sample), else the lowest on which the period is a whole
    number of samples; a rate with neither (257 Hz) lengthens the period until it is, at 500 Hz.
    Above 250 Hz the working rate is at least 500 Hz, so a 125-Hz bin is not its Nyquist bin.
    """
    rate = Fraction(fs).limit_denominator(10_000)
    period = spfft.next_fast_len(length, real=True)
    lowest = 0 if rate <= WORK_FS else 1  # 125 Hz must stay below the working rate's Nyquist
    for octave in range(lowest, 4):
        if (WORK_FS * 2**octave / rate).denominator == 1:
            return period, period * int(WORK_FS * 2**octave / rate), octave
    for octave in range(lowest, 4):
        up = period * WORK_FS * 2**octave / rate
        if up.denominator == 1:
            return period, int(up), octave
    ratio = 2 * WORK_FS / rate
    period = -(-length // ratio.denominator) * ratio.denominator
    return period, period * ratio.numerator // ratio.denominator, 1


@lru_cache(maxsize=64)
def _to_work_rate(period: int, fs: float, work_len: int) -> np.ndarray:
    """Per-bin factor taking the ``period``-point spectrum at ``fs`` to the working rate's, delayed by PRE_DELAY.

    Only the bins the design passes: up to 125 Hz, the bin at exactly 125 Hz by the same float
    comparison the frequency-domain design made (so in or out as it was there), never fs's own
    Nyquist bin, where the purely imaginary responses leave nothing real.
    """
    freqs = spfft.rfftfreq(period, d=1.0 / fs)
    keep = min(int(np.count_nonzero(2.0 * np.pi * freqs / float(DESIGN_FS) <= np.pi)), (period + 1) // 2)
    factor = np.exp(-2j * np.pi * freqs[:keep] * PRE_DELAY) * (work_len / period)
    return factor.astype(np.complex64)


def _first_smoothing(row: np.ndarray, dilation: int) -> np.ndarray:
    """pywt's first approximation of ``row`` (circular, filters dilated by ``dilation``), bit for bit.

    The delineator reads the scales 2^2 and up, so the first step's detail (2^1) is wasted work in
    pywt; its approximation ``a[n] = sum_j h[j] x[n - dilation (j - 2)]`` is summed here in pywt's
    own order (j = 0 .. 3, float32), which gives its exact floats, and pywt continues from the
    second step (``start_level`` one higher).
    """
    n = row.size
    wrapped = np.concatenate([row[-dilation:], row, row[: 2 * dilation]])
    low = _LOW.astype(np.float32)
    out = low[0] * wrapped[3 * dilation : 3 * dilation + n]
    term = np.empty_like(out)
    for j in range(1, len(low)):
        start = dilation * (3 - j)
        np.multiply(low[j], wrapped[start : start + n], out=term)
        out += term
    return out


def _last_detail(approx: np.ndarray, dilation: int) -> np.ndarray:
    """pywt's detail of its next step from ``approx`` (circular, filters dilated by ``dilation``), bit for bit.

    The high pass [0, 2, -2, 0] gives ``d[n] = 2 x[n + dilation] - 2 x[n]``, pywt's floats (its zero
    taps add nothing), without the step's approximation, which nothing reads after the last scale.
    """
    ahead = np.concatenate([approx[dilation:], approx[:dilation]])
    ahead *= np.float32(2.0)
    ahead += np.float32(-2.0) * approx
    return ahead


def _transform_block(x: np.ndarray, fs: float, scales: tuple[int, ...], pad: int) -> np.ndarray:
    num_leads, n = x.shape
    pad = min(pad, n - 1)
    # np.pad's reflection, as two reversed slices (np.pad costs more than the copy here)
    padded = (
        np.concatenate(
            [x[:, pad:0:-1], x, x[:, n - 2 : n - 2 - pad : -1] if n - 2 - pad >= 0 else x[:, n - 2 :: -1]], axis=1
        )
        if pad > 0
        else x
    )
    period, work_len, octave = _plan(padded.shape[-1], float(fs))
    factor = _to_work_rate(period, float(fs), work_len)
    spectrum = spfft.rfft(padded, n=period, axis=-1, workers=1)
    work = np.zeros((num_leads, work_len // 2 + 1), dtype=np.complex64)
    work[:, : factor.size] = spectrum[:, : factor.size] * factor
    y = spfft.irfft(work, n=work_len, axis=-1, workers=1)
    # pywt's filters are circular on their whole input, whose length must be a multiple of
    # 2^(levels + start_level): each lead contributes one segment of a single row, the stretch its kept
    # outputs read (the record and more than the longest filter and its lag either side, taken
    # circularly from the period), so one call does every lead and no seam reaches a kept output.
    top = max(scales)
    step = work_len // period if work_len % period == 0 else 0
    margin = 2 ** (top + 2 + octave)
    unit = 2 ** (top + octave)
    first, stop = (pad * step - margin, (pad + n) * step + margin) if step else (-margin, work_len + margin)
    segment = -(-(stop - first) // unit) * unit
    if first >= 0 and first + segment <= work_len:
        row = y[:, first : first + segment].ravel()
    else:
        row = y[:, np.arange(first, first + segment) % work_len].ravel()
    skip = 1 if min(scales) >= 2 else 0  # pywt's first step, whose detail is the unread 2^1, done here
    if skip:
        row = _first_smoothing(row, 2**octave)
    if top - skip >= 2:  # the last step's approximation is never read: its detail alone, here
        steps = pywt.swt(row, QUADRATIC_SPLINE, level=top - skip - 1, start_level=octave + skip, norm=False)
        details = [_last_detail(steps[0][0], 2 ** (octave + top - 1))] + [detail for _, detail in steps]
    else:
        details = pywt.swt(
            row, QUADRATIC_SPLINE, level=top - skip, start_level=octave + skip, trim_approx=True, norm=False
        )[1:]
    out = np.empty((len(scales), num_leads, n), dtype=np.float32)
    for i, scale in enumerate(scales):
        detail = details[top - scale].reshape(num_leads, segment)
        lag = 2**octave * (2 ** (scale - 1) - 1) + first  # the causal filter's lead left after the delay
        if step:
            out[i] = detail[:, pad * step - lag : (pad + n) * step - lag : step]
        else:
            spectrum = spfft.rfft(detail[:, -lag : work_len - lag], axis=-1, workers=1)
            back = spectrum[:, : period // 2 + 1] * np.float32(period / work_len)
            out[i] = spfft.irfft(back, n=period, axis=-1, workers=1)[:, pad : pad + n]
    return out


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
    if not scales or min(scales) < 1:
        raise ValueError(f"wavelet scales must be >= 1, got {scales}")
    n = x2.shape[1]
    if n == 0:
        out = np.zeros((len(scales), x2.shape[0], 0), dtype=np.float32)
        return out[:, 0] if squeeze else out
    pad = int(round(0.5 * fs))
    if n <= CHUNK:
        out = _transform_block(x2, fs, scales, pad)
    else:
        out = np.empty((len(scales), x2.shape[0], n), dtype=np.float32)
        for start in range(0, n, CHUNK):
            lo, hi = max(0, start - pad), min(n, start + CHUNK + pad)
            block = _transform_block(x2[:, lo:hi], fs, scales, pad)
            stop = min(n, start + CHUNK)
            out[:, :, start:stop] = block[:, :, start - lo : stop - lo]
    return out[:, 0] if squeeze else out
