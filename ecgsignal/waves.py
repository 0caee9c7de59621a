"""Wave delineation: per beat and lead, the onset, peak and offset of P, QRS and T (after Martinez et al. 2004).

Input: the band-passed leads x samples, its wavelet scales W_2 and W_4 (:mod:`ecgsignal.wavelet`)
and the fused R peaks of :mod:`ecgsignal.beats`. Output: the (B, L, 11) points of
:data:`WAVE_POINTS` as sample indices, ``-1`` where a wave is absent. Every duration is in ms.

1. **QRS per lead (W_2).** The main modulus maximum line (MML) is the largest |W_2| within R +-65 ms.
   Significant MMLs: local maxima of |W_2| above 10 % (before) / 9 % (after) of it, within 100 ms
   before / 150 ms after it, reached from it in hops of <= 60 ms (the ST segment stops the chain, so
   a steep T upslope is not read as QRS). A paced beat (a pacemaker stimulus, found on the
   raw signal by :mod:`ecgsignal.pacing`, at most 200 ms before its R, in at least half the beats)
   has its QRS searched only from 8 ms after the stimulus: cardiologists start a paced complex after
   the stimulus, and the filtered stimulus otherwise looks like the QRS onset. Onset: from the first
   significant MML back (<= 50 ms) to where |W_2| drops below 3 % (positive MML) / 4 % (negative) of that MML, or to a local minimum of |W_2|;
   offset likewise forward (<= 60 ms) with 30 % / 20 % (the J point, after a deep S too). Q, R, S: within [onset, offset], R is the
   signal's maximum (present when it is not at a boundary and rises 5 % of the complex's
   peak-to-peak above the onset level), Q / S the minima before / after R (present when interior and
   3 % of peak-to-peak below the onset / offset level). Without an R (QS complex), the minimum is
   reported as Q. A beat whose |W_2| in a lead is below 10 % of that lead's median is absent there.
2. **T per lead (W_4)**, searched from QRS offset + 20 ms to R + min(0.7 RR, 600 ms): the largest
   interior MML (above 12 % of the lead's RMS of W_4) and an opposite-sign MML above 12.5 % of it
   bound the wave: the nearest one, unless the nearest on the other side bounds a lobe 1.5 times
   deeper (deviation of the signal from the chord between the two MMLs), so a biphasic T reports
   its dominant phase and the dip between a T and a U wave is not read as the T. The peak is the
   signal's extremum between them (maximum when the wave rises first, minimum for an inverted T).
   Onset: back (<= 100 ms) until |W_4| < 33 % of the first MML or a local minimum; offset: forward
   (<= 150 ms) until |W_4| < 50 % of the second MML or a local minimum (Martinez's threshold rule on
   the last MML). Lead agreement: a lead without a T in a beat where half the leads have one is
   searched again, at 30 % of the threshold, between the other leads' median T onset and offset
   widened by 40 ms (a low T wave is still there when the other leads see one).
3. **P per lead (W_4)**, searched from max(QRS onset - 280 ms, previous R + 200 ms, previous T
   offset) to QRS onset - 20 ms, with the same two-MML rule; both MMLs must exceed 5 % of the lead's
   RMS of W_4 and 30 % of each other, the wave must last 40-200 ms and end before the QRS onset;
   onset / offset where |W_4| falls below 70 % / 80 % of the MML. Then the rhythm decides: a beat keeps
   its P waves only where a quarter of the leads found one, and where the PR interval (to the
   middle of the two MMLs, steadier than the noisy extremum of a small P) is stable over the 9
   neighbouring beats (median absolute deviation of the multi-lead PR <= 10 ms, 6 ms
   where the RR intervals are irregular); a lead whose PR is 45 ms off the beat's loses its P.
   Atrial fibrillation's f waves, found anywhere in the window, so give no P.
4. **Multi-lead fusion.** Cardiologists mark a wave's boundaries nearly alike in every lead
   (LUDB: 8 ms SD across leads for QRS onset), so each lead's QRS onset / offset is pulled to
   within 10 ms, and its P and T points to within 20 ms, of the beat's median over the leads.

The thresholds are module constants, tuned on the even-numbered LUDB records only
(``benchmarks/bench_ludb.py --split even``); the README reports the odd-numbered ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecgsignal.order_stats import nan_median
from ecgsignal.sample_windows import local_maxima, median_last, neighbourhoods, pick, take, take_both, to_samples, walk

WAVE_POINTS: tuple[str, ...] = (
    "P_on",
    "P_peak",
    "P_off",
    "QRS_on",
    "Q",
    "R",
    "S",
    "QRS_off",
    "T_on",
    "T_peak",
    "T_off",
)
P_ON, P_PEAK, P_OFF, QRS_ON, Q_PEAK, R_PEAK, S_PEAK, QRS_OFF, T_ON, T_PEAK, T_OFF = range(len(WAVE_POINTS))


@dataclass(frozen=True)
class Wave:
    """One wave's (onset, peak, offset) columns of :attr:`Delineation.points`.

    The one place that says which columns belong together: fiducial channels, plots and the
    delineation CSV all read the waves from :data:`WAVES` instead of repeating column numbers.
    """

    name: str
    onset: int
    peak: int
    offset: int

    @property
    def columns(self) -> tuple[int, int, int]:
        return self.onset, self.peak, self.offset


#: The three waves in time order; the QRS peak is the R point.
WAVES: tuple[Wave, ...] = (
    Wave("P", P_ON, P_PEAK, P_OFF),
    Wave("QRS", QRS_ON, R_PEAK, QRS_OFF),
    Wave("T", T_ON, T_PEAK, T_OFF),
)

# Thresholds of the QRS, P and T rules (fractions; see the module docstring). Tuned on the even-numbered
# LUDB records only (benchmarks/bench_ludb.py --split even); the odd ones are held out for reporting.
P_EPS, P_BALANCE, P_ON_RATIO, P_OFF_RATIO = 0.05, 0.3, 0.7, 0.8
P_VOTE = 0.25  # a beat keeps its P waves only where at least this share of the active leads found one
P_RHYTHM_BEATS = 9  # neighbourhood (beats) over which the PR interval must be stable for P waves to count
P_PR_SPREAD_MS = 10.0  # P waves dropped where the PR interval varies more than this (f waves in AF)
P_IRREGULAR_RR = 0.1  # where successive RR differ by more than this share (local median), the PR rule tightens
P_IRREGULAR_SPREAD_MS = 6.0  # ... to this spread
P_PR_LEAD_MS = 45.0  # a lead's P dropped when its PR differs this much from the beat's multi-lead PR
QRS_BEFORE, QRS_AFTER = 0.1, 0.09  # significant MMLs before / after the main one (share of it)
QRS_ON_RATIOS = (0.03, 0.04)  # onset walk stops below this share of the first MML (positive, negative)
QRS_OFF_RATIOS = (0.3, 0.2)  # offset walk likewise from the last MML
QRS_HOP_MS = 60.0  # longest hop (ms) between a QRS's successive slopes
#: Multi-lead fusion: a lead's point further than this (ms) from the beat's median over the leads is
#: pulled to that distance (cardiologists mark the wave boundaries nearly alike in every lead).
FUSE_LIMIT_MS: dict[int, float] = {QRS_ON: 10.0, QRS_OFF: 10.0}
FUSE_LIMIT_MS.update(dict.fromkeys((P_ON, P_PEAK, P_OFF, T_ON, T_PEAK, T_OFF), 20.0))
T_EPS, T_GAMMA, T_ON_RATIO, T_OFF_RATIO = 0.12, 0.125, 0.33, 0.5
T_LOBE_RATIO = 1.5  # ... the farther one only when its lobe is this many times deeper
T_RESCUE_SHARE, T_RESCUE_EPS, T_RESCUE_MS = 0.5, 0.3, 40.0  # lead agreement (see _rescue_t)
T_LARGER_LOBE = True  # the T partner MML by lobe size, not by distance (see _two_mml_wave)
#: Paced beats: a pacemaker stimulus (:mod:`ecgsignal.pacing`) at most this long (ms) before a beat's R
#: belongs to it, and the QRS starts no earlier than this long (ms) after the stimulus ...
PACE_BEFORE_MS, PACE_GUARD_MS = 200.0, 8.0
#: ... when at least this share of the beats have one (else the spikes are noise, not pacing).
PACE_SHARE = 0.5


def paced_onsets(r: np.ndarray, spikes: np.ndarray, fs: float) -> np.ndarray:
    """Per beat (B,), the earliest sample its QRS may start at: just after the pacemaker stimulus
    that precedes it, ``-1`` for an unpaced beat (or when too few beats have a stimulus: noise)."""
    floor = np.full(r.shape, -1, dtype=np.int64)
    spikes = np.asarray(spikes, dtype=np.int64)
    if spikes.size == 0 or r.size == 0:
        return floor
    before = np.searchsorted(spikes, r, side="right") - 1
    stimulus = spikes[np.maximum(before, 0)]
    paced = (before >= 0) & (r - stimulus <= to_samples(PACE_BEFORE_MS, fs))
    if paced.mean() < PACE_SHARE:
        return floor
    return np.where(paced, np.minimum(stimulus + to_samples(PACE_GUARD_MS, fs), r), -1)


def delineate_qrs(
    x: np.ndarray,
    w2: np.ndarray,
    r: np.ndarray,
    fs: float,
    active: np.ndarray,
    points: np.ndarray,
    floor: np.ndarray,
) -> None:
    num_leads, n = x.shape
    offsets = np.arange(-to_samples(170, fs), to_samples(220, fs) + 1)
    window = r[None, :, None] + offsets  # (1, B, K): the same for every lead, broadcast where it meets (L, B, K)
    valid = (window >= 0) & (window < n)
    abs2 = np.abs(w2)
    a2 = np.where(valid, take(abs2, window), 0.0)
    allowed = window >= floor[None, :, None]  # a paced beat's QRS is what follows its stimulus
    core = (np.abs(offsets) <= to_samples(65, fs)) & allowed
    peak_k = np.argmax(np.where(core, a2, -1.0), axis=-1)
    peak = pick(a2, peak_k)
    typical = median_last(peak)[:, None]  # np.median's value (same middle pair, same float32 mean), less overhead
    present = active[:, None] & (peak > 0.1 * typical) & (peak > 0)

    k = np.arange(offsets.size)
    lm = local_maxima(a2, valid)
    lm[np.arange(num_leads)[:, None], np.arange(r.size)[None, :], peak_k] = True
    before = lm & (a2 > QRS_BEFORE * peak[..., None]) & (k >= peak_k[..., None] - to_samples(100, fs)) & allowed
    after = lm & (a2 > QRS_AFTER * peak[..., None]) & (k <= peak_k[..., None] + to_samples(150, fs))
    first_k, last_k = _chain(before, after, peak_k, to_samples(QRS_HOP_MS, fs))
    first = r[None, :] + offsets[first_k]  # window[lead, beat, k] is r[beat] + offsets[k]
    last = r[None, :] + offsets[last_k]

    on_ratio = np.where(take(w2, first) > 0, *QRS_ON_RATIOS)
    off_ratio = np.where(take(w2, last) > 0, *QRS_OFF_RATIOS)
    onset = np.clip(np.maximum(walk(abs2, first, -1, on_ratio, to_samples(50, fs)), floor[None, :]), 0, n - 1)
    offset = np.clip(walk(abs2, last, +1, off_ratio, to_samples(60, fs)), 0, n - 1)
    _qrs_peaks(x, onset, offset, present, points, fs)


def _chain(before: np.ndarray, after: np.ndarray, centre: np.ndarray, gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Outermost significant MMLs reachable from ``centre`` in hops of at most ``gap`` samples.

    A QRS is a run of closely spaced slopes; requiring each hop to be short stops the search at
    the ST segment, so a steep T upslope (tall T in V2-V4) is not taken for part of the QRS.
    """
    width = before.shape[-1]
    k = np.arange(width)
    first, last = centre.copy(), centre.copy()
    head, tail = first.reshape(-1), last.reshape(-1)  # views: writing them moves first and last
    before, after = before.reshape(-1, width), after.reshape(-1, width)
    # only a row whose end moved can move again: later rounds look at those rows alone
    moving_before: np.ndarray | None = None
    moving_after: np.ndarray | None = None
    for _ in range(4):
        if moving_before is None or moving_before.size:
            at = head if moving_before is None else head[moving_before]
            rows = before if moving_before is None else before[moving_before]
            reach = rows & (k < at[:, None]) & (k >= at[:, None] - gap)
            hop = reach.any(-1)
            moving_before = np.flatnonzero(hop) if moving_before is None else moving_before[hop]
            head[moving_before] = np.argmax(reach[hop], axis=-1)
        if moving_after is None or moving_after.size:
            at = tail if moving_after is None else tail[moving_after]
            rows = after if moving_after is None else after[moving_after]
            reach = rows & (k > at[:, None]) & (k <= at[:, None] + gap)
            hop = reach.any(-1)
            moving_after = np.flatnonzero(hop) if moving_after is None else moving_after[hop]
            tail[moving_after] = width - 1 - np.argmax(reach[hop][:, ::-1], axis=-1)
        if not (moving_before.size or moving_after.size):  # no end moved: the next rounds would change nothing
            break
    return first, last


def _qrs_peaks(
    x: np.ndarray, onset: np.ndarray, offset: np.ndarray, present: np.ndarray, points: np.ndarray, fs: float
) -> None:
    """Q, R, S from the signal inside [onset, offset]; writes the QRS columns of ``points`` (B, L, 11)."""
    span = np.arange(to_samples(400, fs) + 1)
    window = onset[..., None] + span
    inside = window <= offset[..., None]
    xs = take(x, window)  # finite (delineate replaces non-finite samples): no NaN-aware reductions needed
    above, below = np.where(inside, xs, np.inf), np.where(inside, xs, -np.inf)
    qs_k, r_k = np.argmin(above, axis=-1), np.argmax(below, axis=-1)
    lo, hi = pick(above, qs_k), pick(below, r_k)  # the extremes are the values at their first index
    p2p = hi - lo
    length = offset - onset
    level_on = np.where(inside[..., 0], xs[..., 0], np.nan)
    level_off = take(x, offset)
    r_ok = present & (r_k > 0) & (r_k < length) & (hi - level_on > 0.05 * p2p) & (p2p > 0)
    before_r = inside & (span < r_k[..., None])
    after_r = inside & (span > r_k[..., None])
    q_k = np.argmin(np.where(before_r, xs, np.inf), axis=-1)
    q_val = pick(xs, q_k)
    q_ok = r_ok & (q_k > 0) & (q_val < level_on - 0.03 * p2p)
    s_k = np.argmin(np.where(after_r, xs, np.inf), axis=-1)
    s_val = pick(xs, s_k)
    s_ok = r_ok & (s_k > r_k) & (s_k < length) & (s_val < level_off - 0.03 * p2p)
    qs_ok = present & ~r_ok & (qs_k > 0) & (qs_k < length) & (p2p > 0)

    valid = present & (length >= 2)
    cols = {
        QRS_ON: (onset, valid),
        QRS_OFF: (offset, valid),
        R_PEAK: (onset + r_k, r_ok & valid),
        S_PEAK: (onset + s_k, s_ok & valid),
        Q_PEAK: (onset + np.where(r_ok, q_k, qs_k), (q_ok | qs_ok) & valid),
    }
    for col, (where, ok) in cols.items():
        points[:, :, col] = np.where(ok, where, -1).T


# --------------------------------------------------------------------------- P and T


def _two_mml_wave(
    x: np.ndarray,
    w4: np.ndarray,
    start: np.ndarray,
    stop: np.ndarray,
    eps: np.ndarray,
    gamma: float,
    balance: float,
    larger_lobe: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A wave bounded by two opposite-sign MMLs of W_4 inside [start, stop] (L, B).

    The first MML is the largest; its partner the nearest opposite-sign MML, or with ``larger_lobe``
    whichever of the nearest before and the nearest after bounds the larger lobe of the signal
    (deviation from the chord between the two MMLs): a biphasic wave reports its dominant phase and
    the trough between a T and a U wave is not taken for the T.
    Returns (first MML, second MML, peak, present, rising-first) as (L, B) arrays.
    """
    n = x.shape[1]
    width = max(3, int((stop - start).max(initial=0)) + 1)
    k = np.arange(width)
    window = start[..., None] + k
    # window <= stop, >= 0 and < n, as two bounds on k per row (two window-sized tests, not three)
    valid = (k >= np.maximum(-start, 0)[..., None]) & (k <= (np.minimum(stop, n - 1) - start)[..., None])
    w_at, xs = take_both(w4, x, window)
    w = np.where(valid, w_at, 0.0)
    a = np.abs(w)
    lm = local_maxima(a, valid) & (a > eps[:, None, None])
    m1 = np.argmax(np.where(lm, a, -1.0), axis=-1)
    a1 = pick(a, m1)
    s1 = np.sign(pick(w, m1))
    # opposite sign: w s1 < 0 (where s1 is 0, a1 is 0 and no MML exceeds it, as with sign(w) == -s1)
    partner = lm & (w * s1[..., None] < 0) & (a > np.maximum(gamma, balance) * a1[..., None])
    present = lm.any(axis=-1) & partner.any(axis=-1)
    if larger_lobe:
        before = partner & (k < m1[..., None])
        after = partner & (k > m1[..., None])
        m_before = width - 1 - np.argmax(before[..., ::-1], axis=-1)
        m_after = np.argmax(after, axis=-1)
        has_after, has_before = after.any(-1), before.any(-1)
        use_after = has_after & ~has_before
        both = has_after & has_before  # only there is there a choice: the lobes are measured there only
        xs_both, m1_both, s1_both = xs[both], m1[both], s1[both]
        depth_before = _lobe(xs_both, m_before[both], m1_both, -s1_both)[1]
        depth_after = _lobe(xs_both, m1_both, m_after[both], s1_both)[1]
        after_nearer = (m_after[both] - m1[both]) < (m1[both] - m_before[both])
        ratio = np.where(after_nearer, 1.0 / T_LOBE_RATIO, T_LOBE_RATIO)
        use_after[both] = depth_after > ratio * depth_before
        m2 = np.where(use_after, m_after, m_before)
    else:
        m2 = np.argmin(np.where(partner, np.abs(k - m1[..., None]), width + 1), axis=-1)
    lo_k, hi_k = np.minimum(m1, m2), np.maximum(m1, m2)
    rising = pick(w, lo_k) > 0
    between = (k > lo_k[..., None]) & (k < hi_k[..., None])
    signed = np.where(rising[..., None], xs, -xs)
    peak_k = np.argmax(np.where(between, signed, -np.inf), axis=-1)
    present &= (hi_k - lo_k) >= 2
    return start + lo_k, start + hi_k, start + peak_k, present, rising


def _lobe(xs: np.ndarray, lo: np.ndarray, hi: np.ndarray, sign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index, depth) of the lobe of ``xs`` (L, B, K) between window indices ``lo`` < ``hi`` (L, B):
    the largest deviation from the chord joining xs[lo] and xs[hi], in the direction ``sign`` (+1 a
    hump, -1 a dip). Depth -inf where the span is empty."""
    k = np.arange(xs.shape[-1])
    x_lo = pick(xs, lo)[..., None]
    x_hi = pick(xs, hi)[..., None]
    span = np.maximum(hi - lo, 1)[..., None]
    chord = x_lo + (x_hi - x_lo) * (k - lo[..., None]) / span
    inside = (k > lo[..., None]) & (k < hi[..., None])
    deviation = np.where(inside, sign[..., None] * (xs - chord), -np.inf)
    return np.argmax(deviation, axis=-1), deviation.max(axis=-1)  # the value at the argmax, NaN or -inf alike


def _rr(r: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """(RR to the next beat, RR from the previous beat) in samples, with sensible stand-ins at the ends."""
    if r.size >= 2:
        rr = np.diff(r)
        following = np.concatenate([rr, rr[-1:]])
        preceding = np.concatenate([rr[:1], rr])
    else:
        following = preceding = np.full(r.shape, int(fs))
    return following, preceding


def delineate_t(x: np.ndarray, w4: np.ndarray, r: np.ndarray, fs: float, rms4: np.ndarray, points: np.ndarray) -> None:
    n = x.shape[1]
    qrs_off = points[:, :, QRS_OFF].T
    following, _ = _rr(r, fs)
    start = np.where(qrs_off >= 0, qrs_off, r[None, :] + to_samples(100, fs)) + to_samples(20, fs)
    stop = r[None, :] + np.minimum(0.7 * following, to_samples(600, fs)).astype(np.int64)
    stop = np.minimum(np.maximum(stop, start + to_samples(100, fs)), n - 1)
    next_r = np.concatenate([r[1:], [n + to_samples(100, fs)]])[None, :]
    found = _t_wave(x, w4, start, stop, T_EPS * rms4, fs)
    found[3] &= (points[:, :, QRS_ON].T >= 0) & (found[2] < next_r - to_samples(100, fs))
    if T_RESCUE_SHARE < 1.0:
        _rescue_t(x, w4, rms4, fs, found, start, stop, next_r, points[:, :, QRS_ON].T >= 0)
    onset, peak, offset, present = found
    for col, where in ((T_ON, onset), (T_PEAK, peak), (T_OFF, offset)):
        points[:, :, col] = np.where(present, where, -1).T


def _t_wave(
    x: np.ndarray, w4: np.ndarray, start: np.ndarray, stop: np.ndarray, eps: np.ndarray, fs: float
) -> list[np.ndarray]:
    """[onset, peak, offset, present] (L, B) of the T wave searched in [start, stop]."""
    n = x.shape[1]
    lo, hi, peak, present, _ = _two_mml_wave(x, w4, start, stop, eps, T_GAMMA, 0.0, T_LARGER_LOBE)
    abs4 = np.abs(w4)
    onset = np.maximum(
        walk(abs4, lo, -1, np.full(lo.shape, T_ON_RATIO), to_samples(100, fs)), start - to_samples(20, fs)
    )
    offset = np.minimum(walk(abs4, hi, +1, np.full(hi.shape, T_OFF_RATIO), to_samples(150, fs)), n - 1)
    return [onset, peak, offset, present]


def _rescue_t(
    x: np.ndarray,
    w4: np.ndarray,
    rms4: np.ndarray,
    fs: float,
    found: list[np.ndarray],
    start: np.ndarray,
    stop: np.ndarray,
    next_r: np.ndarray,
    has_qrs: np.ndarray,
) -> None:
    """A lead without a T where most leads have one: searched again, with a lower threshold, around the
    other leads' T (their median onset to median offset, widened by :data:`T_RESCUE_MS`). A low T wave
    is still a T wave where the other leads see one (lead agreement)."""
    onset, _, offset, present = found
    share = present.sum(axis=0) / np.maximum(has_qrs.sum(axis=0), 1)
    wanted = ~present & has_qrs & (share >= T_RESCUE_SHARE)[None, :]
    if not wanted.any():
        return
    on_med = nan_median(np.where(present, onset, 0).T.astype(np.float64), present.T)
    off_med = nan_median(np.where(present, offset, 0).T.astype(np.float64), present.T)
    widen = to_samples(T_RESCUE_MS, fs)
    lo = np.maximum(np.nan_to_num(on_med, nan=0).astype(np.int64)[None, :] - widen, start)
    hi = np.minimum(np.nan_to_num(off_med, nan=0).astype(np.int64)[None, :] + widen, stop)
    hi = np.maximum(hi, lo + to_samples(40, fs))
    beats = np.flatnonzero(wanted.any(axis=0))  # only the beats that need it: this pass costs a T search
    again = _t_wave(x, w4, lo[:, beats], hi[:, beats], T_RESCUE_EPS * T_EPS * rms4, fs)
    again[3] &= wanted[:, beats] & (again[2] < next_r[:, beats] - to_samples(100, fs))
    for i in range(3):
        found[i][:, beats] = np.where(again[3], again[i], found[i][:, beats])
    found[3][:, beats] |= again[3]


def delineate_p(x: np.ndarray, w4: np.ndarray, r: np.ndarray, fs: float, rms4: np.ndarray, points: np.ndarray) -> None:
    qrs_on = points[:, :, QRS_ON].T
    anchor = np.where(qrs_on >= 0, qrs_on, r[None, :] - to_samples(60, fs))
    prev_r = np.concatenate([[-(10**9)], r[:-1]])[None, :]
    prev_t_off = np.concatenate([np.full((1, x.shape[0]), -1), points[:-1, :, T_OFF]], axis=0).T
    start = np.maximum(
        np.maximum(anchor - to_samples(280, fs), prev_r + to_samples(200, fs)), np.maximum(prev_t_off, 0)
    )
    stop = anchor - to_samples(20, fs)
    usable = stop - start >= to_samples(60, fs)
    start = np.where(usable, start, stop - to_samples(60, fs))
    lo, hi, peak, present, _ = _two_mml_wave(x, w4, start, stop, P_EPS * rms4, 0.0, P_BALANCE)
    abs4 = np.abs(w4)
    onset = np.maximum(
        walk(abs4, lo, -1, np.full(lo.shape, P_ON_RATIO), to_samples(60, fs)), np.maximum(start - to_samples(20, fs), 0)
    )
    offset = walk(abs4, hi, +1, np.full(hi.shape, P_OFF_RATIO), to_samples(60, fs))
    duration = offset - onset
    present &= (
        usable
        & (qrs_on >= 0)
        & (duration >= to_samples(40, fs))
        & (duration <= to_samples(200, fs))
        & (offset < qrs_on)
    )
    present &= present.sum(axis=0, keepdims=True) >= P_VOTE * max(1, int((qrs_on >= 0).any(axis=1).sum()))
    present &= _stable_pr(np.where(present, qrs_on - (lo + hi) // 2, -1), _irregular_rr(r), fs)
    for col, where in ((P_ON, onset), (P_PEAK, peak), (P_OFF, offset)):
        points[:, :, col] = np.where(present, where, -1).T


def _local_median(values: np.ndarray) -> np.ndarray:
    """NaN-ignoring median of each beat's neighbourhood of :data:`P_RHYTHM_BEATS` beats."""
    half = P_RHYTHM_BEATS // 2
    windows = neighbourhoods(values, half)
    return nan_median(windows, np.isfinite(windows))


def _irregular_rr(r: np.ndarray) -> np.ndarray:
    """(B,) whether each beat sits in an irregular rhythm: local median |RR change| above :data:`P_IRREGULAR_RR` of RR."""
    if r.size < 3:
        return np.zeros(r.shape, dtype=bool)
    rr = np.diff(r).astype(np.float64)
    change = np.abs(np.diff(rr)) / rr[1:]
    per_beat = np.concatenate([[np.nan], change, [np.nan]])
    return np.nan_to_num(_local_median(per_beat), nan=0.0) > P_IRREGULAR_RR


def _stable_pr(pr: np.ndarray, irregular: np.ndarray, fs: float) -> np.ndarray:
    """(L, B) mask of P waves whose PR interval (samples, -1 absent) fits a regular atrial rhythm.

    A sinus P wave keeps its distance to the QRS from beat to beat; the "waves" found before the QRS
    in atrial fibrillation or flutter (f or F waves, noise) fall anywhere in the window. So the
    multi-lead PR of each beat (median over leads) is compared with its neighbours: where their
    median absolute deviation exceeds :data:`P_PR_SPREAD_MS` the beats have no P; a lead whose PR
    is far from the beat's multi-lead PR loses its P in that beat.
    """
    if pr.shape[1] == 0:
        return np.ones(pr.shape, dtype=bool)
    values = np.where(pr >= 0, pr, np.nan).astype(np.float64)
    beat_pr = nan_median(values.T, (pr >= 0).T)
    half = P_RHYTHM_BEATS // 2
    windows = neighbourhoods(beat_pr, half)
    local = nan_median(windows, np.isfinite(windows))
    deviation = np.abs(windows - local[:, None])
    spread = nan_median(deviation, np.isfinite(deviation))
    ms = 1000.0 / fs
    allowed = np.where(irregular, P_IRREGULAR_SPREAD_MS, P_PR_SPREAD_MS)
    regular = np.nan_to_num(spread, nan=np.inf) * ms <= allowed
    with np.errstate(invalid="ignore"):
        close = np.abs(values - beat_pr[None, :]) * ms <= P_PR_LEAD_MS
    return regular[None, :] & close


def fuse_outliers(points: np.ndarray, fs: float) -> None:
    """Pull each lead's boundary points to within :data:`FUSE_LIMIT_MS` of the beat's multi-lead median."""
    if not FUSE_LIMIT_MS or points.shape[0] == 0:
        return
    columns = np.fromiter(FUSE_LIMIT_MS, dtype=np.int64)
    limit = np.fromiter(FUSE_LIMIT_MS.values(), dtype=np.float64) * fs / 1000.0
    values = np.moveaxis(points[:, :, columns], 1, 2)  # (B, C, L)
    present = values >= 0
    centre = np.nan_to_num(nan_median(values, present), nan=0.0)[..., None]
    pulled = np.clip(values, centre - limit[:, None], centre + limit[:, None]).round().astype(np.int64)
    use = present & (present.sum(axis=-1) >= 3)[..., None]
    points[:, :, columns] = np.moveaxis(np.where(use, pulled, values), 2, 1)


# --------------------------------------------------------------------------- invariants and entry point


def enforce_invariants(points: np.ndarray, num_samples: int) -> None:
    """Mark absent (whole wave) any wave breaking on < peak < off, P < QRS < T, or outside the record."""
    out_of_range = (points < 0) | (points >= num_samples)
    points[out_of_range] = -1
    p, qrs, t = points[..., P_ON : P_OFF + 1], points[..., QRS_ON : QRS_OFF + 1], points[..., T_ON : T_OFF + 1]
    for wave in (p, t):
        bad = (wave < 0).any(-1) | ~((wave[..., 0] < wave[..., 1]) & (wave[..., 1] < wave[..., 2]))
        wave[bad] = -1
    bounds_bad = (qrs[..., 0] < 0) | (qrs[..., -1] < 0) | (qrs[..., 0] >= qrs[..., -1])
    qrs[bounds_bad] = -1
    inner = qrs[..., 1:4]
    outside = (inner >= 0) & ((inner <= qrs[..., :1]) | (inner >= qrs[..., -1:]))
    inner[outside] = -1
    q, r, s = inner[..., 0], inner[..., 1], inner[..., 2]
    inner[..., 0] = np.where((q >= 0) & (r >= 0) & (q >= r), -1, q)
    inner[..., 2] = np.where((s >= 0) & (r >= 0) & (s <= r), -1, s)
    p[((p[..., 2] >= qrs[..., 0]) & (p[..., 2] >= 0)) | (qrs[..., 0] < 0)] = -1
    t[((t[..., 0] <= qrs[..., -1]) & (t[..., 0] >= 0)) | (qrs[..., -1] < 0)] = -1
