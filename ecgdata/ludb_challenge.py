"""LUDB -> Challenge-format records (``LUnnnnn.hea`` + ``.mat``), a second labelled source beside the Challenge's.

LUDB (Lobachevsky University ECG Database) gives 200 ten-second 12-lead ECGs at 500 Hz from another
hospital, with the cardiologists' diagnoses in ``ludb.csv``: one column per topic (rhythm, axis,
conduction, extrasystoles, hypertrophies, pacing, ischaemia, repolarisation, other), several
statements per cell, one a line. Each statement goes through the table shipped beside this module
(``ludb_to_snomed.csv``, explained in docs/ludb-mapping.md) to the SNOMED CT codes the Challenge
uses; statements the table leaves out (no Challenge code) or does not know are counted in the summary.

Signals are copied as they are: the int16 samples of the WFDB record with each lead's own gain and
baseline (written as the ADC zero, where the official helper reads the baseline), so the round trip
is exact. LUDB's leads were amplitude-normalised one by one (each spans exactly 1 mV), which the
signal layer recognises, leaving their amplitude features out (docs/ludb-mapping.md). Age: ``>89`` is written 90, as the PTB-XL importer does for its "older than 89". Records
are named ``LU`` + the LUDB number zero-padded to 5 (``LU00001``), a prefix no Challenge source uses.

Usage: ``python -m ecgdata.ludb LUDB_DIR OUT_DIR [--jobs N]`` (or ``ecg-ludb``). LUDB_DIR holds
``ludb.csv`` and the ``data`` folder (the PhysioNet layout). Re-running skips records already written
and verified (header parses, ``.mat`` has the right shape, ``#Dx`` is what the table gives now, so an
edited table takes effect on the next run).
"""

from __future__ import annotations

import argparse
import csv
import logging
import math
import re
import sys
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from joblib import Parallel, delayed

from ecgdata.challenge_format import is_complete_record, write_challenge_adc
from ecgdata.ludb import ludb_data_dir
from ecgio import RecordError, read_header
from ecgio.leads import TWELVE_LEADS, lead_indices
from ecgio.record import load_raw
from ecglog.progress import progress as progress_bar

log = logging.getLogger(__name__)

MAPPING_FILE = Path(__file__).resolve().parent / "ludb_to_snomed.csv"
TABLE_NAME = "ludb.csv"
#: ludb.csv columns that carry diagnoses (every column but ID, Sex and Age).
STATEMENT_COLUMNS: tuple[str, ...] = (
    "Rhythms",
    "Electric axis of the heart",
    "Conduction abnormalities",
    "Extrasystolies",
    "Hypertrophies",
    "Cardiac pacing",
    "Ischemia",
    "Non-specific repolarization abnormalities",
    "Other states",
)
NAME_PREFIX = "LU"
FS = 500.0
SEX_CODES = {"M": "Male", "F": "Female"}
_OVER_AGE = re.compile(r"^>\s*(\d+)$")


def challenge_name(number: int) -> str:
    """``LUnnnnn``: the record's name in the output folder (LUDB number zero-padded to 5)."""
    return f"{NAME_PREFIX}{number:05d}"


@dataclass(frozen=True)
class LudbMapping:
    """``(column, statement)`` -> SNOMED codes (in table order); ``left_out`` the statements mapped to none."""

    codes: dict[tuple[str, str], tuple[str, ...]]
    left_out: frozenset[tuple[str, str]]


def _key(column: str, statement: str) -> tuple[str, str]:
    """Statements are matched on their stripped, case-folded text."""
    return column.strip(), statement.strip().casefold()


def load_mapping(path: str | Path = MAPPING_FILE) -> LudbMapping:
    """Read the mapping table (``#`` comment lines allowed); a row with an empty code leaves its statement out."""
    path = Path(path)
    lines = [
        line for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")
    ]
    codes: dict[tuple[str, str], list[str]] = {}
    left_out: set[tuple[str, str]] = set()
    for number, row in enumerate(csv.DictReader(lines), start=1):
        column, statement = (row.get("column") or "").strip(), (row.get("statement") or "").strip()
        if not column or not statement:
            raise ValueError(f"{path}: data row {number} has no column or statement: {row}")
        key, code = _key(column, statement), (row.get("snomed_code") or "").strip()
        if not code:
            left_out.add(key)
        elif not code.isdigit():
            raise ValueError(f"{path}: data row {number}: SNOMED code {code!r} is not a number")
        elif code not in codes.setdefault(key, []):
            codes[key].append(code)
    both = left_out & set(codes)
    if both:
        raise ValueError(f"{path}: statements both mapped and left out: {sorted(both)}")
    return LudbMapping({key: tuple(value) for key, value in codes.items()}, frozenset(left_out))


@dataclass(frozen=True)
class LudbRow:
    """One row of ludb.csv: the record number, age, sex and its ``(column, statement)`` pairs in table order."""

    number: int
    age: float
    sex: str | None
    statements: tuple[tuple[str, str], ...]


def parse_age(text: str) -> float:
    """``'51\\n'`` -> 51; ``'>89'`` -> 90 (the lowest age it allows); anything else unreadable -> NaN."""
    text = text.strip()
    over = _OVER_AGE.match(text)
    if over:
        return float(over.group(1)) + 1.0
    try:
        age = float(text)
    except ValueError:
        return math.nan
    return age if math.isfinite(age) else math.nan


def _parse_row(row: dict[str, str], source: Path) -> LudbRow:
    try:
        number = int(row["ID"].strip())
    except (KeyError, ValueError, AttributeError):
        raise ValueError(f"{source}: row without a numeric ID: {row.get('ID')!r}") from None
    statements = tuple(
        (column, line.strip())
        for column in STATEMENT_COLUMNS
        for line in (row.get(column) or "").splitlines()
        if line.strip()
    )
    sex = SEX_CODES.get((row.get("Sex") or "").strip().upper())
    return LudbRow(number, parse_age(row.get("Age") or ""), sex, statements)


def table_path(ludb_dir: str | Path) -> Path:
    """``ludb.csv`` in LUDB_DIR (or beside it, when LUDB_DIR is the ``data`` folder)."""
    root = Path(ludb_dir)
    for candidate in (root / TABLE_NAME, root.parent / TABLE_NAME):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{root / TABLE_NAME}: LUDB diagnosis table not found (is {root} a LUDB folder?)")


def read_table(ludb_dir: str | Path) -> list[LudbRow]:
    """Rows of ``ludb.csv`` in file order; a missing table or column raises naming the file."""
    path = table_path(ludb_dir)
    with path.open(newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        missing = [name for name in ("ID", "Sex", "Age", *STATEMENT_COLUMNS) if name not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: columns missing: {', '.join(missing)}")
        return [_parse_row(row, path) for row in reader]


def record_labels(row: LudbRow, mapping: LudbMapping) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(SNOMED codes in first-seen order without repeats, statements left out by the table, statements it lacks)."""
    codes: list[str] = []
    left_out: list[str] = []
    unknown: list[str] = []
    for column, statement in row.statements:
        key = _key(column, statement)
        if key in mapping.left_out:
            left_out.append(statement)
        elif key not in mapping.codes:
            unknown.append(f"{column}: {statement}")
        for code in mapping.codes.get(key, ()):
            if code not in codes:
                codes.append(code)
    return tuple(codes), tuple(left_out), tuple(unknown)


@dataclass
class ConversionSummary:
    """Counts of one run; ``left_out``/``unknown`` count statements without a code, by text."""

    written: int = 0
    skipped: int = 0
    failed: int = 0
    left_out: Counter = field(default_factory=Counter)
    unknown: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        text = (
            f"written {self.written}, skipped {self.skipped} (already complete), failed {self.failed}; "
            f"statements left out by the mapping: {sum(self.left_out.values())}"
        )
        if self.unknown:
            top = ", ".join(f"{s!r} {n}" for s, n in sorted(self.unknown.items(), key=lambda kv: (-kv[1], kv[0])))
            text += f"; statements not in the mapping table: {sum(self.unknown.values())} ({top})"
        return text


def _up_to_date(target: Path, labels: tuple[str, ...]) -> bool:
    """A record already written whole and with the labels the table gives now (an edited table redoes it)."""
    if not is_complete_record(target, len(TWELVE_LEADS), fs=FS):
        return False
    try:
        return read_header(target).labels == labels
    except (RecordError, OSError):
        return False


def _convert_one(row: LudbRow, data_dir: Path, out_dir: Path, mapping: LudbMapping) -> tuple[str, tuple, tuple, str]:
    """Convert one record: (status 'written'|'skipped'|'failed', left-out statements, unknown statements, error)."""
    labels, left_out, unknown = record_labels(row, mapping)
    name = challenge_name(row.number)
    if _up_to_date(out_dir / f"{name}.hea", labels):
        return "skipped", left_out, unknown, ""
    source = data_dir / f"{row.number}.hea"
    try:
        if not source.is_file():
            raise RecordError(source, f"record {row.number} of {TABLE_NAME} has no header file")
        raw, header = load_raw(source)
        rows = lead_indices(header.leads, TWELVE_LEADS)
        if None in rows or len(header.leads) != len(TWELVE_LEADS):
            raise RecordError(source, f"expected the 12 standard leads, found {header.leads}")
        if abs(header.fs - FS) > 1e-6:
            raise RecordError(source, f"sampling frequency {header.fs} Hz, expected {FS:g} Hz")
        order = [index for index in rows if index is not None]
        write_challenge_adc(
            out_dir,
            name,
            raw[order],
            header.fs,
            TWELVE_LEADS,
            [header.gains[i] for i in order],
            [round(header.baselines[i]) for i in order],
            row.age,
            row.sex,
            labels,
        )
    except (RecordError, OSError, ValueError) as error:
        text = str(error)
        return "failed", left_out, unknown, text if str(source) in text else f"{source}: {text}"
    return "written", left_out, unknown, ""


def convert(
    ludb_dir: str | Path,
    out_dir: str | Path,
    jobs: int = 1,
    mapping: LudbMapping | None = None,
    progress: bool = True,
    numbers: Collection[int] | None = None,
) -> ConversionSummary:
    """Convert every record listed in ``ludb.csv`` (only the record ``numbers`` if given) into ``out_dir``.

    One bad record never stops the batch: it is logged and counted as failed.
    """
    root, out = Path(ludb_dir), Path(out_dir)
    rows = [row for row in read_table(root) if numbers is None or row.number in numbers]
    data_dir = ludb_data_dir(root)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"{data_dir}: LUDB data folder not found")
    mapping = mapping or load_mapping()
    out.mkdir(parents=True, exist_ok=True)
    tasks = (delayed(_convert_one)(row, data_dir, out, mapping) for row in rows)
    results = Parallel(n_jobs=jobs, return_as="generator", batch_size=8)(tasks)
    summary = ConversionSummary()
    for status, left_out, unknown, error in progress_bar(
        results, total=len(rows), desc="LUDB", unit="rec", enabled=progress
    ):
        setattr(summary, status, getattr(summary, status) + 1)
        summary.left_out.update(left_out)
        summary.unknown.update(unknown)
        if error:
            summary.errors.append(error)
            log.error("%s", error)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecgdata.ludb", description=__doc__.split("\n\n")[0])
    parser.add_argument("ludb_dir", type=Path, help="LUDB folder (ludb.csv and data/ with N.hea + N.dat)")
    parser.add_argument("out_dir", type=Path, help="where the Challenge-format records go")
    parser.add_argument("--jobs", type=int, default=1, help="parallel workers (-1: all cores)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = convert(args.ludb_dir, args.out_dir, jobs=args.jobs)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary.line())
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
