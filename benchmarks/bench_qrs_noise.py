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
from pathlib import Path

from ecgdata.ludb import LUDB_LEADS, ludb_data_dir, read_ludb, record_numbers, split_numbers
from ecgdata.qrs_stress import NOISES, score_pair
from ecglog.progress import progress
from ecgsignal.config import SignalConfig


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
    numbers = split_numbers(numbers, args.split)
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
