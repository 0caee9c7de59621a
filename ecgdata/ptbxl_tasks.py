"""PTB-XL benchmark tasks read straight from a PTB-XL folder, as the seed systems use them (no conversion).

The superdiagnostic task (Strodthoff et al., PTB-XL benchmark): each record's classes are the
``diagnostic_class`` of every statement in its ``scp_codes`` that ``scp_statements.csv`` marks
``diagnostic == 1``, whatever the statement's likelihood; records with none are dropped. The
recommended split uses ``strat_fold``: folds 1-8 train, 9 validation, 10 test. Signals stay on
disk and are read on demand through :func:`ecgio.read_record` (mV, canonical lead order).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgdata.ptbxl import read_database
from ecgio import Record, read_record

log = logging.getLogger(__name__)

#: The five superdiagnostic classes, in the benchmark's order.
SUPERCLASSES: tuple[str, ...] = ("NORM", "MI", "STTC", "CD", "HYP")
TRAIN_FOLDS, VALIDATION_FOLDS, TEST_FOLDS = tuple(range(1, 9)), (9,), (10,)


@dataclass(frozen=True)
class PTBXLTask:
    """A multi-label PTB-XL task: record ``i`` is ``paths[i]`` with targets ``targets[i]``.

    ``train``/``validation``/``test`` are index arrays into the records (recommended folds);
    ``dropped`` counts records left out because they have no label in this task.
    """

    ecg_ids: np.ndarray
    paths: tuple[Path, ...]
    targets: np.ndarray
    classes: tuple[str, ...]
    strat_fold: np.ndarray
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    rate: int
    dropped: int

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def names(self) -> tuple[str, ...]:
        """Record names as the Challenge writes them (``HRnnnnn``)."""
        return tuple(f"HR{int(ecg_id):05d}" for ecg_id in self.ecg_ids)

    def record(self, index: int) -> Record:
        """The signal of record ``index``, read now (mV, 12 leads in canonical order)."""
        return read_record(self.paths[index])

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(signal float32 (12, N) mV, targets bool (C,)) of record ``index``."""
        return self.record(index).signal, self.targets[index]


def diagnostic_classes(ptbxl_dir: str | Path) -> dict[str, str]:
    """SCP statement -> ``diagnostic_class`` for the statements ``scp_statements.csv`` marks diagnostic."""
    path = Path(ptbxl_dir) / "scp_statements.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: PTB-XL statement table not found")
    classes: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            code = (row.get("") or row.get("Unnamed: 0") or "").strip()
            diagnostic = (row.get("diagnostic") or "").strip()
            if code and diagnostic and float(diagnostic) == 1.0 and (row.get("diagnostic_class") or "").strip():
                classes[code] = row["diagnostic_class"].strip()
    return classes


def _fold_indices(folds: np.ndarray, wanted: tuple[int, ...]) -> np.ndarray:
    return np.flatnonzero(np.isin(folds, wanted)).astype(np.int64)


def load_superdiagnostic(ptbxl_dir: str | Path, rate: int = 100) -> PTBXLTask:
    """The superdiagnostic task (NORM, MI, STTC, CD, HYP) over every labelled record of the folder."""
    if rate not in (100, 500):
        raise ValueError(f"rate must be 100 or 500, got {rate}")
    root = Path(ptbxl_dir)
    statement_class = diagnostic_classes(root)
    ecg_ids, paths, targets, folds = [], [], [], []
    dropped = 0
    for row in read_database(root):
        classes = {statement_class[code] for code in row.scp_codes if code in statement_class}
        if not classes:
            dropped += 1
            continue
        relative = row.filename_hr if rate == 500 else row.filename_lr
        ecg_ids.append(row.ecg_id)
        paths.append(root / relative)
        targets.append([name in classes for name in SUPERCLASSES])
        folds.append(row.strat_fold)
    fold_array = np.asarray(folds, dtype=np.int64)
    log.info("PTB-XL superdiagnostic: %d records, %d dropped without a diagnostic label", len(paths), dropped)
    return PTBXLTask(
        ecg_ids=np.asarray(ecg_ids, dtype=np.int64),
        paths=tuple(paths),
        targets=np.asarray(targets, dtype=bool).reshape(len(paths), len(SUPERCLASSES)),
        classes=SUPERCLASSES,
        strat_fold=fold_array,
        train=_fold_indices(fold_array, TRAIN_FOLDS),
        validation=_fold_indices(fold_array, VALIDATION_FOLDS),
        test=_fold_indices(fold_array, TEST_FOLDS),
        rate=rate,
        dropped=dropped,
    )


__all__ = ["SUPERCLASSES", "PTBXLTask", "diagnostic_classes", "load_superdiagnostic"]
