"""Beat detection: one fused R peak per heartbeat from multi-lead wavelet slopes (after Martinez et al. 2004).

Input: leads x samples, band-passed, and its quadratic-spline wavelet scales (W_k at scale 2^k,
:mod:`ecgsignal.wavelet`); every duration is in ms, so the rules are rate-independent. The wave
boundaries of each beat are found afterwards by :mod:`ecgsignal.waves`.

**R peaks, voted.** Per lead, candidates are peaks of |W_3| above 0.35 x the median of the
2-s segment maxima within two segments either side (a robust, local "typical QRS" height that
follows the amplitude changes of a long record; silent segments, e.g. zero padding, excluded),
at least 250 ms apart (HR <= 240 bpm),
and above 6 x the median |W_3| of their second of signal (the noise floor: broadband noise lifts it,
its own peaks pass the first threshold), that demand capped at 0.7 x the typical height; each
moved to the largest deflection of the signal within +-60 ms. Candidates of all usable leads are
pooled and chained (gaps <= 100 ms); a chain supported by >= half of the usable leads is a beat,
its fused R the (lower) median of its lead positions. Beats closer than 200 ms keep the better
supported one. (Martinez detects on W_4 with RMS thresholds; W_3 with a segment-max threshold
separates QRS from tall T waves better and adapts to any gain.) With few leads the vote cannot
outvote a tall T wave seen in one lead, so a beat within 450 ms of a neighbour that is weaker
(|W_3|), smaller (peak-to-peak) and less steep (|W_2| / |W_4|) than it is dropped as its T or P
wave (after Pan and Tompkins' T-wave rule).
"""

from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks

from ecgsignal.order_stats import nan_median
from ecgsignal.sample_windows import median_last, neighbourhoods, take, to_samples

#: A beat within SLOW_WAVE_MS of its neighbour, with under SLOW_STRENGTH of its slope strength, SLOW_AMPLITUDE
#: of its peak-to-peak amplitude (a PVC is broad but large) and SLOW_STEEP of its steepness, is the
#: neighbour's T (or P) wave, not a beat. Tuned on two-lead pairs of the even LUDB records and checked
#: against the 12-lead beats of the 378 real shared records seen through leads I and II only.
SLOW_WAVE_MS, SLOW_STRENGTH, SLOW_AMPLITUDE, SLOW_STEEP = 450.0, 0.6, 0.8, 0.9
#: Noise gate: an R candidate's |W_3| must also reach NOISE_GATE times the median |W_3| of its second of
#: signal (broadband noise lifts that median, a clean lead's stays near zero), a demand capped at NOISE_CAP
#: of the lead's typical QRS slope so that wide beats filling a whole second (ventricular tachycardia) pass.
#: Tuned on two-lead pairs of the even LUDB records with synthetic muscle and electrode-motion noise.
NOISE_GATE, NOISE_CAP = 6.0, 0.7
#: The typical QRS height is taken over this many 2-s segments either side of each one (ten-second
#: records: the whole record, as before). Tuned on the even LUDB records joined into a long record.
LOCAL_SEGMENTS = 2


def _lead_candidates(x: np.ndarray, w3: np.ndarray, fs: float, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-lead R candidates: (positions, lead index), pooled over the active leads."""
    energy = np.abs(w3)
    num_leads, n = energy.shape
    segment = int(2.0 * fs)
    count = n // segment
    if count >= 2:
        maxima = energy[:, : count * segment].reshape(num_leads, count, segment).max(axis=2)
        # segments without activity (zero padding, a lead cut off) must not pull the median down
        alive = maxima >= 0.01 * np.percentile(maxima, 90, axis=1, keepdims=True)
        reference = nan_median(maxima, alive).astype(maxima.dtype)  # float32 as np.nanmedian gave it
        reference = np.nan_to_num(reference, nan=0.0)
        local = _local_reference(maxima, alive, segment, n)
    else:
        reference = energy.max(axis=1)
        local = np.repeat(reference[:, None], n, axis=1)
    distance, second = to_samples(250, fs), max(1, int(fs))
    floor = _noise_floor(energy, second)
    searched = np.flatnonzero(active & (reference > 0))
    if searched.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    peaks, lead_of = _peaks_per_lead(energy[searched], 0.35 * local[searched], distance)
    lead_of = searched[lead_of]
    demand = np.minimum(NOISE_GATE * floor[lead_of, peaks // second], NOISE_CAP * local[lead_of, peaks])
    keep = energy[lead_of, peaks] >= demand
    pos, lead_of = peaks[keep].astype(np.int64), lead_of[keep].astype(np.int64)
    half = to_samples(60, fs)
    window = pos[:, None] + np.arange(-half, half + 1)
    segment_values = x[lead_of[:, None], np.clip(window, 0, n - 1)]
    deflection = segment_values - segment_values.mean(axis=1, keepdims=True)
    deflection[(window < 0) | (window >= n)] = -np.inf
    pos = np.clip(window[np.arange(len(pos)), deflection.argmax(axis=1)], 0, n - 1)
    return pos, lead_of


def _peaks_per_lead(energy: np.ndarray, height: np.ndarray, distance: int) -> tuple[np.ndarray, np.ndarray]:
    """``find_peaks(energy[i], height=height[i], distance=distance)`` for every row i, in one call: (peaks, row).

    A call costs ~0.15 ms whatever the row, a tenth of a record's delineation for twelve leads. The
    rows are laid end to end, each followed by ``distance`` samples of +inf whose height demand is
    NaN: the +inf plateau is a peak that fails its height (so is gone before the distance rule),
    neither neighbouring edge sample can be a peak (as a row's ends cannot), and rows are more than
    ``distance`` apart, so no peak of one row suppresses a peak of another.
    """
    num_rows, n = energy.shape
    stride = n + distance
    row = np.full((num_rows, stride), np.inf, dtype=np.float64)
    row[:, :n] = energy
    demand = np.full((num_rows, stride), np.nan, dtype=height.dtype)
    demand[:, :n] = height
    peaks, _ = find_peaks(
        row.ravel()[: num_rows * stride - distance],
        height=demand.ravel()[: num_rows * stride - distance],
        distance=distance,
    )
    return peaks % stride, peaks // stride


def _local_reference(maxima: np.ndarray, alive: np.ndarray, segment: int, n: int) -> np.ndarray:
    """(L, n) per sample, the typical QRS height near it: the median of the live 2-s segment maxima
    within :data:`LOCAL_SEGMENTS` segments either side (the whole record when it is that short).

    On a long ambulatory record the QRS amplitude changes over minutes (posture, electrode contact,
    another rhythm); one reference for the whole minute-long block missed a stretch of small beats
    among tall ones (the joined-records stress benchmark, ``benchmarks/bench_qrs_long.py``).
    """
    count = maxima.shape[1]
    half = LOCAL_SEGMENTS
    windows = neighbourhoods(np.where(alive, maxima, np.nan), half)  # (L, count, 2H+1)
    local = np.nan_to_num(nan_median(windows, np.isfinite(windows)), nan=0.0).astype(maxima.dtype)
    per_sample = np.repeat(local, segment, axis=1)
    tail = n - count * segment
    return np.concatenate([per_sample, np.repeat(local[:, -1:], tail, axis=1)], axis=1)


def _noise_floor(energy: np.ndarray, second: int) -> np.ndarray:
    """Median of ``energy`` (L, N) over each whole ``second`` samples (the last, partial one too): (L, ceil(N / second)).

    A median, not a mean or a maximum: a QRS fills a tenth of a normal second, so the floor reads the
    signal between the beats, which is what noise raises.
    """
    num_leads, n = energy.shape
    whole = n // second
    parts = [median_last(energy[:, : whole * second].reshape(num_leads, whole, second))] if whole else []
    if n > whole * second:
        parts.append(median_last(energy[:, whole * second :])[:, None])
    return np.concatenate(parts, axis=1)


def _vote(pos: np.ndarray, lead_of: np.ndarray, num_active: int, num_leads: int, fs: float) -> np.ndarray:
    """Fuse per-lead candidates into beats supported by >= half of the active leads."""
    if pos.size == 0:
        return np.zeros(0, np.int64)
    order = np.argsort(pos, kind="stable")
    pos, lead_of = pos[order], lead_of[order]
    cluster = np.concatenate([[0], np.cumsum(np.diff(pos) > to_samples(100, fs))])
    pairs = np.unique(cluster * num_leads + lead_of)
    support = np.bincount(pairs // num_leads, minlength=cluster[-1] + 1)
    starts = np.searchsorted(cluster, np.arange(cluster[-1] + 1))
    sizes = np.bincount(cluster)
    fused = pos[starts + (sizes - 1) // 2]
    keep = support >= max(1, int(np.ceil(0.5 * num_active)))
    fused, support = fused[keep], support[keep]
    refractory = to_samples(200, fs)
    while fused.size > 1:
        close = np.flatnonzero(np.diff(fused) < refractory)
        if close.size == 0:
            break
        drop = np.where(support[close] >= support[close + 1], close + 1, close)
        keep = np.ones(fused.size, dtype=bool)
        keep[drop] = False
        fused, support = fused[keep], support[keep]
    return fused.astype(np.int64)


def detect_r_peaks(x: np.ndarray, w3: np.ndarray, fs: float, active: np.ndarray) -> np.ndarray:
    """Fused R peaks (B,) from per-lead |W_3| candidates voted across the active leads."""
    pos, lead_of = _lead_candidates(x, w3, fs, active)
    return _vote(pos, lead_of, int(active.sum()), x.shape[0], fs)


def _beat_measures(
    x: np.ndarray, r: np.ndarray, w2: np.ndarray, w3: np.ndarray, w4: np.ndarray, fs: float, active: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per beat (B,), each in units of the lead's median over the beats and averaged over the active
    leads: slope strength (max |W_3| within +-60 ms) and amplitude (peak-to-peak of the signal there);
    and its steepness (max |W_2| / max |W_4|, median over the active leads)."""
    leads = np.flatnonzero(active)
    half = to_samples(60, fs)
    window = (r[:, None] + np.arange(-half, half + 1))[None]  # (1, B, K): take broadcasts it over the leads

    def around(values: np.ndarray) -> np.ndarray:  # (active leads, B, K)
        return take(values if leads.size == values.shape[0] else values[leads], window)

    m3 = np.abs(around(w3)).max(axis=2)
    steep = np.abs(around(w2)).max(axis=2) / np.maximum(np.abs(around(w4)).max(axis=2), 1e-12)
    piece = around(x)
    span = piece.max(axis=2) - piece.min(axis=2)

    def relative(m: np.ndarray) -> np.ndarray:
        return (m / np.maximum(median_last(m)[:, None], 1e-12)).mean(axis=0)

    return relative(m3), relative(span), median_last(steep.T)


def reject_slow_waves(
    x: np.ndarray, r: np.ndarray, w2: np.ndarray, w3: np.ndarray, w4: np.ndarray, fs: float, active: np.ndarray
) -> np.ndarray:
    """Drop beats that are a neighbouring QRS's T (or P) wave: close to it, weaker, smaller and less steep.

    With few leads the vote cannot outvote a tall T wave seen in one lead (two-lead LUDB records
    had one false beat in 30 to 60). After Pan and Tompkins' T-wave rule (an interval under 360 ms
    and under half the previous QRS's slope), with two more conditions: a T or P wave is broad, so
    its |W_2| is small against its |W_4|, where a QRS's is not; and it is smaller than its QRS,
    where a premature ventricular beat, also broad and often weaker in |W_3|, is as large.
    """
    if r.size < 2 or not active.any():
        return r
    strength, amplitude, steep = _beat_measures(x, r, w2, w3, w4, fs, active)
    keep = np.ones(r.size, dtype=bool)
    for _ in range(2):
        index = np.flatnonzero(keep)
        a, b = index[:-1], index[1:]
        close = (r[b] - r[a]) < to_samples(SLOW_WAVE_MS, fs)
        b_slow = close & _slower(b, a, strength, amplitude, steep)
        a_slow = close & _slower(a, b, strength, amplitude, steep)
        drop = np.concatenate([a[a_slow & ~b_slow], b[b_slow]])
        if drop.size == 0:
            break
        keep[drop] = False
    return r[keep]


def _slower(i: np.ndarray, j: np.ndarray, strength: np.ndarray, amplitude: np.ndarray, steep: np.ndarray) -> np.ndarray:
    """Whether beats ``i`` are weaker, smaller and less steep than beats ``j``: their T or P waves."""
    return (
        (strength[i] < SLOW_STRENGTH * strength[j])
        & (amplitude[i] < SLOW_AMPLITUDE * amplitude[j])
        & (steep[i] < SLOW_STEEP * steep[j])
    )


__all__ = ["NOISE_CAP", "NOISE_GATE", "detect_r_peaks", "reject_slow_waves"]
