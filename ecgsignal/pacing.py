"""Pacemaker spikes: found on the raw signal at its own rate, before filtering blurs them.

A pacing stimulus is a deflection one or two milliseconds wide. At 500 Hz it is one or two
samples, far narrower than anything the heart makes; after the band-pass and the resampling to
250 Hz it is a small smear just before the QRS, which the delineator otherwise takes for the QRS
onset (LUDB's cardiologists mark the onset of a paced complex after the stimulus: in the six
unipolar-paced LUDB records, taking the smear for the onset put it 32-42 ms early).

The measure is the curvature over +-2 ms, |x[n] - (x[n-h] + x[n+h]) / 2|, in units of the lead's
own steepest slopes (99th percentile of |x[n+h] - x[n]|): a QRS reaches about 1 there, a
unipolar stimulus 5-60. A spike is where at least :data:`MIN_LEADS` usable leads exceed
:data:`THRESHOLD` at once (the stimulus is one electrical event, seen in many leads; a loose
electrode or muscle noise is usually in one). Bipolar pacing gives stimuli too small to see at
500 Hz, so those records are not helped. Whether the spikes belong to the beats (one before each
QRS) is decided by the delineator, which knows the beats.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks

#: A lead's curvature must exceed this many times its steepest slopes (tuned on even LUDB records).
THRESHOLD = 4.0
#: ... in at least this many usable leads within one sample of each other.
MIN_LEADS = 2
#: Below this rate a 1-2 ms stimulus is not resolved (100 Hz PTB-XL records): no spikes reported.
MIN_FS = 250.0
#: Two spikes closer than this (ms) are one stimulus.
REFRACTORY_MS = 50.0


def pacing_spikes(x: np.ndarray, fs: float, usable: np.ndarray | None = None) -> np.ndarray:
    """Sample positions (int64, at ``fs``) of pacemaker stimuli in ``x`` (L, N) mV, raw (unfiltered).

    ``usable`` (L,) excludes leads (flat, saturated); NaN samples count as no spike. Empty below
    :data:`MIN_FS` or with fewer than :data:`MIN_LEADS` usable leads.
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"pacing_spikes expects (leads, samples), got shape {x.shape}")
    usable = np.ones(x.shape[0], dtype=bool) if usable is None else np.asarray(usable, dtype=bool)
    h = max(1, int(round(0.002 * fs)))
    if fs < MIN_FS or x.shape[1] < 2 * h + 3 or usable.sum() < MIN_LEADS:
        return np.zeros(0, np.int64)
    x = (x if usable.all() else x[usable]).astype(np.float32)  # float32: 10x faster here; one copy
    if not np.isfinite(x).all():  # the check costs less than the replacing copy, and records are finite
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    curvature = np.abs(x[:, h:-h] - 0.5 * (x[:, : -2 * h] + x[:, 2 * h :]))
    steps = np.abs(x[:, h::2] - x[:, :-h:2])  # every other step: the percentile at half the cost
    rank = int(0.99 * (steps.shape[1] - 1))
    slopes = np.maximum(np.partition(steps, rank, axis=1)[:, rank], 1e-3)  # 1 uV a sample: a flat lead stays quiet
    hit = curvature > THRESHOLD * slopes[:, None]
    near = hit.copy()
    near[:, 1:] |= hit[:, :-1]
    near[:, :-1] |= hit[:, 1:]
    # leads hit per sample, counted in bytes (no cast of every flag to a 64-bit integer first)
    leads_hit = near.view(np.uint8).sum(axis=0, dtype=np.uint8) if x.shape[0] < 256 else near.sum(axis=0)
    columns = np.flatnonzero(leads_hit >= MIN_LEADS)
    if columns.size == 0:
        return np.zeros(0, np.int64)
    score = np.zeros(x.shape[1])
    score[columns + h] = (curvature[:, columns] / slopes[:, None]).max(axis=0)
    peaks, _ = find_peaks(score, height=THRESHOLD, distance=max(1, int(REFRACTORY_MS * fs / 1000.0)))
    return peaks.astype(np.int64)


def spikes_at(x: np.ndarray, fs: float, fs_out: float, usable: np.ndarray | None = None) -> np.ndarray:
    """:func:`pacing_spikes` of the raw ``x`` at ``fs``, as sample positions at ``fs_out`` (the
    delineator's rate), increasing and unique."""
    found = pacing_spikes(x, fs, usable)
    return np.unique(np.round(found * (fs_out / fs)).astype(np.int64))


__all__ = ["MIN_FS", "MIN_LEADS", "THRESHOLD", "pacing_spikes", "spikes_at"]
