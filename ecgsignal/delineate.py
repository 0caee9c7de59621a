"""Multi-lead wavelet delineation of P, QRS and T waves (after Martinez et al. 2004), vectorised.

Input: leads x samples, band-passed (see :func:`ecgsignal.preprocess.condition`), any rate 100-1000 Hz.
Output: :class:`Delineation` with one fused R peak per beat and, per beat and lead, the 11 points of
:data:`WAVE_POINTS` as sample indices, ``-1`` where the wave is absent (never NaN).

Two steps on the quadratic-spline wavelet scales (:mod:`ecgsignal.wavelet`): :mod:`ecgsignal.beats`
finds the beats (R peaks voted across the leads, a T or P wave taken for a beat dropped), then
:mod:`ecgsignal.waves` delineates each beat's QRS, T and P per lead and fuses the leads. Each
module's docstring gives its rules; the thresholds are module constants there, tuned on the
even-numbered LUDB records only (``benchmarks/bench_ludb.py --split even``). This module is the
entry point: input checks, one-minute blocks for long records, and the names callers import.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecgsignal.beats import detect_r_peaks, reject_slow_waves
from ecgsignal.confidence import unsure_points
from ecgsignal.sample_windows import to_samples
from ecgsignal.wavelet import dyadic_wavelet_transform
from ecgsignal.waves import (
    P_OFF,
    P_ON,
    P_PEAK,
    PACE_GUARD_MS,
    Q_PEAK,
    QRS_OFF,
    QRS_ON,
    R_PEAK,
    S_PEAK,
    T_OFF,
    T_ON,
    T_PEAK,
    WAVE_POINTS,
    WAVES,
    Wave,
    delineate_p,
    delineate_qrs,
    delineate_t,
    enforce_invariants,
    fuse_outliers,
    paced_onsets,
)

MIN_FS, MAX_FS = 100.0, 1000.0
#: Records longer than BLOCK_S + 2 MARGIN_S seconds are delineated block by block (bounded memory).
BLOCK_S, MARGIN_S = 60.0, 5.0


@dataclass(frozen=True)
class Delineation:
    """Fiducial points of one record.

    ``fs`` the rate of the delineated signal; ``r_peaks`` int64 (B,) fused R peaks (sample
    indices, increasing); ``points`` int64 (B, L, 11), columns :data:`WAVE_POINTS`, -1 = absent;
    ``unsure`` bool (B, L, 11), present points the delineator is unsure of
    (:mod:`ecgsignal.confidence`), None for a delineation made without the checks (all sure).
    """

    fs: float
    r_peaks: np.ndarray
    points: np.ndarray
    unsure: np.ndarray | None = None

    @property
    def sure_points(self) -> np.ndarray:
        """:attr:`points` with the unsure ones marked absent (-1): what features measure."""
        if self.unsure is None:
            return self.points
        return np.where(self.unsure, -1, self.points)

    @property
    def num_beats(self) -> int:
        return int(self.r_peaks.shape[0])

    @property
    def num_leads(self) -> int:
        return int(self.points.shape[1])


def empty_delineation(num_leads: int, fs: float) -> Delineation:
    """No beats: what a record without a detectable QRS gets."""
    shape = (0, num_leads, len(WAVE_POINTS))
    return Delineation(float(fs), np.zeros(0, np.int64), np.full(shape, -1, np.int64), np.zeros(shape, dtype=bool))


def delineate(x: np.ndarray, fs: float, spikes: np.ndarray | None = None) -> Delineation:
    """Delineate every beat of ``x`` (L, M) (or (M,)) sampled at ``fs`` Hz (100-1000).

    ``spikes``: pacemaker stimuli (sample positions at ``fs``, increasing), found on the raw
    signal by :func:`ecgsignal.pacing.pacing_spikes`; a paced beat's QRS starts after its stimulus.

    Leads that are all zero or constant are absent everywhere and do not vote. NaN/inf samples are
    read as 0 (pass the signal through :func:`ecgsignal.preprocess.condition` to interpolate them).
    A record shorter than 0.5 s, or without a QRS, gives zero beats. Records longer than 70 s are
    delineated in one-minute blocks, so a 30-minute Holter record needs the memory of one block.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"delineate expects (leads, samples), got shape {x.shape}")
    if not MIN_FS <= fs <= MAX_FS:
        raise ValueError(f"delineate supports 100-1000 Hz, got {fs} Hz")
    if not np.isfinite(x).all():  # the check costs a quarter of the copy, and records are finite
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    spikes = np.zeros(0, np.int64) if spikes is None else np.sort(np.asarray(spikes, dtype=np.int64))
    block, margin = int(BLOCK_S * fs), int(MARGIN_S * fs)
    if x.shape[1] > block + 2 * margin:
        return _delineate_blocks(x, fs, block, margin, spikes)
    return _delineate_block(x, fs, spikes)


def _delineate_blocks(x: np.ndarray, fs: float, block: int, margin: int, spikes: np.ndarray) -> Delineation:
    """A long record (Holter, 30 min) in blocks of :data:`BLOCK_S` s, each seen with :data:`MARGIN_S` s either side.

    Each block keeps the beats whose R falls in its own part, so every beat is delineated with
    at least the margin of signal around it, and the working memory is that of one block whatever
    the record's length. The R threshold adapts per block, as it should on a long ambulatory record.
    """
    num_leads, n = x.shape
    r_parts, point_parts, unsure_parts = [], [], []
    for start in range(0, n, block):
        lo, hi = max(0, start - margin), min(n, start + block + margin)
        part = _delineate_block(x[:, lo:hi], fs, spikes[(spikes >= lo) & (spikes < hi)] - lo)
        keep = (part.r_peaks + lo >= start) & (part.r_peaks + lo < start + block)
        r_parts.append(part.r_peaks[keep] + lo)
        point_parts.append(np.where(part.points[keep] >= 0, part.points[keep] + lo, -1))
        assert part.unsure is not None
        unsure_parts.append(part.unsure[keep])
    r = np.concatenate(r_parts)
    points = np.concatenate(point_parts) if point_parts else np.zeros((0, num_leads, len(WAVE_POINTS)), np.int64)
    unsure = np.concatenate(unsure_parts) if unsure_parts else np.zeros(points.shape, dtype=bool)
    if r.size > 1:  # a beat on a block boundary may be found by both blocks
        keep = np.concatenate([[True], np.diff(r) >= to_samples(200, fs)])
        r, points, unsure = r[keep], points[keep], unsure[keep]
    return Delineation(float(fs), r.astype(np.int64), points.astype(np.int64), unsure)


def _delineate_block(x: np.ndarray, fs: float, spikes: np.ndarray) -> Delineation:
    """:func:`delineate` on one stretch of signal short enough to hold all its windows at once."""
    num_leads, n = x.shape
    if n < int(0.5 * fs) or num_leads == 0:
        return empty_delineation(num_leads, fs)
    w2, w3, w4 = dyadic_wavelet_transform(x, fs, scales=(2, 3, 4))
    active = (x.std(axis=1) > 1e-6) & (np.abs(w3).max(axis=1) > 0)
    r = reject_slow_waves(x, detect_r_peaks(x, w3, fs, active), w2, w3, w4, fs, active)
    if r.size == 0:
        return empty_delineation(num_leads, fs)
    points = np.full((r.size, num_leads, len(WAVE_POINTS)), -1, dtype=np.int64)
    rms4 = np.sqrt(np.mean(w4.astype(np.float64) ** 2, axis=1))
    delineate_qrs(x, w2, r, fs, active, points, paced_onsets(r, spikes, fs))
    delineate_t(x, w4, r, fs, rms4, points)
    delineate_p(x, w4, r, fs, rms4, points)
    unsure = unsure_points(x, points, fs)  # before the fusion hides the leads' disagreement
    fuse_outliers(points, fs)
    enforce_invariants(points, n)
    return Delineation(float(fs), r.astype(np.int64), points, unsure & (points >= 0))


__all__ = [
    "PACE_GUARD_MS",
    "P_OFF",
    "P_ON",
    "P_PEAK",
    "QRS_OFF",
    "QRS_ON",
    "Q_PEAK",
    "R_PEAK",
    "S_PEAK",
    "T_OFF",
    "T_ON",
    "T_PEAK",
    "WAVES",
    "WAVE_POINTS",
    "Delineation",
    "Wave",
    "delineate",
    "detect_r_peaks",
    "empty_delineation",
    "paced_onsets",
]
