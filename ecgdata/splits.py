"""Reproducible multi-label splits that keep rare classes and sources balanced.

Iterative stratification (Sechidis, Tsoumakas & Vlahavas, ECML PKDD 2011): labels are handled
rarest first; each record carrying the current label goes to the fold that still wants most of
that label (ties: the fold that wants most of the record's other labels, then most records
overall, then a seeded random choice). A rare
class therefore spreads evenly instead of landing in one fold by chance. Sources are balanced by
treating each group (e.g. source database) as one more label, so every fold gets its share of
each source too. Records with no label at all fill the folds that want most records.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

log = logging.getLogger(__name__)

#: Below this many records a validation split says nothing: train and validate on all of them.
MIN_RECORDS_TO_SPLIT = 10


def _label_matrix(targets: np.ndarray, groups: Sequence[str] | None) -> np.ndarray:
    targets = np.asarray(targets)
    if targets.ndim != 2:
        raise ValueError(f"targets must be (records, classes), got shape {targets.shape}")
    labels = targets.astype(bool)
    if groups is None:
        return labels
    group_array = np.asarray(list(groups), dtype=object)
    if group_array.shape != (labels.shape[0],):
        raise ValueError(f"groups has {group_array.shape[0]} entries for {labels.shape[0]} records")
    names = sorted(set(group_array.tolist()))
    one_hot = (
        np.stack([group_array == name for name in names], axis=1) if names else np.zeros((len(group_array), 0), bool)
    )
    return np.concatenate([labels, one_hot], axis=1)


def iterative_stratification(
    targets: np.ndarray, ratios: Sequence[float], groups: Sequence[str] | None = None, seed: int = 0
) -> np.ndarray:
    """The fold (0..len(ratios)-1) of every record, folds sized in proportion to ``ratios``."""
    ratios_array = np.asarray(ratios, dtype=np.float64)
    if ratios_array.ndim != 1 or len(ratios_array) < 2 or np.any(ratios_array <= 0):
        raise ValueError(f"need at least two positive fold ratios, got {list(ratios)}")
    ratios_array = ratios_array / ratios_array.sum()
    labels = _label_matrix(targets, groups)
    count = labels.shape[0]
    rng = np.random.default_rng(seed)
    wanted_records = ratios_array * count
    wanted_labels = np.outer(ratios_array, labels.sum(axis=0)).astype(np.float64)  # folds x labels
    folds = np.full(count, -1, dtype=np.int64)
    remaining = labels.copy()
    while True:
        per_label = remaining.sum(axis=0)
        present = np.flatnonzero(per_label > 0)
        if present.size == 0:
            break
        rarest = per_label[present].min()
        label = int(rng.choice(present[per_label[present] == rarest]))
        for record in rng.permutation(np.flatnonzero(remaining[:, label])):
            fold = _choose_fold(
                wanted_labels[:, label], wanted_labels[:, labels[record]].sum(axis=1), wanted_records, rng
            )
            folds[record] = fold
            wanted_labels[fold] -= labels[record]
            wanted_records[fold] -= 1
            remaining[record] = False
    for record in rng.permutation(np.flatnonzero(folds < 0)):
        fold = _choose_fold(wanted_records, wanted_records, wanted_records, rng)
        folds[record] = fold
        wanted_records[fold] -= 1
    return folds


def _choose_fold(
    want_label: np.ndarray, want_own_labels: np.ndarray, want_records: np.ndarray, rng: np.random.Generator
) -> int:
    """The fold that wants this label most; ties go to the fold that wants most of all the record's
    labels (its source included), then to the one that wants most records, then to chance."""
    best = np.arange(want_label.size)
    for wants in (want_label, want_own_labels, want_records):
        values = wants[best]
        best = best[values == values.max()]
        if best.size == 1:
            return int(best[0])
    return int(rng.choice(best))


def stratified_kfold(
    targets: np.ndarray, groups: Sequence[str] | None = None, n_splits: int = 5, seed: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_splits`` (train indices, validation indices) pairs; every record is validation exactly once."""
    if n_splits < 2:
        raise ValueError(f"n_splits must be at least 2, got {n_splits}")
    count = np.asarray(targets).shape[0]
    if count < n_splits:
        raise ValueError(f"cannot make {n_splits} folds from {count} records")
    folds = iterative_stratification(targets, [1.0] * n_splits, groups, seed)
    return [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(n_splits)]


def train_val_split(
    targets: np.ndarray, groups: Sequence[str] | None = None, val_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices) with about ``val_fraction`` of the records in validation."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    if np.asarray(targets).shape[0] < 2:
        raise ValueError("need at least two records to split")
    folds = iterative_stratification(targets, [1.0 - val_fraction, val_fraction], groups, seed)
    return np.flatnonzero(folds == 0), np.flatnonzero(folds == 1)


def record_split(
    targets: np.ndarray,
    groups: Sequence[str] | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    min_records: int = MIN_RECORDS_TO_SPLIT,
) -> tuple[np.ndarray, np.ndarray]:
    """The training/validation split of a training run: :func:`train_val_split`, except that with fewer
    than ``min_records`` records both parts are all of them (a smoke run; a 2-record validation set
    would only add noise to early stopping), with a warning."""
    count = np.asarray(targets).shape[0]
    if count < min_records:
        log.warning("only %d records: training and validating on all of them", count)
        everything = np.arange(count)
        return everything, everything
    return train_val_split(targets, groups, val_fraction, seed)


__all__ = ["MIN_RECORDS_TO_SPLIT", "iterative_stratification", "record_split", "stratified_kfold", "train_val_split"]
