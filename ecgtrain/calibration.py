"""Calibrating the networks' probabilities before they are blended with the trees.

The networks rank well but are over- or under-confident (BCE with positive weights pushes the
probabilities of rare classes up), while the trees' probabilities are close to calibrated. A blend weight
fitted on miscalibrated probabilities then favours the calibrated member for its calibration, not for what it
knows. A logistic map of each network probability's logit, ``sigmoid(a * logit(p) + b)``, fitted on the
out-of-fold probabilities, removes that:

* ``temperature``: one ``(a, b)`` for all classes (``1 / a`` is the temperature; ``b`` a shared shift);
  two numbers fitted on every (record, class) pair, so it cannot overfit a rare class;
* ``platt``: ``(a, b)`` per class for classes with enough positives, the shared pair for the others;
* ``none``.

Fitted by minimising the binary cross-entropy over the pairs the record's source annotates
(:func:`ecgtrain.labels.annotation_mask`). The map is monotone per class, so the ranking (AUROC) of each
class is unchanged; what changes is how the networks weigh against the trees and where the thresholds fall.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from ecgserve.blending import EPS, logit, sigmoid

#: Values of the ``network_calibration`` setting.
CALIBRATIONS = ("none", "temperature", "platt")


def _fit_pair(z: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(a, b) minimising the cross-entropy of ``sigmoid(a * z + b)`` against ``y`` (1-D), with a weak pull
    towards the identity so a handful of pairs cannot flip or explode the map."""

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        a, b = theta
        q = np.clip(sigmoid(a * z + b), EPS, 1 - EPS)
        value = -np.mean(y * np.log(q) + (1 - y) * np.log1p(-q)) + 1e-3 * ((a - 1) ** 2 + b**2)
        residual = q - y
        grad = np.array([np.mean(residual * z) + 2e-3 * (a - 1), np.mean(residual) + 2e-3 * b])
        return float(value), grad

    result = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B", bounds=[(0.05, 20.0), (-20.0, 20.0)])
    return float(result.x[0]), float(result.x[1])


def fit(
    labels: np.ndarray,
    probabilities: np.ndarray,
    kind: str,
    annotated: np.ndarray | None = None,
    min_positives: int = 10,
) -> np.ndarray | None:
    """(2, C) ``[a, b]`` per class for out-of-fold ``probabilities`` (N, C) of ``labels`` (N, C), or None for
    ``none``; ``annotated`` (N, C) bool: the pairs that count (all when None)."""
    if kind not in CALIBRATIONS:
        raise ValueError(f"network_calibration is {kind!r}; expected one of {list(CALIBRATIONS)}")
    if kind == "none":
        return None
    labels = np.asarray(labels, dtype=np.float64)
    z = logit(probabilities)
    counted = np.ones(labels.shape, bool) if annotated is None else np.asarray(annotated, bool)
    a, b = _fit_pair(z[counted], labels[counted])
    params = np.tile(np.array([[a], [b]]), (1, labels.shape[1]))
    if kind == "platt":
        for c in range(labels.shape[1]):
            rows = counted[:, c]
            positives = labels[rows, c].sum()
            if positives >= min_positives and rows.sum() - positives >= min_positives:
                params[:, c] = _fit_pair(z[rows, c], labels[rows, c])
    return params


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> float:
    """The mean |observed rate - mean probability| over equal-width probability bins, weighted by the bins'
    share of the (record, class) pairs, pooled over classes.

    >>> import numpy as np
    >>> round(float(expected_calibration_error(np.array([[1], [0]]), np.array([[0.9], [0.1]]))), 3)
    0.1
    """
    y = np.asarray(labels, dtype=np.float64).ravel()
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for k in range(bins):
        inside = which == k
        if inside.any():
            total += inside.sum() * abs(y[inside].mean() - p[inside].mean())
    return total / max(len(p), 1)
