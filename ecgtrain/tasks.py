"""What a model learns: its classes, its targets, the metric it is selected on, and the split.

The training loop knows none of this; it asks its :class:`Task`. ``challenge2021`` (the 26 scored
classes with equivalent codes merged, the Challenge metric, a split stratified by class and
source) is the first task; a PTB-XL task plugs in by building another :class:`Task` and adding it
to :data:`TASKS`. A task also refuses data it cannot be learned from: fewer than two classes with
positives would give a network that says "yes" (or "no") to everything without a word.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ecgdata.splits import record_split, stratified_kfold
from ecgtrain.errors import TrainingDataError
from ecgtrain.thresholds import Scorer

if TYPE_CHECKING:
    from ecgdata.index import DatasetIndex

log = logging.getLogger(__name__)

#: Below this many positives a class is too rare to learn; training goes on, with a warning naming it.
MIN_POSITIVES_TO_LEARN = 5

#: (labels, probabilities, thresholds[, decision rule]) -> named scores.
Evaluate = Callable[..., dict[str, float]]
Split = Callable[[np.ndarray, Sequence[str] | None, float, int], tuple[np.ndarray, np.ndarray]]
#: (targets, groups, k, seed) -> k (train indices, validation indices) pairs, every record validated once.
KFold = Callable[[np.ndarray, Sequence[str] | None, int, int], list[tuple[np.ndarray, np.ndarray]]]


@dataclass(frozen=True)
class Task:
    """A multi-label classification task.

    ``classes`` are the codes the model outputs (the manifest's ``classes``), ``labels`` their
    short names for messages; ``targets(index)`` gives (N, C) bool targets of a dataset index;
    ``evaluate(labels, probabilities, thresholds)`` returns named scores, among them ``metric``,
    which early stopping and threshold tuning maximise through ``scorer``; ``split(targets,
    groups, val_fraction, seed)`` gives (train, validation) indices and ``kfold(targets, groups, k, seed)``
    k such pairs (the ``folds`` setting).
    """

    name: str
    classes: tuple[str, ...]
    labels: tuple[str, ...]
    targets: Callable[[DatasetIndex], np.ndarray]
    metric: str
    scorer: Scorer
    evaluate: Evaluate
    split: Split = record_split
    kfold: KFold = stratified_kfold

    def check_targets(self, targets: np.ndarray, min_positives: int = MIN_POSITIVES_TO_LEARN) -> None:
        """Refuse targets with fewer than two classes that have positives; warn about the too-rare ones."""
        targets = np.asarray(targets, bool)
        if targets.ndim != 2 or targets.shape[1] != len(self.classes):
            raise TrainingDataError(f"{self.name}: targets of shape {targets.shape} for {len(self.classes)} classes")
        counts = targets.sum(axis=0)
        present = np.flatnonzero(counts > 0)
        if present.size < 2:
            found = ", ".join(f"{self._label(j)} {counts[j]}" for j in present) or "none"
            raise TrainingDataError(
                f"{len(targets)} records have positives for {present.size} of the {len(self.classes)} {self.name}"
                f" classes (found: {found}); at least two are needed to learn anything (records without"
                " labels, or with only unscored labels, count for none)"
            )
        rare = [j for j in present if counts[j] < min_positives]
        if rare:
            log.warning(
                "%d class(es) have fewer than %d positives, too few to learn: %s",
                len(rare),
                min_positives,
                ", ".join(f"{self._label(j)} {counts[j]}" for j in rare),
            )
        absent = np.flatnonzero(counts == 0)
        if absent.size:
            log.warning(
                "%d class(es) have no positives and will never be predicted: %s",
                absent.size,
                ", ".join(self._label(j) for j in absent),
            )

    def _label(self, j: int | np.integer) -> str:
        return f"{self.labels[int(j)]} ({self.classes[int(j)]})"


def _index_targets(index: DatasetIndex) -> np.ndarray:
    return np.asarray(index.targets, bool)


@cache
def challenge2021() -> Task:
    """The PhysioNet/CinC Challenge 2021 task: 26 scored classes, the Challenge metric."""
    from ecgscore.classes import ABBREVIATIONS, representative_codes
    from ecgtrain.evaluation import challenge_scorer, evaluate_probabilities

    return Task(
        name="challenge2021",
        classes=representative_codes(),
        labels=ABBREVIATIONS,
        targets=_index_targets,
        metric="challenge_metric",
        scorer=challenge_scorer,
        evaluate=evaluate_probabilities,
    )


def _ecg_id(name: str) -> int | None:
    """ecg_id of a PTB-XL record name: ``HR00001`` (Challenge copy) or ``00001_lr``/``00001_hr`` (PTB-XL's own)."""
    stem = name[2:] if name.startswith("HR") else name.split("_", 1)[0]
    return int(stem) if stem.isdigit() else None


def fold_split(validation_folds: tuple[int, ...]) -> Split:
    """A split by PTB-XL's ``strat_fold``: ``groups`` are the records' folds (as text); records in
    ``validation_folds`` validate, every other record trains (the test fold is left out beforehand)."""

    def split(
        targets: np.ndarray, groups: Sequence[str] | None, val_fraction: float, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        if groups is None:
            raise TrainingDataError("a PTB-XL fold split needs each record's strat_fold as its group")
        folds = np.asarray([int(g) for g in groups])
        validation = np.isin(folds, validation_folds)
        return np.flatnonzero(~validation), np.flatnonzero(validation)

    return split


def ptbxl_task(name: str, ptbxl_dir: str | Path, split: str = "recommended") -> Task:
    """PTB-XL benchmark task ``name`` (``all``, ``diagnostic``, ``subdiagnostic``, ``superdiagnostic``,
    ``form``, ``rhythm``; labels and classes as :mod:`ecgdata.ptbxl_tasks` defines them, from the
    folder's ``scp_statements.csv`` and ``ptbxl_database.csv``).

    Early stopping maximises macro AUROC; decision thresholds maximise the sample-centric F whose
    maximum over thresholds is Fmax (:mod:`ecgscore.ptbxl`); the split is by ``strat_fold`` (validation:
    fold 9 for ``recommended``, 7 for ``sample``). ``targets(index)`` looks records up by ecg_id, so
    it works on PTB-XL's own files and on their Challenge copies (``HRnnnnn``); a record the database
    does not label in this task gets an all-false row.
    """
    from ecgdata.ptbxl import read_database
    from ecgdata.ptbxl_tasks import SPLITS, row_labels, statement_labels, task_classes
    from ecgscore.ptbxl import evaluate_ptbxl, sample_f1
    from ecgserve.decision import decide

    labels = statement_labels(ptbxl_dir, name)
    classes = task_classes(labels, name)
    column_of = {label: k for k, label in enumerate(classes)}
    by_id = {row.ecg_id: row_labels(row, labels) for row in read_database(ptbxl_dir)}

    def targets(index: DatasetIndex) -> np.ndarray:
        out = np.zeros((len(index.records), len(classes)), dtype=bool)
        for i, record in enumerate(index.records):
            ecg_id = _ecg_id(record)
            for label in by_id.get(ecg_id, set()) if ecg_id is not None else set():
                out[i, column_of[label]] = True
        return out

    if split not in SPLITS:
        raise KeyError(f"unknown PTB-XL split {split!r}; known: {', '.join(SPLITS)}")
    return Task(
        name=f"ptbxl_{name}",
        classes=classes,
        labels=classes,
        targets=targets,
        metric="macro_auroc",
        scorer=sample_f1,
        evaluate=lambda labels, probabilities, thresholds, rule="threshold": evaluate_ptbxl(
            labels, probabilities, thresholds, decide(probabilities, thresholds, rule)
        ),
        split=fold_split(SPLITS[split][1]),
    )


#: Task name (the ``task`` setting) -> its builder. PTB-XL tasks need their folder: :func:`ptbxl_task`.
TASKS: dict[str, Callable[[], Task]] = {"challenge2021": challenge2021}


def get_task(name: str) -> Task:
    """The task called ``name``; an unknown name lists the known ones."""
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(sorted(TASKS))}")
    return TASKS[name]()
