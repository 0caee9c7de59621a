"""LUDB (Lobachevsky University ECG Database) records with their per-lead cardiologist marks, in a tidy form.

Each LUDB lead has its own annotation file (``N.i``, ``N.ii``, ... ``N.v6``): symbols ``p``, ``N``
and ``t`` at the P, QRS and T peaks, each framed by ``(`` (onset) and ``)`` (offset). Here they
become, per lead, one sorted array of sample positions per fiducial (:data:`FIDUCIALS`), plus the
annotated span of that lead: LUDB marks only a central part of many leads, so a detection outside
the span can be neither confirmed nor refuted (benchmarks count false positives only inside it).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgio import Record, read_record

#: Annotation file extensions, in the canonical lead order of :func:`ecgio.read_record`.
LUDB_LEADS: tuple[str, ...] = ("i", "ii", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5", "v6")
#: The nine marked fiducials: wave x (onset, peak, offset).
FIDUCIALS: tuple[str, ...] = (
    "P_on",
    "P_peak",
    "P_off",
    "QRS_on",
    "QRS_peak",
    "QRS_off",
    "T_on",
    "T_peak",
    "T_off",
)
_WAVE_OF_SYMBOL = {"p": "P", "N": "QRS", "t": "T"}


@dataclass(frozen=True)
class LeadMarks:
    """One lead's marks: ``marks[fiducial]`` int64 sorted sample positions; ``span`` (first, last) marked sample."""

    lead: str
    marks: dict[str, np.ndarray]
    span: tuple[int, int]


@dataclass(frozen=True)
class LudbRecord:
    """A LUDB record (signal in mV, canonical lead order) and the marks of each of its leads, in that order."""

    record: Record
    leads: tuple[LeadMarks, ...]


def parse_marks(lead: str, samples: np.ndarray, symbols: list[str]) -> LeadMarks:
    """Turn one annotation stream (``(``, peak symbol, ``)`` triples) into per-fiducial arrays.

    An onset or offset is kept only when it directly frames a peak symbol; a stray bracket (none in
    LUDB 1.0.1, but cheap to guard) is ignored rather than attached to the wrong wave.
    """
    found: dict[str, list[int]] = {name: [] for name in FIDUCIALS}
    for i, symbol in enumerate(symbols):
        wave = _WAVE_OF_SYMBOL.get(symbol)
        if wave is None:
            continue
        peak_name = "QRS_peak" if wave == "QRS" else f"{wave}_peak"
        found[peak_name].append(int(samples[i]))
        if i > 0 and symbols[i - 1] == "(":
            found[f"{wave}_on"].append(int(samples[i - 1]))
        if i + 1 < len(symbols) and symbols[i + 1] == ")":
            found[f"{wave}_off"].append(int(samples[i + 1]))
    marks = {name: np.sort(np.asarray(values, dtype=np.int64)) for name, values in found.items()}
    span = (int(samples.min()), int(samples.max())) if len(samples) else (0, -1)
    return LeadMarks(lead, marks, span)


def record_numbers(data_dir: str | Path) -> list[int]:
    """Record numbers present in ``data_dir`` (the folder of ``N.hea`` files), ascending."""
    folder = Path(data_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: LUDB data folder not found")
    return sorted(int(p.stem) for p in folder.glob("*.hea") if p.stem.isdigit())


def split_numbers(numbers: list[int], split: str) -> list[int]:
    """The record numbers of a split: ``even`` (the records rules are tuned on), ``odd`` (held out, the
    figures to quote) or ``all``."""
    if split not in ("even", "odd", "all"):
        raise ValueError(f"LUDB split {split!r}; expected even, odd or all")
    return [n for n in numbers if split == "all" or (n % 2 == 1) == (split == "odd")]


def read_ludb(data_dir: str | Path, number: int) -> LudbRecord:
    """Record ``number`` of the LUDB ``data`` folder with the marks of all 12 leads.

    Raises ``ValueError`` naming the file when the record is not a 12-lead LUDB record or an
    annotation file is missing or unreadable.
    """
    import wfdb

    base = Path(data_dir) / str(number)
    record = read_record(base.with_suffix(".hea"))
    if len(record.leads) != len(LUDB_LEADS):
        raise ValueError(f"{base}.hea: expected 12 leads, found {len(record.leads)}")
    leads = []
    for ext in LUDB_LEADS:
        path = Path(f"{base}.{ext}")
        if not path.is_file():
            raise ValueError(f"{path}: annotation file missing")
        try:
            ann = wfdb.rdann(str(base), ext)
        except Exception as error:
            raise ValueError(f"{path}: unreadable annotation ({error})") from error
        leads.append(parse_marks(ext, np.asarray(ann.sample), list(ann.symbol)))
    return LudbRecord(record, tuple(leads))


def ludb_data_dir(root: str | Path) -> Path:
    """The folder holding ``N.hea``: ``root`` itself or its ``data`` subfolder (the PhysioNet layout)."""
    root = Path(root)
    return root / "data" if (root / "data").is_dir() else root


def paced_records(root: str | Path) -> frozenset[int]:
    """Record numbers whose ``ludb.csv`` row names a cardiac pacing (empty when the table is absent).

    Paced beats are scored apart because their QRS marks follow a convention of their own (some
    annotators mark the stimulus as the QRS onset or peak) and a few records hold most of the
    multi-lead QRS error.
    """
    root = Path(root)
    table = next((p for p in (root / "ludb.csv", root.parent / "ludb.csv") if p.is_file()), None)
    if table is None:
        return frozenset()
    with table.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if rows and not {"ID", "Cardiac pacing"} <= set(rows[0]):
        raise ValueError(f"{table}: expected the columns 'ID' and 'Cardiac pacing'")
    return frozenset(int(row["ID"]) for row in rows if (row.get("Cardiac pacing") or "").strip())


# --------------------------------------------------------------------------- scoring detections against the marks

#: Matching tolerance (ms): a mark and a detection of the same fiducial further apart than this never match.
TOLERANCE_MS = 150.0
#: Marks of one fiducial in different leads closer than this (ms) belong to the same wave (one beat).
SAME_WAVE_MS = 100.0


def match(reference: np.ndarray, detected: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching, nearest pairs first: (reference index, detected index) of each matched pair.

    Nearest-first rather than in time order, so one detection between two marks goes to the closer
    one, and a mark never takes a detection already closer to another mark.
    """
    reference = np.asarray(reference, dtype=np.int64)
    detected = np.asarray(detected, dtype=np.int64)
    if reference.size == 0 or detected.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    distance = np.abs(reference[:, None] - detected[None, :])
    ri, di = np.nonzero(distance <= tolerance)
    order = np.lexsort((di, ri, distance[ri, di]))
    used_r = np.zeros(reference.size, bool)
    used_d = np.zeros(detected.size, bool)
    pairs_r, pairs_d = [], []
    for r, d in zip(ri[order], di[order]):
        if not used_r[r] and not used_d[d]:
            used_r[r] = used_d[d] = True
            pairs_r.append(r)
            pairs_d.append(d)
    return np.asarray(pairs_r, np.int64), np.asarray(pairs_d, np.int64)


@dataclass
class FiducialScore:
    """Accumulated result for one fiducial: marks, matched marks, unmatched detections in span, errors (ms)."""

    marks: int = 0
    matched: int = 0
    false: int = 0
    errors_ms: list[float] | None = None

    def __post_init__(self) -> None:
        if self.errors_ms is None:
            self.errors_ms = []

    def add(self, reference: np.ndarray, detected: np.ndarray, span: tuple[int, int], fs: float) -> np.ndarray:
        """Score one lead's detections; returns the signed error (ms) of each mark, NaN where unmatched."""
        tolerance = TOLERANCE_MS * fs / 1000.0
        ri, di = match(reference, detected, tolerance)
        errors = np.full(reference.shape, np.nan)
        errors[ri] = (detected[di] - reference[ri]) * 1000.0 / fs
        inside = (detected >= span[0]) & (detected <= span[1])
        unmatched = np.ones(detected.shape, bool)
        unmatched[di] = False
        self.marks += int(reference.size)
        self.matched += int(ri.size)
        self.false += int((inside & unmatched).sum())
        assert self.errors_ms is not None
        self.errors_ms.extend(errors[ri].tolist())
        return errors

    @property
    def sensitivity(self) -> float:
        return self.matched / self.marks if self.marks else float("nan")

    @property
    def predictivity(self) -> float:
        found = self.matched + self.false
        return self.matched / found if found else float("nan")

    def mean_sd(self) -> tuple[float, float]:
        e = np.asarray(self.errors_ms, dtype=np.float64)
        if e.size == 0:
            return float("nan"), float("nan")
        return float(e.mean()), float(e.std(ddof=1)) if e.size > 1 else 0.0

    def merge(self, other: FiducialScore) -> None:
        self.marks += other.marks
        self.matched += other.matched
        self.false += other.false
        assert self.errors_ms is not None and other.errors_ms is not None
        self.errors_ms.extend(other.errors_ms)


def best_lead_errors(marks: list[np.ndarray], errors: list[np.ndarray], fs: float) -> tuple[int, np.ndarray]:
    """Multi-lead ("best lead") result of one fiducial in one record.

    The marks of all leads are grouped into waves (marks within :data:`SAME_WAVE_MS` of each other);
    a wave is found when some lead's mark of it was matched, and its error is the one of smallest
    magnitude among its leads (the protocol of Martinez et al. 2004 on two-lead records).
    Returns (number of waves, error in ms of each found wave).
    """
    pos = np.concatenate([np.asarray(m, np.int64) for m in marks]) if marks else np.zeros(0, np.int64)
    if pos.size == 0:
        return 0, np.zeros(0)
    err = np.concatenate(errors)
    order = np.argsort(pos, kind="stable")
    pos, err = pos[order], err[order]
    wave = np.concatenate([[0], np.cumsum(np.diff(pos) > SAME_WAVE_MS * fs / 1000.0)])
    magnitude = np.where(np.isnan(err), np.inf, np.abs(err))
    found = []
    for w in range(int(wave[-1]) + 1):
        members = np.flatnonzero(wave == w)
        best = members[np.argmin(magnitude[members])]
        if np.isfinite(magnitude[best]):
            found.append(err[best])
    return int(wave[-1]) + 1, np.asarray(found)


def fuse(marks: list[np.ndarray], fs: float, minimum: int = 1) -> np.ndarray:
    """One position per wave from per-lead positions: group (within :data:`SAME_WAVE_MS`), take the median.

    Used for the cardiologists' marks and, alike, for any delineator's per-lead detections, so the
    multi-lead comparison treats both sides the same way. Waves seen in fewer than ``minimum``
    leads are dropped.
    """
    pos = np.sort(np.concatenate([np.asarray(m, np.int64) for m in marks])) if marks else np.zeros(0, np.int64)
    if pos.size == 0:
        return pos
    wave = np.concatenate([[0], np.cumsum(np.diff(pos) > SAME_WAVE_MS * fs / 1000.0)])
    counts = np.bincount(wave)
    fused = [int(np.median(pos[wave == w])) for w in range(counts.size) if counts[w] >= minimum]
    return np.asarray(fused, np.int64)


def reference_beats(ludb: LudbRecord) -> tuple[np.ndarray, tuple[int, int]]:
    """Reference QRS times (median over the leads that mark each complex) and the span marked in any lead."""
    beats = fuse([lead.marks["QRS_peak"] for lead in ludb.leads], ludb.record.fs)
    if beats.size == 0:
        return beats, (0, -1)
    spans = [lead.span for lead in ludb.leads if lead.span[1] >= lead.span[0]]
    return beats, (min(s[0] for s in spans), max(s[1] for s in spans))


if __name__ == "__main__":  # ``python -m ecgdata.ludb LUDB_DIR OUT_DIR``: the Challenge-format importer
    import sys

    from ecgdata import ludb_challenge

    sys.exit(ludb_challenge.main())
