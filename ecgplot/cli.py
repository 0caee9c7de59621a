"""Command line: draw a record as ECG paper, with its fiducial marks.

::

    python -m ecgplot RECORD -o OUT.png [--seconds 10] [--no-marks]      (installed: ecg-plot)

A record is given by any of its file names (``x``, ``x.hea``, ``x.mat``, ``x.dat``). It is read with
:func:`ecgio.read_record`, delineated by :func:`ecgsignal.records.delineate_record` (unless
``--no-marks``) and drawn by :func:`ecgplot.ecg_paper.plot_ecg_paper`. A bad record is reported on
stderr as ``error: <file>: <problem>``; the exit status is 1 then, 2 for usage errors (a folder
included), 0 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from ecgio import RecordError, read_record
from ecgplot.ecg_paper import plot_ecg_paper
from ecgsignal.records import delineate_record


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ecgplot", description="Draw a record as ECG paper (3x4 + lead-II rhythm strip) to PNG."
    )
    parser.add_argument("record", help="record file (x, x.hea, x.mat, x.dat)")
    parser.add_argument("-o", "--output", required=True, help="PNG file to write")
    parser.add_argument("--seconds", type=float, default=10.0, help="shown duration (default 10 s)")
    parser.add_argument("--no-marks", action="store_true", help="do not delineate or mark fiducial points")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (``python -m ecgplot``, ``ecg-plot``); returns the exit status."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    path = Path(args.record)
    if path.is_dir():
        print(f"error: {path}: is a folder; plot draws one record (give its .hea, .mat or .dat)", file=sys.stderr)
        return 2
    try:
        record = read_record(path)
        delineation = None if args.no_marks else delineate_record(record)
        plot_ecg_paper(record, delineation, path=args.output, seconds=args.seconds)
    except Exception as error:
        problem = str(error) if isinstance(error, RecordError) else f"{path}: {type(error).__name__}: {error}"
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


__all__ = ["build_parser", "main"]
