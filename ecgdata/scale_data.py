"""A Challenge-sized training set on disk, made quickly from the real shared records.

    python -m ecgdata.scale_data OUT --records N [--seed S] [--jobs J]   (or benchmarks/make_scale_data.py)

Writes N Challenge-format records (``.hea`` + ``.mat``) into ``OUT/g1``, ``OUT/g2``, ... (at most
``--per-folder`` records each, as the Challenge's data is split), for scale benchmarks: every
record's content is distinct (so neither the feature cache nor any deduplication hides work), and
sources, sampling rates and lengths follow the Challenge 2021 training data (88,253 records):

=============  ========  ==========  ==================  ====================
source         share     name        rate                length
=============  ========  ==========  ==================  ====================
CPSC           7.8 %     A000001     500 Hz              6-60 s (median 12 s)
CPSC-Extra     3.9 %     Q000001     500 Hz              6-60 s (median 12 s)
St Petersburg  0.08 %    I000001     257 Hz              30 min
PTB            0.6 %     S000001     1000 Hz             30-120 s
PTB-XL         24.7 %    HR000001    500 Hz              10 s
Georgia        11.7 %    E000001     500 Hz              10 s
Chapman        11.6 %    JS000001    500 Hz              10 s
Ningbo         39.6 %    JS010647+   500 Hz              10 s
=============  ========  ==========  ==================  ====================

Each record starts from one of the 378 labelled real records in ``../shared/data`` (the 25
Challenge records and the 353 PTB-XL records, labels mapped as :mod:`ecgdata.ptbxl` does) and
keeps its labels; it gets a random circular time shift, a gain per lead (0.8-1.25), a baseline
drift and white noise of 5-20 µV, and is tiled (each repeat shifted anew) and resampled to its
source's length and rate. Same seed, same files. These are for measuring speed and memory, not
for training a useful model: 88,000 records made from 378 carry no more information than 378.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgdata.challenge_format import write_challenge_record
from ecgdata.ptbxl import load_mapping, read_database, record_labels
from ecgio import find_records, read_record
from ecgio.leads import TWELVE_LEADS
from ecglog.progress import progress

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Source:
    """One Challenge source: name prefix, share of the records, sampling rate, length range (s)."""

    name: str
    prefix: str
    share: float
    fs: float
    seconds: tuple[float, float]
    first_number: int = 1


#: Shares from the Challenge 2021 training set's per-source record counts.
SOURCES: tuple[Source, ...] = (
    Source("CPSC", "A", 6877, 500, (6, 60)),
    Source("CPSC-Extra", "Q", 3453, 500, (6, 60)),
    Source("StPetersburg", "I", 74, 257, (1800, 1800)),
    Source("PTB", "S", 516, 1000, (30, 120)),
    Source("PTB-XL", "HR", 21837, 500, (10, 10)),
    Source("Georgia", "E", 10344, 500, (10, 10)),
    Source("Chapman-Shaoxing", "JS", 10247, 500, (10, 10)),
    Source("Ningbo", "JS", 34905, 500, (10, 10), first_number=10647),
)


@dataclass(frozen=True)
class Base:
    """A real record in mV (12 canonical leads) at 500 Hz with its labels."""

    signal: np.ndarray
    fs: float
    age: float
    sex: str | None
    labels: tuple[str, ...]


def load_pool(shared: Path = SHARED) -> list[Base]:
    """The labelled real records beside the checkout: Challenge sample + PTB-XL sample (500 Hz)."""
    if not shared.is_dir():
        raise SystemExit(f"{shared}: the shared real data is not there; run from a checkout beside ../shared")
    pool = []
    for path in find_records(shared / "cinc2021-sample"):
        record = read_record(path)
        pool.append(Base(_twelve(record.signal, record.leads), record.fs, record.age, record.sex, record.labels))
    ptbxl = shared / "ptb-xl-sample"
    mapping = load_mapping()
    for row in read_database(ptbxl):
        record = read_record(ptbxl / row.filename_hr)
        labels, _ = record_labels(row, mapping)
        pool.append(Base(_twelve(record.signal, record.leads), record.fs, row.age, row.sex, labels))
    return pool


@functools.cache
def cached_pool(shared: Path = SHARED) -> list[Base]:
    """:func:`load_pool` once per process (each worker reads the records itself instead of receiving them)."""
    return load_pool(shared)


def _twelve(signal: np.ndarray, leads: tuple[str, ...]) -> np.ndarray:
    out = np.zeros((12, signal.shape[1]), dtype=np.float32)
    for row, lead in enumerate(TWELVE_LEADS):
        if lead in leads:
            out[row] = signal[leads.index(lead)]
    return out


def plan(num_records: int, seed: int) -> list[Source]:
    """The source of every record: the Challenge's shares, in a seeded random order."""
    shares = np.array([s.share for s in SOURCES], dtype=np.float64)
    counts = np.floor(shares / shares.sum() * num_records).astype(int)
    remainder = np.argsort(-(shares / shares.sum() * num_records - counts))[: num_records - counts.sum()]
    counts[remainder] += 1
    order = np.concatenate([np.full(c, k) for k, c in enumerate(counts)])
    np.random.default_rng([seed, 1]).shuffle(order)
    return [SOURCES[k] for k in order]


def _length_s(source: Source, rng: np.random.Generator) -> float:
    low, high = source.seconds
    if low == high:
        return low
    if source.name.startswith("CPSC"):
        return float(np.clip(rng.lognormal(np.log(12.0), 0.5), low, high))
    return float(rng.uniform(low, high))


def synthesize(base: Base, source: Source, rng: np.random.Generator) -> np.ndarray:
    """A distinct variant of ``base`` at the source's rate and a length drawn for it, in mV."""
    seconds = _length_s(source, rng)
    n_base = base.signal.shape[1]
    repeats = int(np.ceil(seconds * base.fs / n_base))
    parts = [np.roll(base.signal, int(rng.integers(n_base)), axis=1) for _ in range(repeats)]
    tiled = np.concatenate(parts, axis=1)[:, : int(round(seconds * base.fs))]
    if source.fs != base.fs:
        t_new = np.arange(int(round(seconds * source.fs))) / source.fs
        t_old = np.arange(tiled.shape[1]) / base.fs
        tiled = np.stack([np.interp(t_new, t_old, lead) for lead in tiled])
    n = tiled.shape[1]
    gains = rng.uniform(0.8, 1.25, (12, 1))
    drift = rng.uniform(0, 0.1, (12, 1)) * np.sin(
        2 * np.pi * rng.uniform(0.05, 0.3) * np.arange(n) / source.fs + rng.uniform(0, 2 * np.pi, (12, 1))
    )
    noise = rng.normal(0, rng.uniform(0.005, 0.02), (12, n))
    return (tiled * gains + drift + noise).astype(np.float32)


def make_record(index: int, source: Source, number: int, out: Path, seed: int) -> str:
    pool = cached_pool()
    rng = np.random.default_rng([seed, index])
    base = pool[int(rng.integers(len(pool)))]
    name = f"{source.prefix}{number:06d}" if source.prefix != "JS" else f"JS{number:05d}"
    signal = synthesize(base, source, rng)
    age = base.age if np.isfinite(base.age) else None
    write_challenge_record(out, name, signal, source.fs, TWELVE_LEADS, age, base.sex, base.labels)
    return name


def make_scale_data(out_dir: Path, num_records: int, seed: int = 0, jobs: int = 2, per_folder: int = 10000) -> float:
    """Write the records; returns records per second (worker start-up, which reads the pool, included)."""
    from joblib import Parallel, delayed

    # Workers import the task from the package (not from __main__), so each caches its own pool.
    from ecgdata.scale_data import make_record as task

    cached_pool()  # fail early when the shared records are missing
    sources = plan(num_records, seed)
    numbers: dict[str, int] = {}
    tasks = []
    for index, source in enumerate(sources):
        numbers[source.name] = numbers.get(source.name, source.first_number - 1) + 1
        folder = out_dir / f"g{index // per_folder + 1}"
        tasks.append(delayed(task)(index, source, numbers[source.name], folder, seed))
    started = time.perf_counter()
    results = Parallel(n_jobs=jobs, return_as="generator", batch_size=64)(tasks)
    for _ in progress(results, total=len(tasks), desc="scale data", unit="rec"):
        pass
    return num_records / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="folder to write g1/, g2/, ... into")
    parser.add_argument("--records", type=int, required=True, help="number of records")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--per-folder", type=int, default=10000, help="records per gN folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.records < 1:
        parser.error("--records must be at least 1")
    rate = make_scale_data(args.out_dir, args.records, args.seed, args.jobs, args.per_folder)
    print(f"scale data: {args.records} records in {args.out_dir}: {rate * 60:.0f} records/min ({args.jobs} jobs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
