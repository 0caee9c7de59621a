"""The Challenge 2021 metrics on arrays: AUROC, AUPRC, accuracy, F-measure and the Challenge metric.

The numbers are the official scorer's (evaluation-2021 ``evaluate_model.py``) to the last bit
wherever its result does not depend on summation order, and where it does (the Challenge
metric's confusion matrix, the AUC sums) :func:`ecgscore.files.evaluate` adds in the official order, so the
printed digits always agree (reading the label and output files, and the whole evaluation, are in
:mod:`ecgscore.files`). The array-level functions are vectorised for training-time use:
:func:`challenge_metric` has a fast matrix-product path (``exact=False``, the default) for
threshold tuning, where the last bit does not matter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ecgscore.classes import NORMAL_CLASS


# ---------------------------------------------------------------------------------------------
# Array-level metrics
# ---------------------------------------------------------------------------------------------
def _nanmean_or_nan(values: np.ndarray) -> float:
    """``np.nanmean`` without its warning: NaN when no value is finite (as the official scorer)."""
    return float(np.nanmean(values)) if np.any(np.isfinite(values)) else float("nan")


def _sequential_sum(terms: np.ndarray) -> float:
    """Left-to-right sum starting from 0.0, the order of the official ``+=`` loop."""
    return float(np.cumsum(np.concatenate(([0.0], terms)))[-1])


def class_auc(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(AUROC, AUPRC) of one class with the official tie handling.

    Thresholds are the distinct scores, highest first, plus one above the maximum; at each,
    every recording scoring at least the threshold counts as positive (ties move together).
    AUROC is the trapezoid area of TNR over TPR, AUPRC the step area of PPV over TPR. No
    positives -> both NaN; no negatives -> AUROC NaN.
    """
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    num_positive = float(np.count_nonzero(labels))
    num_negative = float(labels.size - np.count_nonzero(labels))
    # Distinct values in descending order and, for each, how many positives/negatives score it.
    values, inverse = np.unique(scores, return_inverse=True)
    positives_at = np.bincount(inverse, weights=labels, minlength=values.size)[::-1]
    counts_at = np.bincount(inverse, minlength=values.size)[::-1].astype(np.float64)
    tp = np.concatenate(([0.0], np.cumsum(positives_at)))
    fp = np.concatenate(([0.0], np.cumsum(counts_at - positives_at)))
    fn = num_positive - tp
    tn = num_negative - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = tp / (tp + fn) if num_positive else np.full(tp.shape, np.nan)
        tnr = tn / (tn + fp) if num_negative else np.full(tp.shape, np.nan)
        ppv = np.where(tp + fp > 0, tp / np.where(tp + fp > 0, tp + fp, 1.0), np.nan)
    auroc = _sequential_sum(0.5 * (tpr[1:] - tpr[:-1]) * (tnr[1:] + tnr[:-1]))
    auprc = _sequential_sum((tpr[1:] - tpr[:-1]) * ppv[1:])
    return auroc, auprc


def auc(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Macro AUROC, macro AUPRC and their per-class arrays for (N, C) bool labels and float scores."""
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    _check_shapes(labels, scores)
    per_class = np.array([class_auc(labels[:, k], scores[:, k]) for k in range(labels.shape[1])], dtype=np.float64)
    per_class = per_class.reshape(labels.shape[1], 2)
    auroc, auprc = per_class[:, 0].copy(), per_class[:, 1].copy()
    return _nanmean_or_nan(auroc), _nanmean_or_nan(auprc), auroc, auprc


def accuracy(labels: np.ndarray, outputs: np.ndarray) -> float:
    """Fraction of recordings whose binary outputs equal their labels on every class."""
    labels = np.asarray(labels, dtype=bool)
    outputs = np.asarray(outputs, dtype=bool)
    _check_shapes(labels, outputs)
    if labels.shape[0] == 0:
        raise ValueError("accuracy of zero recordings is undefined")
    return float(np.count_nonzero(np.all(labels == outputs, axis=1))) / float(labels.shape[0])


def f_measure(labels: np.ndarray, outputs: np.ndarray) -> tuple[float, np.ndarray]:
    """Macro F-measure and per-class 2TP/(2TP+FP+FN) (NaN where the denominator is 0)."""
    labels = np.asarray(labels, dtype=bool)
    outputs = np.asarray(outputs, dtype=bool)
    _check_shapes(labels, outputs)
    tp = np.count_nonzero(labels & outputs, axis=0).astype(np.float64)
    fp = np.count_nonzero(~labels & outputs, axis=0).astype(np.float64)
    fn = np.count_nonzero(labels & ~outputs, axis=0).astype(np.float64)
    denominator = 2 * tp + fp + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        per_class = np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1.0), np.nan)
    return _nanmean_or_nan(per_class), per_class


def modified_confusion_matrix(labels: np.ndarray, outputs: np.ndarray, exact: bool = True) -> np.ndarray:
    """The Challenge's (C, C) matrix: A[j, k] += 1/n for each label j and output k of a recording.

    ``n`` is the number of classes positive in the labels or the outputs of that recording (at
    least 1). ``exact=True`` adds recording by recording in file order, like the official loop,
    so the float result is bit-identical; ``exact=False`` is one matrix product.
    """
    labels = np.asarray(labels, dtype=bool)
    outputs = np.asarray(outputs, dtype=bool)
    _check_shapes(labels, outputs)
    normalization = np.maximum(np.count_nonzero(labels | outputs, axis=1), 1).astype(np.float64)
    weighted_outputs = outputs / normalization[:, None]
    if not exact:
        return labels.T.astype(np.float64) @ weighted_outputs
    matrix = np.zeros((labels.shape[1], labels.shape[1]))
    for j in range(labels.shape[1]):
        rows = np.flatnonzero(labels[:, j])
        if rows.size:  # cumsum adds strictly in recording order, as the official += loop
            matrix[j] = np.cumsum(weighted_outputs[rows], axis=0)[-1]
    return matrix


class ChallengeMetric:
    """The Challenge metric for fixed labels, fast for many output matrices (threshold tuning).

    ``nansum(W * A)`` with ``A = labels.T @ (outputs / n)`` equals
    ``sum_i rowsum((labels @ W0) * outputs)_i / n_i`` (``W0`` = weights with NaN as 0), so
    ``labels @ W0`` and the correct and inactive scores are computed once; each call is then a
    few (N, C) element-wise operations. Equal to the official value up to float rounding
    (|difference| ~ 1e-15); use :func:`challenge_metric` with ``exact=True`` for the bit-exact one.
    """

    def __init__(
        self,
        labels: np.ndarray,
        weights: np.ndarray,
        classes: Sequence[frozenset[str] | set[str] | str],
        normal_class: str = NORMAL_CLASS,
    ) -> None:
        self.labels = np.asarray(labels, dtype=bool)
        weights = np.asarray(weights, dtype=np.float64)
        if self.labels.ndim != 2 or weights.shape != (self.labels.shape[1],) * 2:
            raise ValueError(f"labels {self.labels.shape} and weights {weights.shape} do not fit")
        self.normal_index = _class_index(classes, normal_class)
        self._label_weights = self.labels.astype(np.float64) @ np.where(np.isnan(weights), 0.0, weights)
        inactive_outputs = np.zeros_like(self.labels)
        inactive_outputs[:, self.normal_index] = True
        self.correct = self.score(self.labels)
        self.inactive = self.score(inactive_outputs)

    def score(self, outputs: np.ndarray) -> float:
        """The unnormalised score ``nansum(W * A)`` of (N, C) bool outputs."""
        outputs = np.asarray(outputs, dtype=bool)
        _check_shapes(self.labels, outputs)
        normalization = np.maximum(np.count_nonzero(self.labels | outputs, axis=1), 1)
        return float(np.sum((self._label_weights * outputs).sum(axis=1) / normalization))

    def __call__(self, outputs: np.ndarray) -> float:
        """The normalised Challenge metric of (N, C) bool outputs."""
        if self.correct == self.inactive:
            return 0.0
        return (self.score(outputs) - self.inactive) / (self.correct - self.inactive)


def challenge_metric(
    labels: np.ndarray,
    outputs: np.ndarray,
    weights: np.ndarray,
    classes: Sequence[frozenset[str] | set[str] | str],
    normal_class: str = NORMAL_CLASS,
    exact: bool = False,
) -> float:
    """The normalised Challenge metric of (N, C) bool labels and outputs.

    (observed - inactive) / (correct - inactive), where each score is ``nansum(weights * A)``,
    "correct" outputs the labels and "inactive" outputs only the normal class; 0 when correct
    equals inactive. Raises ValueError when ``normal_class`` is not among ``classes``.
    ``exact=True`` reproduces the official float result bit for bit (slower); the default
    is the fast :class:`ChallengeMetric` formulation. For many output matrices with the same
    labels, build one :class:`ChallengeMetric` and call it.
    """
    if not exact:
        return ChallengeMetric(labels, weights, classes, normal_class)(outputs)
    labels = np.asarray(labels, dtype=bool)
    outputs = np.asarray(outputs, dtype=bool)
    weights = np.asarray(weights, dtype=np.float64)
    normal_index = _class_index(classes, normal_class)
    inactive_outputs = np.zeros_like(labels)
    inactive_outputs[:, normal_index] = True
    observed = np.nansum(weights * modified_confusion_matrix(labels, outputs))
    correct = np.nansum(weights * modified_confusion_matrix(labels, labels))
    inactive = np.nansum(weights * modified_confusion_matrix(labels, inactive_outputs))
    if correct == inactive:
        return 0.0
    return float(observed - inactive) / float(correct - inactive)


def _class_index(classes: Sequence[frozenset[str] | set[str] | str], code: str) -> int:
    for index, members in enumerate(classes):
        if (code == members) if isinstance(members, str) else (code in members):
            return index
    raise ValueError(f"the normal class {code} is not among the scored classes")


def _check_shapes(labels: np.ndarray, other: np.ndarray) -> None:
    if labels.ndim != 2 or labels.shape != other.shape:
        raise ValueError(f"labels {labels.shape} and outputs {other.shape} must be equal (N, C) arrays")


def __getattr__(name: str) -> Any:
    """``ecgscore.metric.evaluate`` and the other names that lived here before the file reading moved to
    :mod:`ecgscore.files` (its ``__all__``), served from there."""
    from ecgscore import files

    if name in files.__all__:
        return getattr(files, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ChallengeMetric",
    "accuracy",
    "auc",
    "challenge_metric",
    "class_auc",
    "f_measure",
    "modified_confusion_matrix",
]
