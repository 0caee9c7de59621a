"""The built-in demo set: synthetic 12-lead Challenge records whose labels are true by construction.

Signals come from ECGSYN (McSharry et al. 2003) with the twelve standard leads' wave amplitudes,
computed by our closed-form, all-leads-at-once version (:mod:`ecgdata.ecgsyn`), then get per-lead
amplitudes, baseline wander, muscle noise and mains hum.
Every label is decided before simulation AND checked by measurement on the clean signal (R peaks,
RR intervals, QRS amplitudes); a draw that fails its check is redrawn. Rhythms:

* sinus rhythm 426783006: mean rate 60-100 bpm, RR nearly constant;
* sinus bradycardia 426177001 (< 60 bpm) and sinus tachycardia 427084000 (> 100 bpm);
* sinus arrhythmia 427393009 (+ sinus rhythm 426783006): P waves kept, rate 60-100 bpm, RR range
  >= 0.16 s from ECGSYN's respiratory/Mayer-wave RR modulation;
* AF-like 164889003: P waves removed (ECGSYN's P amplitude set to 0), large irregular RR variation,
  plus low-amplitude 4-8 Hz fibrillatory waves. Honest limit: ECGSYN's RR series is a band-limited
  random process (0.1 and 0.25 Hz peaks), so the irregularity is strong but not the memoryless
  "irregularly irregular" pattern of real AF.

Low QRS voltage 251146004 is added to about a quarter of the records: every limb lead is scaled to a
whole-signal peak-to-peak below 0.45 mV and every precordial lead below 0.9 mV, so every QRS is
below 0.5 / 1.0 mV; all other records have a limb-lead QRS >= 0.6 mV and a precordial QRS >= 1.2 mV.
Known limit of the simulator: each lead has its own wave amplitudes and scale (Einthoven's III = II - I
does not hold), though all leads share one beat sequence.

Same seed -> byte-identical files, whatever the number of workers (each record has its own seed).
Usage: ``python -m ecgdata.synthetic OUT_DIR [--records N] [--seed S] [--jobs J]``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from joblib import Parallel, delayed
from scipy.signal import find_peaks

from ecgdata import ecgsyn
from ecgdata.challenge_format import write_challenge_record
from ecgio.leads import TWELVE_LEADS
from ecglog.progress import progress as progress_bar

log = logging.getLogger(__name__)

FS = 500
DURATION_S = 10
#: ECGSYN starts at the R-peak phase with z = 0, which leaves a transient in the first
#: beat; we simulate this much longer and drop it.
SETTLE_S = 2
NSR, SB, STACH, SA, AF, LQRSV = "426783006", "426177001", "427084000", "427393009", "164889003", "251146004"
LIMB = slice(0, 6)
PRECORDIAL = slice(6, 12)
#: ECGSYN's default wave parameters (P, Q, R, S, T); the AF-like rhythm zeroes the P amplitude.
ECGSYN_AI_NO_P = (0.0, -5.0, 30.0, -7.5, 0.75)
LOW_VOLTAGE_FRACTION = 0.25
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class Rhythm:
    """How to simulate one rhythm and the measured conditions that make its labels true."""

    name: str
    labels: tuple[str, ...]
    rate: tuple[float, float]  # mean heart rate drawn uniformly from this range (bpm)
    rr_cv: tuple[float, float]  # RR coefficient of variation asked of ECGSYN (heart_rate_std = cv * rate)
    p_waves: bool
    lfhf_ratio: float
    accept_rate: tuple[float, float]  # measured mean rate must fall inside (bpm)
    accept_rr_range: tuple[float, float]  # measured max - min RR must fall inside (s)
    min_rr_cv: float = 0.0  # measured RR coefficient of variation at least this


RHYTHMS: tuple[Rhythm, ...] = (
    Rhythm("sinus", (NSR,), (63, 95), (0.005, 0.015), True, 0.5, (61, 99), (0.0, 0.10)),
    Rhythm("sinus_bradycardia", (SB,), (40, 55), (0.005, 0.015), True, 0.5, (0, 58), (0.0, 0.10)),
    Rhythm("sinus_tachycardia", (STACH,), (106, 150), (0.005, 0.015), True, 0.5, (102, 250), (0.0, 0.10)),
    Rhythm("sinus_arrhythmia", (NSR, SA), (64, 88), (0.07, 0.10), True, 0.5, (61, 99), (0.16, 9.9)),
    Rhythm("af_like", (AF,), (65, 120), (0.15, 0.25), False, 0.2, (0, 250), (0.20, 9.9), 0.10),
)


@dataclass(frozen=True)
class SyntheticRecord:
    """One generated record: signal (12, N) mV in canonical lead order and what was measured on it."""

    name: str
    signal: np.ndarray
    fs: int
    labels: tuple[str, ...]
    age: int
    sex: str
    rhythm: str
    low_voltage: bool
    heart_rate: float
    rr_range: float
    rr_cv: float
    attempts: int


def r_peaks(signal: np.ndarray, fs: float) -> np.ndarray:
    """R-peak sample indices of a clean multi-lead signal: peaks of the summed absolute slope.

    The slope is largest in the QRS complex in every lead, so its sum across leads peaks once per
    beat; peaks closer than 250 ms (240 bpm) are merged.
    """
    slope = np.abs(np.diff(signal, axis=1)).sum(axis=0)
    peaks, _ = find_peaks(slope, distance=max(1, int(0.25 * fs)), height=0.35 * float(slope.max()))
    return peaks


def rr_statistics(peaks: np.ndarray, fs: float) -> tuple[float, float, float]:
    """(mean heart rate bpm, RR range s, RR coefficient of variation) from R-peak positions."""
    rr = np.diff(peaks) / fs
    if rr.size < 2:
        return float("nan"), float("nan"), float("nan")
    return float(60.0 / rr.mean()), float(rr.max() - rr.min()), float(rr.std() / rr.mean())


def qrs_amplitudes(signal: np.ndarray, peaks: np.ndarray, fs: float, half_width_s: float = 0.06) -> np.ndarray:
    """Per lead, the largest peak-to-peak value within +-60 ms of an R peak (mV)."""
    half = int(half_width_s * fs)
    inner = [p for p in peaks if half <= p < signal.shape[1] - half]
    if not inner:
        return np.zeros(signal.shape[0])
    windows = np.stack([signal[:, p - half : p + half + 1] for p in inner])  # beats x leads x window
    return np.ptp(windows, axis=2).max(axis=0)


def _isoelectric_level(lead: np.ndarray) -> float:
    """The most frequent value (10 µV bins): the flat segments between waves."""
    counts, edges = np.histogram(lead, bins=max(1, int(np.ptp(lead) / 0.01)))
    peak = int(np.argmax(counts))
    return float((edges[peak] + edges[peak + 1]) / 2)


def _simulate_clean(rhythm: Rhythm, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    rate = float(rng.uniform(*rhythm.rate))
    amplitudes = ecgsyn.WAVE_AMPLITUDES if rhythm.p_waves else np.asarray(ECGSYN_AI_NO_P)
    signal = ecgsyn.simulate(
        DURATION_S + SETTLE_S,
        FS,
        heart_rate=rate,
        heart_rate_std=float(rng.uniform(*rhythm.rr_cv)) * rate,
        rng=rng,
        lf_hf=rhythm.lfhf_ratio,
        amplitudes=amplitudes,
    )[:, SETTLE_S * FS :]
    signal -= np.array([_isoelectric_level(lead) for lead in signal])[:, None]
    return signal, rate


def _scale_leads(signal: np.ndarray, peaks: np.ndarray, low_voltage: bool, rng: np.random.Generator) -> np.ndarray:
    """Give each lead a realistic amplitude; low voltage keeps every QRS under the LQRSV thresholds."""
    limb_range, precordial_range = ((0.25, 0.45), (0.45, 0.9)) if low_voltage else ((0.8, 1.8), (1.4, 2.8))
    targets = np.concatenate([rng.uniform(*limb_range, 6), rng.uniform(*precordial_range, 6)])
    scaled = signal * (targets / np.ptp(signal, axis=1))[:, None]
    if not low_voltage:
        qrs = qrs_amplitudes(scaled, peaks, FS)
        scaled[LIMB] *= max(1.0, 0.6 / qrs[LIMB].max())
        scaled[PRECORDIAL] *= max(1.0, 1.2 / qrs[PRECORDIAL].max())
    return scaled


def _fibrillatory_waves(rng: np.random.Generator, num_samples: int) -> np.ndarray:
    """4-8 Hz f-waves with a wandering frequency, strongest in V1 and the inferior leads."""
    t = np.arange(num_samples) / FS
    base = rng.uniform(4.5, 7.5)
    wander = np.cumsum(rng.normal(0, 0.02, num_samples))
    wander = np.clip(wander - wander.mean(), -1.0, 1.0)
    phase = 2 * np.pi * np.cumsum(base + wander) / FS
    wave = np.sin(phase + rng.uniform(0, 2 * np.pi)) * (1 + 0.3 * np.sin(2 * np.pi * 0.2 * t + rng.uniform(0, 6.3)))
    weights = np.array([0.3, 0.7, 0.7, 0.4, 0.3, 0.7, 1.0, 0.6, 0.4, 0.3, 0.3, 0.3])
    return rng.uniform(0.03, 0.07) * weights[:, None] * wave[None, :]


def _noise(rng: np.random.Generator, num_samples: int) -> np.ndarray:
    """Baseline wander (0.05-0.5 Hz), broadband muscle noise and, in half the records, mains hum."""
    t = np.arange(num_samples) / FS
    leads = len(TWELVE_LEADS)
    noise = np.zeros((leads, num_samples))
    breathing = np.sin(2 * np.pi * rng.uniform(0.15, 0.4) * t + rng.uniform(0, 2 * np.pi))
    noise += rng.uniform(0.01, 0.08, (leads, 1)) * breathing
    for _ in range(2):
        drift = np.sin(2 * np.pi * rng.uniform(0.05, 0.15) * t[None, :] + rng.uniform(0, 2 * np.pi, (leads, 1)))
        noise += rng.uniform(0.0, 0.1, (leads, 1)) * drift
    muscle = rng.normal(0.0, 1.0, (leads, num_samples))
    muscle = (muscle + np.roll(muscle, 1, axis=1)) / np.sqrt(2)  # a little smoother than white
    noise += rng.uniform(0.003, 0.015) * muscle
    if rng.random() < 0.5:
        mains = rng.choice([50.0, 60.0])
        noise += rng.uniform(0.002, 0.012, (leads, 1)) * np.sin(2 * np.pi * mains * t + rng.uniform(0, 6.3))
    return noise


def _measured_ok(rhythm: Rhythm, rate: float, rr_range: float, rr_cv: float) -> bool:
    return (
        np.isfinite(rate)
        and rhythm.accept_rate[0] <= rate <= rhythm.accept_rate[1]
        and rhythm.accept_rr_range[0] <= rr_range <= rhythm.accept_rr_range[1]
        and rr_cv >= rhythm.min_rr_cv
    )


def _low_voltage_ok(clean: np.ndarray, peaks: np.ndarray, low_voltage: bool) -> bool:
    qrs = qrs_amplitudes(clean, peaks, FS)
    if low_voltage:
        return bool(qrs[LIMB].max() < 0.5 and qrs[PRECORDIAL].max() < 1.0)
    return bool(qrs[LIMB].max() >= 0.6 and qrs[PRECORDIAL].max() >= 1.2)


def record_plan(index: int, seed: int) -> tuple[Rhythm, bool]:
    """Rhythm and low-voltage flag of record ``index``: rhythms in equal shares, order shuffled by the seed."""
    block = index // len(RHYTHMS)
    order = np.random.default_rng([seed, block, 7]).permutation(len(RHYTHMS))
    rng = np.random.default_rng([seed, index, 11])
    return RHYTHMS[int(order[index % len(RHYTHMS)])], bool(rng.random() < LOW_VOLTAGE_FRACTION)


def simulate_record(index: int, seed: int = 0) -> SyntheticRecord:
    """Generate record ``index`` of the demo set for ``seed`` (deterministic; independent of other records)."""
    rhythm, low_voltage = record_plan(index, seed)
    rng = np.random.default_rng([seed, index])
    for attempt in range(MAX_ATTEMPTS):
        clean, _ = _simulate_clean(rhythm, rng)
        peaks = r_peaks(clean, FS)
        rate, rr_range, rr_cv = rr_statistics(peaks, FS)
        if not _measured_ok(rhythm, rate, rr_range, rr_cv):
            log.debug(
                "record %d attempt %d: %s measured %.1f bpm, RR range %.3f s",
                index,
                attempt,
                rhythm.name,
                rate,
                rr_range,
            )
            continue
        clean = _scale_leads(clean, peaks, low_voltage, rng)
        if not _low_voltage_ok(clean, peaks, low_voltage):
            continue
        if not rhythm.p_waves:
            clean = clean + _fibrillatory_waves(rng, clean.shape[1])
        signal = (clean + _noise(rng, clean.shape[1])).astype(np.float32)
        labels = rhythm.labels + ((LQRSV,) if low_voltage else ())
        return SyntheticRecord(
            name=f"SYN{index + 1:05d}",
            signal=signal,
            fs=FS,
            labels=labels,
            age=int(rng.integers(18, 91)),
            sex=str(rng.choice(["Male", "Female"])),
            rhythm=rhythm.name,
            low_voltage=low_voltage,
            heart_rate=rate,
            rr_range=rr_range,
            rr_cv=rr_cv,
            attempts=attempt + 1,
        )
    raise RuntimeError(
        f"record {index} (seed {seed}): no {rhythm.name} draw passed its checks in {MAX_ATTEMPTS} attempts"
    )


def _generate_and_write(index: int, seed: int, out_dir: Path) -> tuple[str, tuple[str, ...]]:
    record = simulate_record(index, seed)
    write_challenge_record(
        out_dir, record.name, record.signal, record.fs, TWELVE_LEADS, record.age, record.sex, record.labels
    )
    return record.name, record.labels


def make_demo_set(
    out_dir: str | Path, n_records: int = 300, seed: int = 0, jobs: int = -1, progress: bool = True
) -> dict[str, int]:
    """Write ``n_records`` synthetic records into ``out_dir``; returns how many records carry each label."""
    if n_records < 1:
        raise ValueError(f"n_records must be at least 1, got {n_records}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = (delayed(_generate_and_write)(index, seed, out) for index in range(n_records))
    results = Parallel(n_jobs=jobs, return_as="generator")(tasks)
    counts: Counter = Counter()
    for _, labels in progress_bar(results, total=n_records, desc="synthetic", unit="rec", enabled=progress):
        counts.update(labels)
    return dict(sorted(counts.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecgdata.synthetic", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="folder for the Challenge-format records")
    parser.add_argument("--records", type=int, default=300, help="number of records (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed -> identical files)")
    parser.add_argument("--jobs", type=int, default=-1, help="parallel workers (-1: all cores)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    start = time.perf_counter()
    counts = make_demo_set(args.out_dir, args.records, args.seed, args.jobs)
    elapsed = time.perf_counter() - start
    described = ", ".join(f"{code} {count}" for code, count in counts.items())
    print(
        f"wrote {args.records} records to {args.out_dir} in {elapsed:.1f} s ({args.records / elapsed:.1f} records/s); labels: {described}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
