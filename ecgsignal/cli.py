"""Command line: delineate records to CSV (drawing them as ECG paper is :mod:`ecgplot.cli`).

::

    python -m ecgsignal delineate RECORD_OR_FOLDER [...] [-o OUT.csv]

A record is given by any of its file names (``x``, ``x.hea``, ``x.mat``, ``x.dat``); a folder
stands for every record in it (recursively). Each record is read with :func:`ecgio.read_record`,
preprocessed at the configured processing rate (:class:`~ecgsignal.config.SignalConfig`, 250 Hz
by default) and delineated by :func:`ecgsignal.records.delineate_record` (exactly what ``prepare``
delineates).

The CSV has one row per (record, beat, lead, wave) with the columns
``record, beat, lead, wave, onset, peak, offset, fs, onset_s, peak_s, offset_s, beat_r, beat_r_s``:
``wave`` is P, QRS or T; the QRS peak is the lead's R point; ``onset``/``peak``/``offset`` are
sample indices **at the record's own rate** ``fs`` (converted back from the processing rate and
rounded, so at 500 Hz they are exact to one processing sample = 2 record samples), the ``_s``
columns the same points in seconds from the record's start; ``beat_r`` is the beat's multi-lead
R peak (voted across leads, the one every lead's row of that beat shares). An absent point is an
empty cell. ``unsure`` names the present points the delineator is unsure of (``onset``, ``peak``,
``offset``, space-separated; :mod:`ecgsignal.confidence`), empty when it is sure of all three.
Beats count from 0 in time order.

A bad record is reported on stderr as ``error: <file>: <problem>`` and skipped; the exit
status is 1 when any record failed, 2 for usage errors, 0 otherwise.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ecgio import Record, RecordError, find_records, read_record
from ecglog.progress import progress as progress_bar
from ecgsignal.records import delineate_record, to_record_rate

log = logging.getLogger(__name__)

CSV_COLUMNS = (
    "record",
    "beat",
    "lead",
    "wave",
    "onset",
    "peak",
    "offset",
    "fs",
    "onset_s",
    "peak_s",
    "offset_s",
    "beat_r",
    "beat_r_s",
    "unsure",
)


def fiducial_rows(record: Record, delineation: Any) -> list[tuple]:
    """CSV rows (see :data:`CSV_COLUMNS`) of one delineated record, at the record's rate."""
    from ecgsignal.delineate import WAVES

    points = np.asarray(delineation.points)
    if points.ndim != 3 or points.shape[1] != len(record.leads):
        raise ValueError(f"{record.path}: delineation has shape {points.shape} for {len(record.leads)} leads")
    fs = float(record.fs)
    at_record = to_record_rate(points, float(delineation.fs), fs, record.num_samples)
    beat_r = to_record_rate(np.asarray(delineation.r_peaks), float(delineation.fs), fs, record.num_samples)
    columns = {wave.name: list(wave.columns) for wave in WAVES}
    unsure = getattr(delineation, "unsure", None)
    unsure = np.zeros(points.shape, dtype=bool) if unsure is None else np.asarray(unsure, dtype=bool)
    rows = []
    for beat in range(at_record.shape[0]):
        r_cells = _sample_and_seconds([int(beat_r[beat])], fs)
        for k, lead in enumerate(record.leads):
            for wave, cols in columns.items():
                samples = [int(v) for v in at_record[beat, k, cols]]
                cells = _sample_and_seconds(samples, fs)
                doubt = " ".join(n for n, u in zip(("onset", "peak", "offset"), unsure[beat, k, cols]) if u)
                rows.append((record.name, beat, lead, wave, *cells[:3], f"{fs:g}", *cells[3:], *r_cells, doubt))
    return rows


def _sample_and_seconds(samples: list[int], fs: float) -> list[str | int]:
    """The samples (empty when absent, i.e. -1), then the same points in seconds (6 decimals)."""
    present = [s >= 0 for s in samples]
    return [s if ok else "" for s, ok in zip(samples, present)] + [
        f"{s / fs:.6f}" if ok else "" for s, ok in zip(samples, present)
    ]


def expand_records(arguments: Iterable[str | Path]) -> list[Path]:
    """Record arguments -> record paths; a folder stands for every record in it."""
    out: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found = find_records(path)
            if not found:
                raise RecordError(path, "folder holds no records (no .hea with a .mat or .dat beside it)")
            out.extend(found)
        else:
            out.append(path)
    return out


def _describe(error: Exception, path: Path) -> str:
    return str(error) if isinstance(error, RecordError) else f"{path}: {type(error).__name__}: {error}"


def write_delineations(
    records: Sequence[Path], out: TextIO, config: Any = None, progress: bool = True
) -> dict[str, str]:
    """Delineate each record and write its rows to ``out``; returns failures (path -> message)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    failures: dict[str, str] = {}
    for path in progress_bar(records, desc="delineating", unit="rec", enabled=progress and len(records) >= 2):
        try:
            record = read_record(path)
            writer.writerows(fiducial_rows(record, delineate_record(record, config)))
        except Exception as error:  # one bad record never stops the batch
            failures[str(path)] = _describe(error, path)
            print(f"error: {failures[str(path)]}", file=sys.stderr)
    return failures


def _cmd_delineate(args: argparse.Namespace) -> int:
    records = expand_records(args.records)
    if args.output in (None, "-"):
        failures = write_delineations(records, sys.stdout, progress=False)
    else:
        with open(args.output, "w", newline="") as handle:
            failures = write_delineations(records, handle, progress=not args.quiet)
    log.info("delineated %d of %d records", len(records) - len(failures), len(records))
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ecgsignal", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("delineate", help="write fiducial points of records as CSV (samples at the record's rate)")
    d.add_argument("records", nargs="+", help="record files (x, x.hea, x.mat, x.dat) or folders of records")
    d.add_argument("-o", "--output", help="CSV file to write (default: stdout)")
    d.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    d.set_defaults(run=_cmd_delineate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except RecordError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def delineate_main() -> int:
    """Console script ``ecg-delineate``: ``python -m ecgsignal delineate ...``."""
    return main(["delineate", *sys.argv[1:]])


__all__ = [
    "CSV_COLUMNS",
    "delineate_main",
    "delineate_record",
    "expand_records",
    "fiducial_rows",
    "main",
    "to_record_rate",
]
