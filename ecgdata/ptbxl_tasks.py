"""The six PTB-XL benchmark tasks read straight from a PTB-XL folder, as the seed systems use them (no conversion).

The rule, as the PTB-XL benchmark's code applies it (Strodthoff et al., IEEE JBHI 2021,
``utils.compute_label_aggregations``; seed 003 and seed 002 use the same): a record's labels are
the **keys** of its ``scp_codes``, whatever the likelihood each carries (0 included), mapped
through ``scp_statements.csv``:

- ``all``: every statement;
- ``diagnostic``: statements with ``diagnostic == 1``;
- ``subdiagnostic``: the ``diagnostic_subclass`` of those statements;
- ``superdiagnostic``: the ``diagnostic_class`` of those statements;
- ``form``: statements with ``form == 1``;
- ``rhythm``: statements with ``rhythm == 1``.

Records with no label in the task are dropped (counted in ``dropped``). The class list is every
label the statement table defines for the task (71 / 44 / 23 / 5 / 19 / 12), sorted, except
``superdiagnostic``, which keeps the order NORM, MI, STTC, CD, HYP; the benchmark instead keeps
the labels present in its data, which on the full PTB-XL are the same lists. Classes without
positives in a small folder stay in the list (and are skipped by macro scores).

Splits use ``strat_fold``: ``recommended`` = folds 1-8 train, 9 validation, 10 test; ``sample`` =
1-6 / 7 / 8, the stand-in on a folder holding folds 1-8 only (the shared sample). Signals stay
on disk and are read on demand through :func:`ecgio.read_record` (mV, canonical lead order).
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ecgdata.ptbxl import PTBXLRow, read_database
from ecgio import Record, read_record

log = logging.getLogger(__name__)

#: The five superdiagnostic classes, in the order this package uses.
SUPERCLASSES: tuple[str, ...] = ("NORM", "MI", "STTC", "CD", "HYP")
TASK_NAMES: tuple[str, ...] = ("all", "diagnostic", "subdiagnostic", "superdiagnostic", "form", "rhythm")
#: Split name -> (train folds, validation folds, test folds).
SPLITS: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = {
    "recommended": (tuple(range(1, 9)), (9,), (10,)),
    "sample": (tuple(range(1, 7)), (7,), (8,)),
}
TRAIN_FOLDS, VALIDATION_FOLDS, TEST_FOLDS = SPLITS["recommended"]
RATES = (100, 500)


@dataclass(frozen=True)
class PTBXLTask:
    """A multi-label PTB-XL task: record ``i`` is ``paths[i]`` with targets ``targets[i]``.

    ``train``/``validation``/``test`` are index arrays into the records (the ``split``'s folds);
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
    name: str = "superdiagnostic"
    split: str = "recommended"
    ages: np.ndarray | None = None
    sexes: tuple[str | None, ...] = ()

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

    def subset(self, rows: np.ndarray) -> PTBXLTask:
        """The same task over records ``rows`` only (in that order), its split parts renumbered."""
        rows = np.asarray(rows, dtype=np.int64)
        new_index = {int(old): new for new, old in enumerate(rows)}

        def part(indices: np.ndarray) -> np.ndarray:
            return np.asarray(sorted(new_index[int(i)] for i in indices if int(i) in new_index), dtype=np.int64)

        return replace(
            self,
            ecg_ids=self.ecg_ids[rows],
            paths=tuple(self.paths[i] for i in rows),
            targets=self.targets[rows],
            strat_fold=self.strat_fold[rows],
            train=part(self.train),
            validation=part(self.validation),
            test=part(self.test),
            ages=None if self.ages is None else self.ages[rows],
            sexes=tuple(self.sexes[i] for i in rows) if self.sexes else (),
        )


def _statement_rows(ptbxl_dir: str | Path) -> list[dict[str, str]]:
    path = Path(ptbxl_dir) / "scp_statements.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: PTB-XL statement table not found")
    with path.open(newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    for row in rows:
        row["code"] = (row.get("") or row.get("Unnamed: 0") or "").strip()
    return [row for row in rows if row["code"]]


def _flag(row: dict[str, str], column: str) -> bool:
    text = (row.get(column) or "").strip()
    try:
        return bool(text) and float(text) == 1.0
    except ValueError:
        raise ValueError(f"scp_statements.csv: statement {row['code']}: {column}={text!r} is not a number") from None


def statement_labels(ptbxl_dir: str | Path, task: str) -> dict[str, str]:
    """SCP statement -> the label it gives in ``task`` (statements that give none are absent)."""
    if task not in TASK_NAMES:
        raise ValueError(f"unknown PTB-XL task {task!r}; known: {', '.join(TASK_NAMES)}")
    labels: dict[str, str] = {}
    for row in _statement_rows(ptbxl_dir):
        code = row["code"]
        if task == "all":
            labels[code] = code
        elif task in ("form", "rhythm"):
            if _flag(row, task):
                labels[code] = code
        elif _flag(row, "diagnostic"):
            column = {"diagnostic": None, "subdiagnostic": "diagnostic_subclass", "superdiagnostic": "diagnostic_class"}
            key = column[task]
            value = code if key is None else (row.get(key) or "").strip()
            if value:
                labels[code] = value
    return labels


def diagnostic_classes(ptbxl_dir: str | Path) -> dict[str, str]:
    """SCP statement -> ``diagnostic_class`` for the statements ``scp_statements.csv`` marks diagnostic."""
    return statement_labels(ptbxl_dir, "superdiagnostic")


def task_classes(labels: dict[str, str], task: str) -> tuple[str, ...]:
    """The task's class list: :data:`SUPERCLASSES` for superdiagnostic, else every label sorted."""
    if task == "superdiagnostic":
        unknown = sorted(set(labels.values()) - set(SUPERCLASSES))
        if unknown:
            raise ValueError(f"scp_statements.csv: diagnostic classes {unknown} are not PTB-XL superclasses")
        return SUPERCLASSES
    return tuple(sorted(set(labels.values())))


def _fold_indices(folds: np.ndarray, wanted: tuple[int, ...]) -> np.ndarray:
    return np.flatnonzero(np.isin(folds, wanted)).astype(np.int64)


def row_labels(row: PTBXLRow, labels: dict[str, str]) -> set[str]:
    """The task labels of one database row (every statement key, any likelihood)."""
    return {labels[code] for code in row.scp_codes if code in labels}


def load_task(
    ptbxl_dir: str | Path, task: str = "superdiagnostic", rate: int = 100, split: str = "recommended"
) -> PTBXLTask:
    """Task ``task`` over every record of the folder with at least one of its labels."""
    if rate not in RATES:
        raise ValueError(f"rate must be 100 or 500, got {rate}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    root = Path(ptbxl_dir)
    labels = statement_labels(root, task)
    classes = task_classes(labels, task)
    column_of = {name: k for k, name in enumerate(classes)}
    kept: list[PTBXLRow] = []
    targets: list[np.ndarray] = []
    dropped = 0
    for row in read_database(root):
        found = row_labels(row, labels)
        if not found:
            dropped += 1
            continue
        target = np.zeros(len(classes), dtype=bool)
        target[[column_of[name] for name in found]] = True
        kept.append(row)
        targets.append(target)
    fold_array = np.asarray([row.strat_fold for row in kept], dtype=np.int64)
    train, validation, test = (_fold_indices(fold_array, folds) for folds in SPLITS[split])
    log.info("PTB-XL %s: %d records, %d dropped without a label of the task", task, len(kept), dropped)
    relative: Callable[[PTBXLRow], str] = (lambda r: r.filename_hr) if rate == 500 else (lambda r: r.filename_lr)
    return PTBXLTask(
        ecg_ids=np.asarray([row.ecg_id for row in kept], dtype=np.int64),
        paths=tuple(root / relative(row) for row in kept),
        targets=np.asarray(targets, dtype=bool).reshape(len(kept), len(classes)),
        classes=classes,
        strat_fold=fold_array,
        train=train,
        validation=validation,
        test=test,
        rate=rate,
        dropped=dropped,
        name=task,
        split=split,
        ages=np.asarray([row.age for row in kept], dtype=np.float64),
        sexes=tuple(row.sex for row in kept),
    )


def load_superdiagnostic(ptbxl_dir: str | Path, rate: int = 100, split: str = "recommended") -> PTBXLTask:
    """The superdiagnostic task (NORM, MI, STTC, CD, HYP) over every labelled record of the folder."""
    return load_task(ptbxl_dir, "superdiagnostic", rate, split)


__all__ = [
    "RATES",
    "SPLITS",
    "SUPERCLASSES",
    "TASK_NAMES",
    "PTBXLTask",
    "diagnostic_classes",
    "load_superdiagnostic",
    "load_task",
    "row_labels",
    "statement_labels",
    "task_classes",
]
