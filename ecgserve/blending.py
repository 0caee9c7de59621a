"""How a saved model's members become one probability per class.

Three steps, each with parameters fitted at training on out-of-fold probabilities and stored in the
model folder (:mod:`ecgtrain.calibration`, :mod:`ecgtrain.stacking`, :mod:`ecgtrain.criteria`):

1. the networks' probabilities are calibrated, ``sigmoid(a * logit(p) + b)`` per class (monotone, so
   each class's ranking is kept; it changes how the networks weigh against the trees);
2. they are mixed with the boosted trees' by per-class member weights;
3. each class defined by a measurement (:mod:`ecgsignal.criteria`) gets its criterion score mixed in
   by its weight, where the criterion was measured.

Training computes its out-of-fold blend with the same functions, so what was tuned is what is served.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ecgscore.classes import ABBREVIATIONS, scored_classes
from ecgserve.forest import Forest
from ecgsignal.criteria import criterion_scores
from ecgsignal.features import FEATURE_NAMES

EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) with ``p`` kept inside [EPS, 1 - EPS], so 0 and 1 stay finite."""
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) without overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def calibrate(probabilities: np.ndarray, params: np.ndarray | None) -> np.ndarray:
    """(N, C) calibrated probabilities by (2, C) ``[a, b]`` (unchanged when ``params`` is None)."""
    if params is None:
        return probabilities
    params = np.asarray(params, dtype=np.float64)
    return sigmoid(params[0] * logit(probabilities) + params[1])


def mix(probabilities: Sequence[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """(N, C) mixed probabilities from G (N, C) arrays and (G, C) weights."""
    return np.einsum("gc,gnc->nc", np.asarray(weights, np.float64), np.stack(probabilities).astype(np.float64))


def blend(network: np.ndarray, forest: Forest, weights: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    """(N, C) networks' probabilities mixed with the trees' on the same records by (2, C) ``weights``."""
    return mix([network, forest.probabilities(inputs)], weights)


def criterion_abbreviations(classes: Sequence[str]) -> tuple[str, ...] | None:
    """The scored classes' abbreviations when ``classes`` are the Challenge's 26 (the only task whose classes
    the criteria define), else None."""
    groups = scored_classes()
    if len(classes) != len(groups) or any(code not in group for code, group in zip(classes, groups)):
        return None
    return ABBREVIATIONS


def scores_from_tree_inputs(inputs: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """(N, C) criterion scores from the trees' inputs (:func:`ecgserve.forest.gbm_inputs`: the features, age,
    male, female), so training and a saved model compute them from the same array."""
    inputs = np.atleast_2d(np.asarray(inputs, dtype=np.float64))
    features = len(FEATURE_NAMES)
    male, female = inputs[:, features + 1], inputs[:, features + 2]
    sexes = ["Male" if m == 1 else "Female" if f == 1 else None for m, f in zip(male, female)]
    return criterion_scores(inputs[:, :features], sexes, classes)


def mix_criteria(probabilities: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(N, C) ``probabilities`` with each class's measured criterion score mixed in by its weight."""
    weights = np.asarray(weights, dtype=np.float64)
    measured = np.isfinite(scores) & (weights > 0)
    mixed = (1.0 - weights) * probabilities + weights * np.nan_to_num(scores)
    return np.where(measured, mixed, probabilities)


def with_criteria(
    probabilities: np.ndarray, tree_inputs: np.ndarray, classes: Sequence[str], weights: np.ndarray | None
) -> np.ndarray:
    """``probabilities`` of records with trees' inputs ``tree_inputs``, with the criteria mixed in by
    ``weights`` (unchanged when None: a model trained without criteria)."""
    names = criterion_abbreviations(classes)
    if weights is None or names is None:
        return probabilities
    return mix_criteria(probabilities, scores_from_tree_inputs(tree_inputs, names), weights)


def combine(
    networks: np.ndarray,
    forest: Forest,
    member_weights: np.ndarray,
    tree_inputs: np.ndarray,
    classes: Sequence[str],
    calibration: np.ndarray | None = None,
    criteria_weights: np.ndarray | None = None,
) -> np.ndarray:
    """(N, C) final probabilities: the networks' (N, C) calibrated, blended with the trees' on ``tree_inputs``
    and with the criteria mixed in: the three steps of the module docstring, in order."""
    mixed = blend(calibrate(networks, calibration), forest, member_weights, tree_inputs)
    return with_criteria(mixed, tree_inputs, classes, criteria_weights)
