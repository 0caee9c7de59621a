"""``ecg-classify MODEL FILE...``: classify your own ECG files and print, save or report the results.

Every file is classified on its own: one that cannot be read or classified prints ``file: problem``
on stderr and the others go on (the exit status is then 1). Results go to the terminal as a table,
and with ``--json``/``--csv`` to a file; ``--report DIR`` writes each record's figure (ECG paper with
the delineation, predicted classes and where the network looked) and one HTML page.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from ecgclassify.api import MEASUREMENTS, Classifier, Result
from ecgclassify.windows import clock
from ecgio.errors import RecordError
from ecgio.files import atomic_write
from ecgio.formats import FORMATS

log = logging.getLogger("ecg-classify")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="ecg-classify",
        description="Classify ECG files (WFDB, Challenge .hea/.mat, EDF/EDF+/BDF, CSV, .npy) with a trained model folder.",
    )
    ap.add_argument("model", help="trained model folder (train_model.py output)")
    ap.add_argument("files", nargs="+", help="ECG files (for WFDB records, the .hea)")
    ap.add_argument("--fs", type=float, help="sampling rate in Hz (required for .npy and CSV without a time column)")
    ap.add_argument("--leads", nargs="+", help="lead names of the file's signals, in order (e.g. I II)")
    ap.add_argument("--units", choices=("mV", "uV"), help="unit of CSV/.npy numbers (default mV); overrides an EDF's")
    ap.add_argument("--gain", type=float, help="ADC units per unit: CSV/.npy numbers are divided by it first")
    ap.add_argument("--format", choices=FORMATS, default="auto", help="file format (default: from the file name)")
    ap.add_argument("--age", type=float, default=math.nan, help="age in years (tabular input; default unknown)")
    ap.add_argument("--sex", choices=("Male", "Female"), help="sex (tabular input; default unknown)")
    out = ap.add_mutually_exclusive_group()
    out.add_argument("--json", type=Path, metavar="OUT", help="write the results as JSON (a list of records)")
    out.add_argument("--csv", type=Path, metavar="OUT", help="write the results as CSV (a row per record and class)")
    ap.add_argument("--report", type=Path, metavar="DIR", help="write each record's figure and an HTML page here")
    ap.add_argument("--device", default="cpu", help="torch device (cpu, cuda, auto)")
    ap.add_argument("--quiet", action="store_true", help="no table on the terminal")
    return ap


def table(result: Result) -> str:
    """The result as text for a terminal."""
    lines = [f"{result.record}: {result.duration_s:.1f} s at {result.fs:g} Hz, leads {' '.join(result.input_leads)}"]
    lines.append(f"  model: the {'-'.join(result.model_leads)} network")
    lines += [f"  note: {note}" for note in result.notes]
    parts = []
    for name, unit, label in MEASUREMENTS:
        value = result.measurements.get(name)
        text = "-" if value is None else (f"{value:.0%}" if name == "p_presence" else f"{value:.0f}")
        parts.append(f"{label} {text}{'' if unit == '1' or value is None else ' ' + unit}")
    lines.append("  " + ", ".join(parts))
    lines.append(f"  {'':2}{'abbr':8}{'probability':>12}{'threshold':>10}  code / name")
    for d in sorted(result.diagnoses, key=lambda d: -d.probability):
        mark = "*" if d.decision else " "
        lines.append(f"  {mark:2}{d.abbreviation:8}{d.probability:12.3f}{d.threshold:10.3f}  {d.code} {d.name}")
    for item in result.summary:
        spans = ", ".join(f"{clock(a)}-{clock(b)}" for a, b in item["episodes"][:6])
        more = f" (+{len(item['episodes']) - 6} more)" if len(item["episodes"]) > 6 else ""
        lines.append(f"  {item['label']}: {item['segments']} segments ({item['share']:.0%}): {spans}{more}")
    return "\n".join(lines)


def csv_text(results: Sequence[Result]) -> str:
    """A row per record and class, with the record's lead set and measurements repeated on each row."""
    buffer = io.StringIO()
    names = [name for name, _, _ in MEASUREMENTS]
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "record",
            "model_leads",
            "code",
            "abbreviation",
            "name",
            "probability",
            "threshold",
            "decision",
            *names,
            "notes",
        ]
    )
    for result in results:
        values = ["" if result.measurements.get(n) is None else result.measurements[n] for n in names]
        for d in result.diagnoses:
            writer.writerow(
                [result.record, "-".join(result.model_leads), d.code, d.abbreviation, d.name, f"{d.probability:.6f}",
                 f"{d.threshold:.6f}", int(d.decision), *values, "; ".join(result.notes)]
            )  # fmt: skip
    return buffer.getvalue()


def write_outputs(results: Sequence[Result], json_path: Path | None, csv_path: Path | None) -> None:
    if json_path is not None:
        atomic_write(json_path, json.dumps([r.to_dict() for r in results], indent=2).encode())
    if csv_path is not None:
        atomic_write(csv_path, csv_text(results).encode())


def run(args: argparse.Namespace) -> int:
    """Classify every file; a failure is reported and the batch goes on. 0 when all succeed, else 1."""
    from ecglog import progress

    try:
        classifier = Classifier.load(args.model, device=args.device)
    except (OSError, ValueError) as error:
        print(f"ecg-classify: {error}", file=sys.stderr)
        return 2
    results: list[Result] = []
    failed: list[str] = []
    options = {"fs": args.fs, "leads": args.leads, "units": args.units, "gain": args.gain}
    for path in progress(args.files, desc="classifying", unit="file", enabled=len(args.files) > 3):
        try:
            result = classifier.classify_file(path, format=args.format, age=args.age, sex=args.sex, **options)
        except Exception as error:  # one bad file never stops the batch: its problem is printed instead
            message = str(error) if isinstance(error, RecordError) else f"{path}: {type(error).__name__}: {error}"
            print(message, file=sys.stderr)
            failed.append(message)
            continue
        results.append(result)
        if not args.quiet:
            print(table(result) + "\n")
    write_outputs(results, args.json, args.csv)
    if args.report is not None and results:
        from ecgclassify.report import write_report

        page = write_report(classifier, results, args.report)
        print(f"report: {page}")
    print(f"{len(results)} of {len(args.files)} files classified" + (f", {len(failed)} failed" if failed else ""))
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return run(parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
