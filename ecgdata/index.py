"""A table of every record in a Challenge data folder, built from the headers alone.

One pass over the ``.hea`` files (recursive, so the g1..gN subfolders of the Challenge release are
found), no signal is read: record name, path, source (from the name prefix), sampling rate, length,
leads, age, sex, ``#Dx`` labels and the 26 scored-class targets (equivalent codes merged by
:func:`ecgscore.classes.labels_to_targets`). Saved beside the data as ``dataset_index.csv`` and
loaded back without touching the headers again. Bad headers are reported and skipped.

Usage: ``python -m ecgdata.index DATA_DIR [--output PATH] [--rebuild]``: prints the per-source
class counts.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecgio import RecordError, find_records, read_header
from ecgio.files import atomic_write
from ecglog.progress import progress as progress_bar
from ecgscore.classes import ABBREVIATIONS, DIAGNOSES, labels_to_targets, scored_classes

log = logging.getLogger(__name__)

INDEX_NAME = "dataset_index.csv"
#: Name prefix -> source database, as the Challenge named its training records (and LUDB as imported here).
PREFIX_SOURCES = {
    "A": "CPSC",
    "Q": "CPSC-Extra",
    "I": "StPetersburg",
    "S": "PTB",
    "HR": "PTB-XL",
    "E": "Georgia",
    "LU": "LUDB",  # not a Challenge source: ecgdata.ludb_challenge names LUDB records LUnnnnn
    "SYN": "Synthetic",
}
#: JS00001-JS10646 are Chapman-Shaoxing, JS10647 onwards Ningbo.
LAST_CHAPMAN_NUMBER = 10646
SOURCE_ORDER = (
    "CPSC",
    "CPSC-Extra",
    "StPetersburg",
    "PTB",
    "PTB-XL",
    "Georgia",
    "Chapman-Shaoxing",
    "Ningbo",
    "LUDB",
    "Synthetic",
    "unknown",
)
_NAME_RE = re.compile(r"^([A-Za-z]+)(\d+)$")
COLUMNS = ("record", "path", "source", "fs", "samples", "leads", "age", "sex", "labels")


def source_of(record_name: str) -> str:
    """The database a Challenge record comes from, by its name prefix; ``'unknown'`` otherwise."""
    match = _NAME_RE.match(record_name)
    if match is None:
        return "unknown"
    prefix, number = match.group(1), int(match.group(2))
    if prefix == "JS":
        return "Chapman-Shaoxing" if number <= LAST_CHAPMAN_NUMBER else "Ningbo"
    return PREFIX_SOURCES.get(prefix, "unknown")


@dataclass
class DatasetIndex:
    """Column-wise table of records; row ``i`` of every field describes record ``i``.

    ``targets`` is bool (N, 26) in weights.csv order; ``skipped`` lists ``'<path>: <problem>'`` for
    headers that could not be read.
    """

    records: list[str]
    paths: list[Path]
    sources: list[str]
    fs: np.ndarray
    samples: np.ndarray
    leads: list[tuple[str, ...]]
    ages: np.ndarray
    sexes: list[str | None]
    labels: list[tuple[str, ...]]
    targets: np.ndarray
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def class_counts(self) -> dict[str, np.ndarray]:
        """Per source (in :data:`SOURCE_ORDER`), how many records are positive for each scored class."""
        counts = {}
        sources = np.asarray(self.sources, dtype=object)
        for source in sorted(set(self.sources), key=_source_rank):
            counts[source] = self.targets[sources == source].sum(axis=0).astype(np.int64)
        return counts

    def report(self) -> str:
        """A text table: scored classes (rows) by source (columns), with record totals."""
        counts = self.class_counts()
        sources = list(counts)
        header = ["class", "code"] + sources + ["total", "diagnosis"]
        rows = [header]
        sources_array = np.asarray(self.sources, dtype=object)
        rows.append(["records", ""] + [str(int(np.sum(sources_array == s))) for s in sources] + [str(len(self)), ""])
        for k, (abbreviation, codes) in enumerate(zip(ABBREVIATIONS, scored_classes())):
            values = [int(counts[s][k]) for s in sources]
            row = [abbreviation, "|".join(sorted(codes))] + [str(v) for v in values] + [str(sum(values))]
            rows.append(row + [DIAGNOSES[k]])
        rows.append(
            ["no scored class", ""]
            + [str(int(np.sum(~self.targets[sources_array == s].any(axis=1)))) for s in sources]
            + [str(int(np.sum(~self.targets.any(axis=1)))), ""]
        )
        widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
        lines = [
            "  ".join(
                cell.ljust(w) if c < 2 or c == len(header) - 1 else cell.rjust(w)
                for c, (cell, w) in enumerate(zip(row, widths))
            ).rstrip()
            for row in rows
        ]
        if self.skipped:
            lines.append(f"{len(self.skipped)} header(s) skipped as unreadable")
        return "\n".join(lines)

    def save(self, path: str | Path) -> Path:
        """Write the table as CSV (paths relative to the CSV's folder when inside it); atomic."""
        path = Path(path)
        base = path.parent.resolve()
        stream = io.StringIO(newline="")
        writer = csv.writer(stream)
        writer.writerow(COLUMNS + ABBREVIATIONS)
        for i in range(len(self)):
            writer.writerow(self._row(i, base))
        atomic_write(path, stream.getvalue())
        return path

    def _row(self, i: int, base: Path) -> list[str]:
        resolved = self.paths[i].resolve()
        stored = resolved.relative_to(base) if resolved.is_relative_to(base) else resolved
        age = "" if math.isnan(self.ages[i]) else f"{self.ages[i]:g}"
        flags = ["1" if value else "0" for value in self.targets[i]]
        return [
            self.records[i],
            stored.as_posix(),
            self.sources[i],
            f"{self.fs[i]:g}",
            str(int(self.samples[i])),
            " ".join(self.leads[i]),
            age,
            self.sexes[i] or "",
            " ".join(self.labels[i]),
        ] + flags

    @classmethod
    def load(cls, path: str | Path) -> DatasetIndex:
        """Read a table written by :meth:`save`; raises ValueError naming the file when it does not match."""
        path = Path(path)
        base = path.parent.resolve()
        with path.open(newline="", encoding="utf-8") as stream:
            reader = csv.reader(stream)
            header = tuple(next(reader, ()))
            if header != COLUMNS + ABBREVIATIONS:
                raise ValueError(f"{path}: not a dataset index (unexpected columns)")
            rows = list(reader)
        width = len(header)
        for number, row in enumerate(rows, start=2):
            if len(row) != width:
                raise ValueError(f"{path}: line {number} has {len(row)} fields, expected {width}")
        try:
            return cls(
                records=[row[0] for row in rows],
                paths=[base / row[1] for row in rows],
                sources=[row[2] for row in rows],
                fs=np.array([float(row[3]) for row in rows], dtype=np.float64),
                samples=np.array([int(row[4]) for row in rows], dtype=np.int64),
                leads=[tuple(row[5].split()) for row in rows],
                ages=np.array([float(row[6]) if row[6] else math.nan for row in rows], dtype=np.float64),
                sexes=[row[7] or None for row in rows],
                labels=[tuple(row[8].split()) for row in rows],
                targets=np.array([[flag == "1" for flag in row[9:]] for row in rows], dtype=bool).reshape(
                    len(rows), len(ABBREVIATIONS)
                ),
            )
        except ValueError as error:
            raise ValueError(f"{path}: unreadable value ({error})") from None


def _source_rank(source: str) -> tuple[int, str]:
    return (SOURCE_ORDER.index(source) if source in SOURCE_ORDER else len(SOURCE_ORDER), source)


def build_index(folder: str | Path, progress: bool = True) -> DatasetIndex:
    """Index every record under ``folder`` (recursively) from its header; unreadable headers are skipped."""
    headers = find_records(folder, recursive=True)
    fields: dict[str, list] = {
        name: []
        for name in ("records", "paths", "sources", "fs", "samples", "leads", "ages", "sexes", "labels", "targets")
    }
    skipped: list[str] = []
    for path in progress_bar(headers, desc="index", unit="hdr", enabled=progress):
        try:
            header = read_header(path)
        except RecordError as error:
            skipped.append(str(error))
            log.warning("skipped: %s", error)
            continue
        fields["records"].append(path.stem)
        fields["paths"].append(path)
        fields["sources"].append(source_of(path.stem))
        fields["fs"].append(header.fs)
        fields["samples"].append(header.num_samples)
        fields["leads"].append(header.leads)
        fields["ages"].append(header.age)
        fields["sexes"].append(header.sex)
        fields["labels"].append(header.labels)
        fields["targets"].append(labels_to_targets(header.labels))
    count = len(fields["records"])
    return DatasetIndex(
        records=fields["records"],
        paths=fields["paths"],
        sources=fields["sources"],
        fs=np.asarray(fields["fs"], dtype=np.float64),
        samples=np.asarray(fields["samples"], dtype=np.int64),
        leads=fields["leads"],
        ages=np.asarray(fields["ages"], dtype=np.float64),
        sexes=fields["sexes"],
        labels=fields["labels"],
        targets=np.asarray(fields["targets"], dtype=bool).reshape(count, len(ABBREVIATIONS)),
        skipped=skipped,
    )


def save_index(index: DatasetIndex, folder: str | Path, fallback: str | Path | None = None) -> Path:
    """Save as ``<folder>/dataset_index.csv``; when the folder is not writable, at ``fallback`` instead."""
    target = Path(folder) / INDEX_NAME
    try:
        return index.save(target)
    except OSError as error:
        if fallback is None:
            raise OSError(
                f"{target}: cannot write the index ({error.strerror or error}); give a fallback path"
            ) from None
        log.info("%s is not writable (%s); saving the index at %s", folder, error.strerror or error, fallback)
        Path(fallback).parent.mkdir(parents=True, exist_ok=True)
        return index.save(fallback)


def load_or_build(
    folder: str | Path, fallback: str | Path | None = None, rebuild: bool = False, progress: bool = True
) -> tuple[DatasetIndex, Path]:
    """The index of ``folder``: loaded from a saved CSV when one exists and still lists as many
    records as the folder holds, else built and saved. Returns (index, where it is saved)."""
    candidates = [Path(folder) / INDEX_NAME] + ([Path(fallback)] if fallback is not None else [])
    if not rebuild:
        expected = len(find_records(folder, recursive=True))
        for candidate in candidates:
            if candidate.is_file():
                try:
                    index = DatasetIndex.load(candidate)
                except ValueError as error:
                    log.warning("%s; rebuilding", error)
                    continue
                if len(index) == expected:
                    return index, candidate
                log.info("%s lists %d records, the folder has %d headers: rebuilding", candidate, len(index), expected)
    index = build_index(folder, progress=progress)
    return index, save_index(index, folder, fallback)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecgdata.index", description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="Challenge data folder (searched recursively)")
    parser.add_argument(
        "--output", type=Path, default=Path(INDEX_NAME), help="where to save when DATA_DIR is read-only"
    )
    parser.add_argument("--rebuild", action="store_true", help="re-read the headers even if an index is saved")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    start = time.perf_counter()
    try:
        index, saved = load_or_build(args.data_dir, fallback=args.output, rebuild=args.rebuild)
    except (RecordError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - start
    print(index.report())
    print(f"{len(index)} records indexed in {elapsed:.1f} s; saved at {saved}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
