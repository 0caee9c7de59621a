"""PTB-XL -> Challenge-format records (``HRnnnnn.hea`` + ``.mat``), as the 2021 Challenge's PTB-XL subset.

Labels: every SCP statement of a record, whatever its likelihood (the Challenge's PTB-XL headers
carry statements given with likelihood 0, e.g. HR06000's ``SR``), mapped through the table shipped
beside this module (``ptbxl_to_snomed.csv``), plus the electrical axis from the ``heart_axis``
column (LAD/ALAD -> 39732003, RAD/ARAD -> 47665007). Statements without a SNOMED code are dropped
and counted in the summary.

Age: PTB-XL writes 300 for patients older than 89 (de-identification); we write 90, the lowest
age consistent with it, so the "elderly" information survives without inventing a number.
Sex: PTB-XL codes 0 = male, 1 = female.

Usage: ``python -m ecgdata.ptbxl PTBXL_DIR OUT_DIR [--rate 500|100] [--jobs N]``. Re-running skips
records already written and verified (header parses, ``.mat`` has the right shape).
"""

from __future__ import annotations

import argparse
import ast
import csv
import logging
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from joblib import Parallel, delayed

from ecgdata.challenge_format import is_complete_record, write_challenge_record
from ecgio import RecordError, read_record
from ecgio.leads import TWELVE_LEADS
from ecglog.progress import progress as progress_bar

log = logging.getLogger(__name__)

MAPPING_FILE = Path(__file__).resolve().parent / "ptbxl_to_snomed.csv"
#: PTB-XL's de-identified age for "older than 89", and what we write instead.
PTBXL_AGE_OVER_89, AGE_WRITTEN_FOR_OVER_89 = 300.0, 90.0
SEX_CODES = {0: "Male", 1: "Female"}
RATES = {500: "filename_hr", 100: "filename_lr"}


@dataclass(frozen=True)
class SnomedMapping:
    """SCP statement -> SNOMED CT code, and heart_axis value -> SNOMED CT code."""

    statements: dict[str, str]
    axis: dict[str, str]


def load_mapping(path: str | Path = MAPPING_FILE) -> SnomedMapping:
    """Read the mapping table (``#`` comment lines allowed); ``heart_axis=X`` rows go to ``axis``."""
    path = Path(path)
    lines = [
        line for line in path.read_text(encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")
    ]
    statements: dict[str, str] = {}
    axis: dict[str, str] = {}
    for row in csv.DictReader(lines):
        code, snomed = (row.get("scp_code") or "").strip(), (row.get("snomed_code") or "").strip()
        if not code or not snomed:
            raise ValueError(f"{path}: row without scp_code or snomed_code: {row}")
        if code.startswith("heart_axis="):
            axis[code.split("=", 1)[1]] = snomed
        else:
            statements[code] = snomed
    return SnomedMapping(statements, axis)


@dataclass(frozen=True)
class PTBXLRow:
    """What the importer needs from one row of ptbxl_database.csv."""

    ecg_id: int
    age: float
    sex: str | None
    scp_codes: tuple[str, ...]
    heart_axis: str
    strat_fold: int
    filename_hr: str
    filename_lr: str

    @property
    def challenge_name(self) -> str:
        """``HRnnnnn``: the name the Challenge gave this record (ecg_id zero-padded to 5)."""
        return f"HR{self.ecg_id:05d}"


def _parse_age(text: str) -> float:
    try:
        age = float(text)
    except ValueError:
        return math.nan
    if not math.isfinite(age):
        return math.nan
    return AGE_WRITTEN_FOR_OVER_89 if age == PTBXL_AGE_OVER_89 else age


def _parse_row(row: dict[str, str], source: Path) -> PTBXLRow:
    try:
        ecg_id = int(float(row["ecg_id"]))
        scp = ast.literal_eval(row["scp_codes"]) if row["scp_codes"].strip() else {}
        sex_text = row.get("sex", "").strip()
        fold_text = row.get("strat_fold", "").strip()
        return PTBXLRow(
            ecg_id=ecg_id,
            age=_parse_age(row.get("age", "")),
            sex=SEX_CODES.get(int(float(sex_text))) if sex_text else None,
            scp_codes=tuple(str(code) for code in dict(scp)),
            heart_axis=row.get("heart_axis", "").strip(),
            strat_fold=int(float(fold_text)) if fold_text else 0,
            filename_hr=row.get("filename_hr", "").strip(),
            filename_lr=row.get("filename_lr", "").strip(),
        )
    except (KeyError, ValueError, SyntaxError, TypeError) as error:
        raise ValueError(f"{source}: unreadable row ecg_id={row.get('ecg_id')!r} ({error})") from None


def read_database(ptbxl_dir: str | Path) -> list[PTBXLRow]:
    """Rows of ``ptbxl_database.csv``, in file order; a malformed row raises naming the file and ecg_id."""
    path = Path(ptbxl_dir) / "ptbxl_database.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: PTB-XL database table not found (is {ptbxl_dir} a PTB-XL folder?)")
    with path.open(newline="", encoding="utf-8") as stream:
        return [_parse_row(row, path) for row in csv.DictReader(stream)]


def record_labels(row: PTBXLRow, mapping: SnomedMapping) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(SNOMED codes in first-seen order without repeats, statements that have no code)."""
    codes: list[str] = []
    unmapped: list[str] = []
    for statement in row.scp_codes:
        code = mapping.statements.get(statement)
        if code is None:
            unmapped.append(statement)
        elif code not in codes:
            codes.append(code)
    axis_code = mapping.axis.get(row.heart_axis)
    if axis_code is not None and axis_code not in codes:
        codes.append(axis_code)
    return tuple(codes), tuple(unmapped)


@dataclass
class ConversionSummary:
    """Counts of one conversion run; ``unmapped`` counts dropped statements by SCP code."""

    written: int = 0
    skipped: int = 0
    failed: int = 0
    unmapped: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The one-line summary the CLI prints."""
        dropped = sum(self.unmapped.values())
        top = ", ".join(
            f"{code} {count}" for code, count in sorted(self.unmapped.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        return (
            f"written {self.written}, skipped {self.skipped} (already complete), failed {self.failed}; "
            f"statements without a SNOMED code dropped: {dropped}" + (f" ({top})" if top else "")
        )


def _convert_one(
    row: PTBXLRow, ptbxl_dir: Path, out_dir: Path, rate: int, mapping: SnomedMapping
) -> tuple[str, tuple[str, ...], str]:
    """Convert one record: returns (status 'written'|'skipped'|'failed', unmapped statements, error text)."""
    labels, unmapped = record_labels(row, mapping)
    name = row.challenge_name
    target = out_dir / f"{name}.hea"
    if is_complete_record(target, len(TWELVE_LEADS), fs=rate):
        return "skipped", unmapped, ""
    relative = row.filename_hr if rate == 500 else row.filename_lr
    try:
        if not relative:
            raise RecordError(ptbxl_dir / "ptbxl_database.csv", f"ecg_id {row.ecg_id} has no {RATES[rate]}")
        record = read_record(ptbxl_dir / relative)
        if record.leads != TWELVE_LEADS:
            raise RecordError(ptbxl_dir / relative, f"expected the 12 standard leads, found {record.leads}")
        if round(record.fs) != rate:
            raise RecordError(ptbxl_dir / relative, f"sampling frequency {record.fs} Hz, expected {rate} Hz")
        write_challenge_record(out_dir, name, record.signal, record.fs, record.leads, row.age, row.sex, labels)
    except (RecordError, OSError, ValueError) as error:
        return "failed", unmapped, str(error)
    return "written", unmapped, ""


def convert(
    ptbxl_dir: str | Path,
    out_dir: str | Path,
    rate: int = 500,
    jobs: int = 1,
    mapping: SnomedMapping | None = None,
    progress: bool = True,
    limit: int | None = None,
) -> ConversionSummary:
    """Convert every record of ``ptbxl_database.csv`` (the first ``limit`` rows if given) into ``out_dir``.

    One bad record never stops the batch: it is logged and counted as failed.
    """
    if rate not in RATES:
        raise ValueError(f"rate must be one of {sorted(RATES)}, got {rate}")
    source, out = Path(ptbxl_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mapping = mapping or load_mapping()
    rows = read_database(source)[:limit]
    tasks = (delayed(_convert_one)(row, source, out, rate, mapping) for row in rows)
    results = Parallel(n_jobs=jobs, return_as="generator", batch_size=8)(tasks)
    summary = ConversionSummary()
    for status, unmapped, error in progress_bar(results, total=len(rows), desc="PTB-XL", unit="rec", enabled=progress):
        setattr(summary, status, getattr(summary, status) + 1)
        summary.unmapped.update(unmapped)
        if error:
            summary.errors.append(error)
            log.error("%s", error)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ecgdata.ptbxl", description=__doc__.split("\n\n")[0])
    parser.add_argument("ptbxl_dir", type=Path, help="PTB-XL folder (ptbxl_database.csv, records500/ or records100/)")
    parser.add_argument("out_dir", type=Path, help="where the Challenge-format records go")
    parser.add_argument("--rate", type=int, choices=sorted(RATES), default=500, help="sampling rate to import (Hz)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel workers (-1: all cores)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = convert(args.ptbxl_dir, args.out_dir, rate=args.rate, jobs=args.jobs)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary.line())
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
