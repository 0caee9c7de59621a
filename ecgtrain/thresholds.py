"""Per-class decision thresholds tuned on validation data to maximise a task's metric (the Challenge metric).

The Challenge metric rewards partially-correct predictions with class-pair weights, so the best
threshold of a class depends on the others' thresholds. Coordinate ascent (one class at a time,
a few passes) captures that dependence cheaply: each step scores one candidate vector.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from ecgscore.classes import scored_classes, scoring_weights
from ecgscore.metric import ChallengeMetric

ScoreFn = Callable[[np.ndarray, np.ndarray], float]
#: labels (N, C) -> (outputs (N, C) -> score): a metric prepared once for fixed validation labels.
Scorer = Callable[[np.ndarray], Callable[[np.ndarray], float]]
DEFAULT_CANDIDATES = np.round(np.arange(0.05, 0.951, 0.05), 2)
THRESHOLD_STRATEGIES = ("per_class", "global", "global_then_per_class", "fixed")


def challenge_scorer(labels: np.ndarray) -> Callable[[np.ndarray], float]:
    """The Challenge metric (official weights) for fixed labels: the default :data:`Scorer` of :func:`tune`."""
    return ChallengeMetric(labels, scoring_weights(), scored_classes())


class ThresholdSettings(Protocol):
    """What :func:`tune_as` reads of :class:`ecgtrain.settings.Settings` (kept structural: settings imports this module)."""

    @property
    def threshold_strategy(self) -> str: ...

    @property
    def threshold_min_positives(self) -> int: ...


def tune_global_threshold(
    labels: np.ndarray, probabilities: np.ndarray, score: ScoreFn, candidates: np.ndarray = DEFAULT_CANDIDATES
) -> tuple[np.ndarray, float]:
    """One threshold shared by all classes: a single degree of freedom, so it cannot overfit a small
    validation set the way 26 per-class thresholds can."""
    labels = np.asarray(labels, dtype=bool)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    values = [score(labels, probabilities >= c) for c in candidates]
    best = int(np.argmax(values))
    return np.full(labels.shape[1], float(candidates[best])), float(values[best])


def tune_thresholds(
    labels: np.ndarray,
    probabilities: np.ndarray,
    score: ScoreFn,
    candidates: np.ndarray = DEFAULT_CANDIDATES,
    start: float | np.ndarray = 0.5,
    passes: int = 2,
    tunable: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Thresholds (C,) maximising ``score(labels, probabilities >= thresholds)``, and that score.

    Only the classes where ``tunable`` is True move (default: all); the others keep ``start``.
    Ties keep the earlier (starting) threshold, so a class the validation set says nothing about
    stays at ``start``.
    """
    labels = np.asarray(labels, dtype=bool)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if labels.shape != probabilities.shape or labels.ndim != 2:
        raise ValueError(f"labels {labels.shape} and probabilities {probabilities.shape} must be equal (N, C)")
    thresholds = np.broadcast_to(np.asarray(start, dtype=np.float64), (labels.shape[1],)).copy()
    tunable = np.ones(labels.shape[1], bool) if tunable is None else np.asarray(tunable, bool)
    outputs = probabilities >= thresholds
    best = score(labels, outputs)
    for _ in range(passes):
        improved = False
        for j in np.flatnonzero(tunable):
            column = outputs[:, j].copy()
            for candidate in candidates:
                outputs[:, j] = probabilities[:, j] >= candidate
                value = score(labels, outputs)
                if value > best + 1e-12:
                    best, thresholds[j], column, improved = value, float(candidate), outputs[:, j].copy(), True
            outputs[:, j] = column
        if not improved:
            break
    return thresholds, float(best)


def tune(
    labels: np.ndarray,
    probabilities: np.ndarray,
    strategy: str = "per_class",
    min_positives: int = 0,
    scorer: Scorer | None = None,
) -> np.ndarray:
    """Decision thresholds maximising ``scorer`` (default: the Challenge metric) on these (validation) records.

    ``per_class``: coordinate ascent over all thresholds from 0.5; ``global``: one shared
    threshold; ``global_then_per_class``: per-class ascent starting from the best shared one;
    ``fixed``: 0.5. Classes with fewer than ``min_positives`` positives keep their start value.
    """
    if strategy not in THRESHOLD_STRATEGIES:
        raise ValueError(f"unknown threshold strategy {strategy!r}; expected one of {THRESHOLD_STRATEGIES}")
    if strategy == "fixed":
        return np.full(labels.shape[1], 0.5)
    metric = (scorer or challenge_scorer)(labels)

    def score(_labels: np.ndarray, outputs: np.ndarray) -> float:
        return metric(outputs)

    shared, _ = tune_global_threshold(labels, probabilities, score)
    if strategy == "global":
        return shared
    start = shared if strategy == "global_then_per_class" else 0.5
    tunable = np.asarray(labels, bool).sum(axis=0) >= min_positives
    return tune_thresholds(labels, probabilities, score, start=start, tunable=tunable)[0]


def tune_as(
    labels: np.ndarray, probabilities: np.ndarray, settings: ThresholdSettings, scorer: Scorer | None = None
) -> np.ndarray:
    """:func:`tune` with the strategy and minimum positives ``settings`` name: the one way training tunes."""
    return tune(labels, probabilities, settings.threshold_strategy, settings.threshold_min_positives, scorer)
