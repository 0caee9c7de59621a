"""What computing the delineator's wavelet transform with PyWavelets costs, against the frequency-domain design.

    python benchmarks/bench_wavelet.py --data DIR [--rounds N]

For every record in DIR: :func:`ecgsignal.preprocess.condition` at the configured rate (250 Hz), then
the scales the delineator asks for (2^2, 2^3, 2^4, all leads at once) by
:func:`ecgsignal.wavelet.dyadic_wavelet_transform` (PyWavelets) and by the frequency-domain transform it
replaced (kept in ``tests/test_wavelet.py`` as the reference), alternated, ``--rounds`` times. Each
record's time is its fastest round (the least disturbed by other work on the machine); the report is
the median over records, and the largest difference between the two transforms relative to each
scale's peak. The last line is exactly ``wavelet ms/record: pywt=X frequency-domain=Y ratio=Z``.
Threads are pinned to one before numpy is imported.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ecgio import find_records, read_record
from ecgsignal.config import SignalConfig
from ecgsignal.preprocess import condition
from ecgsignal.wavelet import dyadic_wavelet_transform
from tests.test_wavelet import reference_transform, worst_gap

SCALES = (2, 3, 4)  # what ecgsignal.delineate asks for


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    config = SignalConfig()
    signals = []
    for path in find_records(args.data):
        record = read_record(path)
        signals.append(condition(record.signal, record.fs, config)[0])
    ours = np.full((len(signals), args.rounds), np.inf)
    theirs = np.full((len(signals), args.rounds), np.inf)
    gap = 0.0
    for round_ in range(args.rounds):
        for i, x in enumerate(signals):
            start = time.perf_counter()
            w = dyadic_wavelet_transform(x, config.fs, SCALES)
            ours[i, round_] = time.perf_counter() - start
            start = time.perf_counter()
            reference = reference_transform(x, config.fs, SCALES)
            theirs[i, round_] = time.perf_counter() - start
            if round_ == 0:
                gap = max(gap, worst_gap(w, reference))
    pywt_ms = float(np.median(ours.min(axis=1))) * 1e3
    fft_ms = float(np.median(theirs.min(axis=1))) * 1e3
    print(f"records: {len(signals)}, rounds: {args.rounds}, largest difference / scale peak: {gap:.2e}")
    print(f"wavelet ms/record: pywt={pywt_ms:.3f} frequency-domain={fft_ms:.3f} ratio={pywt_ms / fft_ms:.2f}")


if __name__ == "__main__":
    main()
