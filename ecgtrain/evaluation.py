"""Scores of a lead-set network's probabilities on labelled records, through :mod:`scoring`.

Kept apart from the training loop so that the loop only asks its task for "the metric" and the
benchmarks score held-out folds exactly as training scores validation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ecgscore.metric import auc, f_measure
from ecgserve.decision import decide
from ecgtrain.thresholds import challenge_scorer

#: outputs (N, C) bool -> score, for labels fixed beforehand (cheap to call for many threshold vectors).
OutputScore = Callable[[np.ndarray], float]

__all__ = ["OutputScore", "challenge_scorer", "evaluate_probabilities"]


def evaluate_probabilities(
    labels: np.ndarray, probabilities: np.ndarray, thresholds: np.ndarray, rule: str = "threshold"
) -> dict[str, float]:
    """Challenge metric, macro AUROC/AUPRC and F-measure of probabilities decided at ``thresholds`` by ``rule``
    (:func:`ecgserve.decision.decide`)."""

    outputs = decide(probabilities, thresholds, rule)
    auroc, auprc, _, _ = auc(labels, probabilities)
    return {
        "challenge_metric": challenge_scorer(labels)(outputs),
        "auroc": auroc,
        "auprc": auprc,
        "f_measure": f_measure(labels, outputs)[0],
    }
