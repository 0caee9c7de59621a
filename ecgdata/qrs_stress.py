"""The QRS noise stress test: synthetic noise at a stated SNR, and two-lead detection scored on LUDB.

Noise is added in the manner of the MIT-BIH Noise Stress Test, but synthetic (its recorded noise is
not available here): ``bw`` baseline wander (three sinusoids, 0.05-0.6 Hz), ``ma`` muscle-like
noise (10-100 Hz band-limited, bursting), ``em`` electrode-motion-like noise (1-12 Hz band-limited,
switched on and off by a slow random process: it looks most like beats). SNR as in the stress test:
signal power = (median peak-to-peak QRS amplitude of the lead)^2 / 8, noise power its variance.
:func:`score_pair` detects beats exactly as the package delineates a two-lead record and scores them
against LUDB's reference beats (:mod:`ecgdata.ludb`'s protocol); ``benchmarks/bench_qrs_noise.py``
prints the table, the tests hold its floors.
"""

from __future__ import annotations

import zlib

import numpy as np
from scipy import signal as sps

from ecgdata.ludb import FiducialScore, LudbRecord, reference_beats
from ecgsignal.config import SignalConfig
from ecgsignal.delineate import delineate
from ecgsignal.pacing import spikes_at
from ecgsignal.preprocess import condition
from ecgsignal.records import to_record_rate

NOISES = ("none", "bw", "ma", "em")


def make_noise(kind: str, n: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance noise of one kind, ``n`` samples at ``fs``."""
    t = np.arange(n) / fs
    if kind == "bw":
        freqs = rng.uniform(0.05, 0.6, 3)
        noise = sum(rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f in freqs)
    elif kind == "ma":
        band = sps.butter(2, [10.0, min(100.0, 0.45 * fs)], btype="band", fs=fs, output="sos")
        bursts = 0.5 + 3.0 * np.abs(sps.sosfilt(sps.butter(1, 0.5, fs=fs, output="sos"), rng.standard_normal(n)))
        noise = sps.sosfilt(band, rng.standard_normal(n)) * bursts
    elif kind == "em":
        band = sps.butter(2, [1.0, 12.0], btype="band", fs=fs, output="sos")
        on = sps.sosfilt(sps.butter(1, 0.3, fs=fs, output="sos"), rng.standard_normal(n)) > 0
        noise = sps.sosfilt(band, rng.standard_normal(n)) * (0.2 + on)
    else:
        raise ValueError(f"unknown noise {kind!r} (one of {', '.join(NOISES[1:])})")
    noise = np.asarray(noise, dtype=np.float64)
    return noise / max(float(noise.std()), 1e-12)


def add_noise(x: np.ndarray, beats: np.ndarray, fs: float, kind: str, snr_db: float, seed: int) -> np.ndarray:
    """``x`` (L, N) mV with noise of ``kind`` at ``snr_db`` per lead (stress-test SNR), reproducibly."""
    if kind == "none":
        return x
    rng = np.random.default_rng(seed)
    half = int(0.1 * fs)
    out = np.empty_like(x, dtype=np.float64)
    for k in range(x.shape[0]):
        spans = [np.ptp(x[k, max(0, b - half) : b + half]) for b in beats] or [np.ptp(x[k])]
        power = float(np.median(spans)) ** 2 / 8.0
        out[k] = x[k] + make_noise(kind, x.shape[1], fs, rng) * np.sqrt(power / 10 ** (snr_db / 10.0))
    return out


def detect(x: np.ndarray, fs: float, config: SignalConfig) -> np.ndarray:
    """Fused R peaks at the record's rate, exactly as the package delineates ``x`` (stimuli included)."""
    conditioned, quality = condition(x, fs, config)
    found = delineate(conditioned, config.fs, spikes_at(x, fs, config.fs, quality))
    return to_record_rate(found.r_peaks, found.fs, fs, x.shape[1])


def score_pair(
    records: list[LudbRecord], leads: tuple[int, int], kind: str, snr_db: float, seed: int, config: SignalConfig
) -> FiducialScore:
    """QRS detection of every record on ``leads`` under one noise condition."""
    score = FiducialScore()
    for ludb in records:
        reference, span = reference_beats(ludb)
        fs = ludb.record.fs
        x = ludb.record.signal[list(leads)].astype(np.float64)
        key = f"{ludb.record.name}:{leads}:{kind}:{snr_db}:{seed}".encode()
        noisy = add_noise(x, reference, fs, kind, snr_db, zlib.crc32(key))
        score.add(reference, detect(noisy, fs, config), span, fs)
    return score


__all__ = ["NOISES", "add_noise", "detect", "make_noise", "score_pair"]
