"""QRS detection on two-lead records, clean and under added noise: LUDB beats, a noise stress test.

    python benchmarks/bench_qrs_noise.py --data ../shared/data/ludb [--split odd] [--pairs ii+v5 i+ii v1+v2]
                                         [--noise none bw ma em] [--snr 12 6 0] [--seed 0]

Ambulatory records are two-lead and noisy; the shared data hold no such record with beat marks.
This measures what can be measured here: our fused R peaks (:func:`ecgsignal.delineate.delineate`
on the conditioned two leads only, as the package delineates a two-lead record) against the
reference beats of LUDB (the median over the 12 leads of each complex's cardiologist QRS marks),
within 150 ms, false positives counted inside the span marked in any lead
(:mod:`ecgdata.ludb`'s protocol).

Noise is added to the two leads in the manner of the MIT-BIH Noise Stress Test, but synthetic
(its recorded noise is not available here): ``bw`` baseline wander (three sinusoids, 0.05-0.6
Hz), ``ma`` muscle-like noise (10-100 Hz band-limited, bursting), ``em`` electrode-motion-like
noise (1-12 Hz band-limited, switched on and off by a slow random process: it looks most like
beats). SNR as in the stress test: signal power = (median peak-to-peak QRS amplitude of the
lead)^2 / 8, noise power its variance. Every (record, pair, noise) draws from its own seed.
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # one thread, set before numpy loads
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_var] = "1"

import argparse
import logging
import sys
import zlib
from pathlib import Path

import numpy as np
from scipy import signal as sps

from ecgdata.ludb import (
    LUDB_LEADS,
    FiducialScore,
    LudbRecord,
    ludb_data_dir,
    read_ludb,
    record_numbers,
    reference_beats,
)
from ecglog.progress import progress
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


def parse_pair(text: str) -> tuple[int, int]:
    names = text.lower().split("+")
    if len(names) != 2 or any(name not in LUDB_LEADS for name in names):
        raise argparse.ArgumentTypeError(f"{text!r}: two LUDB leads joined by '+', e.g. ii+v5")
    return LUDB_LEADS.index(names[0]), LUDB_LEADS.index(names[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="LUDB folder (or its data/ subfolder)")
    parser.add_argument("--split", choices=("even", "odd", "all"), default="odd", help="even: tune; odd: report")
    parser.add_argument(
        "--pairs", nargs="+", type=parse_pair, default=[parse_pair(p) for p in ("ii+v5", "i+ii", "v1+v2")]
    )
    parser.add_argument("--noise", nargs="+", choices=NOISES, default=list(NOISES))
    parser.add_argument("--snr", nargs="+", type=float, default=[12.0, 6.0, 0.0], help="dB, for each noise but none")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    data = ludb_data_dir(args.data)
    try:
        numbers = record_numbers(data)
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    numbers = [n for n in numbers if args.split == "all" or (n % 2 == 1) == (args.split == "odd")]
    if not numbers:
        print(f"error: {data}: no LUDB records found", file=sys.stderr)
        return 1
    records = [read_ludb(data, n) for n in progress(numbers, desc="reading LUDB")]
    config = SignalConfig()
    print(f"LUDB {args.split} split, {len(records)} records; QRS detection on two leads (150 ms)")
    print(f"{'leads':8s} {'noise':5s} {'SNR dB':>6s} {'Se':>8s} {'+P':>8s} {'missed':>7s} {'false':>6s} {'beats':>6s}")
    for leads in args.pairs:
        name = "+".join(LUDB_LEADS[k] for k in leads)
        for kind in args.noise:
            for snr in [float("inf")] if kind == "none" else args.snr:
                s = score_pair(records, leads, kind, snr, args.seed, config)
                print(
                    f"{name:8s} {kind:5s} {snr:6.0f} {s.sensitivity:8.2%} {s.predictivity:8.2%} "
                    f"{s.marks - s.matched:7d} {s.false:6d} {s.marks:6d}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
