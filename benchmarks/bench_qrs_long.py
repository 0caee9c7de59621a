"""QRS detection on long records under the changes of an ambulatory recording: a stress benchmark.

    python benchmarks/bench_qrs_long.py --data ../shared/data/ludb [--split odd] [--pair ii+v5]
                                        [--conditions clean drift ectopy pauses bursts motion all] [--seed 0]

The shared data hold no long record with beat marks, so one is built: the marked part of every
LUDB record of the split (two leads, ``--pair``), each cut 300 ms around its first and last marked
beat, its ends brought to zero (a straight line subtracted) and joined in record order: about 13
minutes and 900 beats per split, with the changes of rhythm, axis and morphology from one patient
to the next that a long recording has over hours. The reference beats are LUDB's (the median over
the 12 leads of each complex's cardiologist QRS marks). Then, each condition on its own and
``all`` together (reproducible from ``--seed``):

* ``drift``: each lead's gain wanders between about 0.25 and 1.6 over minutes (two slow sinusoids
  per lead, periods 1-6 min), as electrode contact and posture change;
* ``ectopy``: a premature ventricular-like beat (broad, 140 ms, biphasic, 1.5x the lead's QRS
  amplitude, of either polarity) at 60 % of the RR interval in one interval in twelve, and added
  to the reference;
* ``pauses``: in one interval in twenty a pause of 1.5-3 s (the signal held at the level between
  the beats, with the record's own small noise), as sinus arrest or a dropped beat;
* ``bursts``: muscle-like noise (:func:`benchmarks.bench_qrs_noise.make_noise` ``ma``) at 0 dB for
  5 s in every 40 s;
* ``motion``: electrode-motion-like noise (``em``) at 6 dB for 10 s in every 60 s.

Detection is the package's (:func:`ecgsignal.delineate.delineate` on the conditioned two leads,
one-minute blocks), scored within 150 ms against the reference (Se, +P; :mod:`ecgdata.ludb`).
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # one thread, set before numpy loads
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_var] = "1"

import argparse
import logging
import sys
import time
from pathlib import Path

from benchmarks.bench_qrs_noise import parse_pair
from ecgdata.ludb import ludb_data_dir, read_ludb, record_numbers, split_numbers
from ecgdata.qrs_long import CONDITIONS, apply, join_records, score
from ecglog.progress import progress
from ecgsignal.config import SignalConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path, help="LUDB folder (or its data/ subfolder)")
    parser.add_argument("--split", choices=("even", "odd", "all"), default="odd", help="even: tune; odd: report")
    parser.add_argument("--pair", type=parse_pair, default=parse_pair("ii+v5"), help="two leads, e.g. ii+v5")
    parser.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS))
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
    base = join_records([read_ludb(data, n) for n in progress(numbers, desc="reading LUDB")], args.pair)
    config = SignalConfig()
    minutes = base.signal.shape[1] / base.fs / 60.0
    print(
        f"LUDB {args.split} split joined: {minutes:.1f} min, {base.beats.size} beats; two-lead QRS detection (150 ms)"
    )
    print(f"{'condition':10s} {'Se':>8s} {'+P':>8s} {'missed':>7s} {'false':>6s} {'beats':>6s} {'min':>5s} {'s':>5s}")
    for condition in args.conditions:
        rec = apply(base, condition, args.seed)
        start = time.perf_counter()
        s = score(rec, config)
        seconds = time.perf_counter() - start
        print(
            f"{condition:10s} {s.sensitivity:8.2%} {s.predictivity:8.2%} {s.marks - s.matched:7d} {s.false:6d} "
            f"{s.marks:6d} {rec.signal.shape[1] / rec.fs / 60.0:5.1f} {seconds:5.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
