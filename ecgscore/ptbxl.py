"""The PTB-XL benchmark's metrics: macro AUROC, Fmax, and a bootstrap 95 % interval on a test fold.

**Macro AUROC**: the mean over classes of each class's AUROC (the Challenge's tie handling,
:func:`ecgscore.metric.class_auc`), over the classes that have both positives and negatives in the
scored records; NaN when none has.

**Fmax** (sample-centric, as in the PTB-XL benchmark, after CAFA's protein-function Fmax): for a
threshold t, record i predicts the classes with score >= t. precision(t) is the mean, over the
records that predict at least one class, of |predicted ∩ true| / |predicted|; recall(t) is the
mean, over all records with at least one true class, of |predicted ∩ true| / |true|;
F(t) = 2·precision·recall / (precision + recall) (0 when both are 0, and 0 when no record predicts
anything). Fmax = max over t of F(t), t running over :data:`FMAX_THRESHOLDS` (0.00, 0.01, ..., 1.00).
:func:`sample_f1` is F at fixed per-class thresholds, the quantity decision thresholds are tuned on.

**Bootstrap interval**: records of the test fold are resampled with replacement ``n`` times
(numpy ``default_rng(seed)``, seed 0 unless given); the metric is computed on each resample
(resamples where it is undefined, NaN, are skipped and counted); the interval is the 2.5th and
97.5th percentiles of those values. The point estimate is the metric on the records as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ecgscore.metric import auc

FMAX_THRESHOLDS = np.round(np.linspace(0.0, 1.0, 101), 2)
Metric = Callable[[np.ndarray, np.ndarray], float]


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.ndim != 2 or labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must both be (records, classes)")
    return labels, scores


def macro_auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean AUROC over the classes with both positives and negatives (NaN when there are none)."""
    labels, scores = _check(labels, scores)
    return float(auc(labels, scores)[0])


def macro_auprc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean AUPRC over the classes with positives."""
    labels, scores = _check(labels, scores)
    return float(auc(labels, scores)[1])


def _sample_f(labels: np.ndarray, outputs: np.ndarray) -> float:
    """Sample-centric F of binary outputs (see the module docstring)."""
    hits = np.count_nonzero(labels & outputs, axis=1).astype(np.float64)
    predicted = np.count_nonzero(outputs, axis=1).astype(np.float64)
    true = np.count_nonzero(labels, axis=1).astype(np.float64)
    predicting, labelled = predicted > 0, true > 0
    if not predicting.any() or not labelled.any():
        return 0.0
    precision = float(np.mean(hits[predicting] / predicted[predicting]))
    recall = float(np.mean(hits[labelled] / true[labelled]))
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def sample_f1(labels: np.ndarray) -> Callable[[np.ndarray], float]:
    """For fixed labels: binary outputs (N, C) -> sample-centric F (a :data:`ecgtrain.thresholds.Scorer`)."""
    fixed = np.asarray(labels, dtype=bool)

    def score(outputs: np.ndarray) -> float:
        return _sample_f(fixed, np.asarray(outputs, dtype=bool))

    return score


def fmax(labels: np.ndarray, scores: np.ndarray, thresholds: np.ndarray = FMAX_THRESHOLDS) -> float:
    """Maximum over ``thresholds`` of the sample-centric F (see the module docstring)."""
    labels, scores = _check(labels, scores)
    return max(_sample_f(labels, scores >= t) for t in thresholds)


@dataclass(frozen=True)
class Interval:
    """A metric on the records as given, and the bootstrap percentile interval around it."""

    value: float
    low: float
    high: float
    resamples: int
    skipped: int


def bootstrap(
    labels: np.ndarray,
    scores: np.ndarray,
    metric: Metric,
    n: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Percentile bootstrap interval of ``metric(labels, scores)`` over records (see the module docstring)."""
    labels, scores = _check(labels, scores)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    if labels.shape[0] == 0:
        raise ValueError("cannot bootstrap zero records")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        rows = rng.integers(0, labels.shape[0], labels.shape[0])
        values.append(metric(labels[rows], scores[rows]))
    finite = np.asarray([v for v in values if np.isfinite(v)], dtype=np.float64)
    tail = 100 * (1 - level) / 2
    low, high = (float(np.percentile(finite, q)) for q in (tail, 100 - tail)) if finite.size else (np.nan, np.nan)
    return Interval(float(metric(labels, scores)), low, high, n, n - int(finite.size))


def evaluate_ptbxl(
    labels: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray, outputs: np.ndarray | None = None
) -> dict[str, float]:
    """Macro AUROC, Fmax, macro AUPRC, and sample-centric F and macro F-measure of the decisions
    (``outputs``, bool; default: ``probabilities >= thresholds``)."""
    from ecgscore.metric import f_measure

    labels, probabilities = _check(labels, probabilities)
    outputs = probabilities >= np.asarray(thresholds) if outputs is None else np.asarray(outputs, bool)
    auroc, auprc, _, _ = auc(labels, probabilities)
    return {
        "macro_auroc": float(auroc),
        "fmax": fmax(labels, probabilities),
        "auprc": float(auprc),
        "sample_f1": _sample_f(labels, outputs),
        "f_measure": float(f_measure(labels, outputs)[0]),
    }


__all__ = [
    "FMAX_THRESHOLDS",
    "Interval",
    "bootstrap",
    "evaluate_ptbxl",
    "fmax",
    "macro_auprc",
    "macro_auroc",
    "sample_f1",
]
