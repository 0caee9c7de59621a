"""Long two-lead records with the changes of an ambulatory recording, for stress-testing QRS detection.

The shared data hold no long record with beat marks, so one is built from LUDB (see
``benchmarks/bench_qrs_long.py`` for the protocol): :func:`join_records` joins the marked parts of
records, :func:`apply` adds a condition (amplitude drift, ectopic beats, pauses, muscle or
electrode-motion bursts), :func:`score` scores the package's detector against the reference beats.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecgdata.ludb import FiducialScore, LudbRecord, reference_beats
from ecgdata.qrs_stress import detect, make_noise
from ecgsignal.config import SignalConfig

CONDITIONS = ("clean", "drift", "ectopy", "pauses", "bursts", "motion", "all")
EDGE_S = 0.3  # signal kept around the first and last marked beat of each record


@dataclass(frozen=True)
class LongRecord:
    """Two leads (2, N) mV at ``fs`` and the reference beats (sample indices, increasing)."""

    signal: np.ndarray
    fs: float
    beats: np.ndarray


def join_records(records: list[LudbRecord], leads: tuple[int, int]) -> LongRecord:
    """The marked parts of ``records`` on ``leads``, ends levelled to zero, joined in order."""
    pieces, beats, offset, fs = [], [], 0, 500.0
    for ludb in records:
        fs = ludb.record.fs
        reference, _ = reference_beats(ludb)
        if reference.size < 2:
            continue
        edge = int(EDGE_S * fs)
        lo, hi = max(0, int(reference[0]) - edge), min(ludb.record.num_samples, int(reference[-1]) + edge)
        piece = ludb.record.signal[list(leads), lo:hi].astype(np.float64)
        piece = np.nan_to_num(piece)
        ramp = np.linspace(0.0, 1.0, piece.shape[1])
        piece -= piece[:, :1] + (piece[:, -1:] - piece[:, :1]) * ramp
        pieces.append(piece)
        beats.append(reference - lo + offset)
        offset += piece.shape[1]
    if not pieces:
        raise ValueError("no LUDB record with two or more marked beats")
    return LongRecord(np.concatenate(pieces, axis=1), float(fs), np.concatenate(beats).astype(np.int64))


def _qrs_amplitude(x: np.ndarray, beats: np.ndarray, fs: float) -> np.ndarray:
    """(L,) median peak-to-peak amplitude within +-100 ms of the beats."""
    half = int(0.1 * fs)
    window = np.clip(beats[:, None] + np.arange(-half, half + 1), 0, x.shape[1] - 1)
    return np.median(np.ptp(x[:, window], axis=2), axis=1)


def drift(rec: LongRecord, rng: np.random.Generator) -> LongRecord:
    t = np.arange(rec.signal.shape[1]) / rec.fs
    gains = []
    for _ in range(rec.signal.shape[0]):
        periods = rng.uniform(60.0, 360.0, 2)
        phases = rng.uniform(0, 2 * np.pi, 2)
        wave = sum(np.sin(2 * np.pi * t / p + f) for p, f in zip(periods, phases)) / 2.0
        gains.append(np.exp(0.9 * wave))  # 0.4-2.5 at the extremes, mostly 0.5-1.6
    return LongRecord(rec.signal * np.asarray(gains), rec.fs, rec.beats)


def ectopy(rec: LongRecord, rng: np.random.Generator, every: int = 12) -> LongRecord:
    x = rec.signal.copy()
    amplitude = _qrs_amplitude(x, rec.beats, rec.fs)
    t = (np.arange(-int(0.3 * rec.fs), int(0.3 * rec.fs) + 1)) / rec.fs
    sigma = 0.035  # a derivative of a Gaussian 140 ms wide between its outer lobes' ends
    shape = -t / sigma * np.exp(0.5 - 0.5 * (t / sigma) ** 2)
    added = []
    for i in range(0, rec.beats.size - 1, every):
        rr = rec.beats[i + 1] - rec.beats[i]
        if rr > 2.0 * rec.fs:
            continue
        centre = int(rec.beats[i] + 0.6 * rr)
        idx = centre + np.arange(-(t.size // 2), t.size // 2 + 1)
        ok = (idx >= 0) & (idx < x.shape[1])
        for k in range(x.shape[0]):
            x[k, idx[ok]] += rng.choice([-1.0, 1.0]) * 0.75 * amplitude[k] * shape[ok]
        added.append(centre)
    beats = np.sort(np.concatenate([rec.beats, np.asarray(added, np.int64)]))
    return LongRecord(x, rec.fs, beats)


def pauses(rec: LongRecord, rng: np.random.Generator, every: int = 20) -> LongRecord:
    pieces, beats, start, shift = [], rec.beats.copy(), 0, 0
    noise = np.median(np.abs(np.diff(rec.signal, axis=1)), axis=1, keepdims=True)
    for i in range(every // 2, rec.beats.size - 1, every):
        cut = int((rec.beats[i] + rec.beats[i + 1]) // 2)
        pieces.append(rec.signal[:, start:cut])
        length = int(rng.uniform(1.5, 3.0) * rec.fs)
        level = rec.signal[:, cut : cut + 1]
        pieces.append(level + noise * rng.standard_normal((rec.signal.shape[0], length)))
        start = cut
        shift += length
        beats[i + 1 :] += length
    pieces.append(rec.signal[:, start:])
    return LongRecord(np.concatenate(pieces, axis=1), rec.fs, beats)


def noise_bursts(
    rec: LongRecord, rng: np.random.Generator, kind: str, snr_db: float, length_s: float, period_s: float
) -> LongRecord:
    x = rec.signal.copy()
    n = x.shape[1]
    power = _qrs_amplitude(x, rec.beats, rec.fs) ** 2 / 8.0  # the stress test's SNR
    mask = np.zeros(n)
    period, length = int(period_s * rec.fs), int(length_s * rec.fs)
    for start in range(int(rng.uniform(0, period_s) * rec.fs), n, period):
        mask[start : start + length] = 1.0
    for k in range(x.shape[0]):
        scale = np.sqrt(power[k] / 10 ** (snr_db / 10.0))
        x[k] += make_noise(kind, n, rec.fs, rng) * scale * mask
    return LongRecord(x, rec.fs, rec.beats)


def apply(rec: LongRecord, condition: str, seed: int) -> LongRecord:
    """``rec`` under one condition of :data:`CONDITIONS` (``all``: every one, in order)."""
    rng = np.random.default_rng([seed, CONDITIONS.index(condition)])
    steps = CONDITIONS[1:-1] if condition == "all" else () if condition == "clean" else (condition,)
    for step in steps:
        if step == "drift":
            rec = drift(rec, rng)
        elif step == "ectopy":
            rec = ectopy(rec, rng)
        elif step == "pauses":
            rec = pauses(rec, rng)
        elif step == "bursts":
            rec = noise_bursts(rec, rng, "ma", 0.0, 5.0, 40.0)
        elif step == "motion":
            rec = noise_bursts(rec, rng, "em", 6.0, 10.0, 60.0)
    return rec


def score(rec: LongRecord, config: SignalConfig) -> FiducialScore:
    result = FiducialScore()
    result.add(rec.beats, detect(rec.signal, rec.fs, config), (0, rec.signal.shape[1] - 1), rec.fs)
    return result
