"""The criteria member: measured definitions (:mod:`ecgsignal.criteria`) blended into the model's probabilities.

Per class with a criterion, the final probability is ``(1 - w) * p + w * s`` where the criterion score ``s``
was measured (``p`` alone where it was not), ``p`` being the networks' and trees' blend. The weight ``w`` is
chosen on the out-of-fold probabilities of the training records, like every other blend weight:

* a class with at least ``min_positives`` positives among the records whose source annotates it: the ``w``
  of :data:`GRID` with the smallest out-of-fold log-loss over those records (ties to the smaller weight,
  the learned probability);
* a class with fewer: under ``decide``, ``w = 1``, the criterion decides (a model cannot learn what it never
  saw, and the definition is the same in every hospital); under ``blend`` (the default), ``w = 0``, the
  learned probability alone.

Why ``blend`` is the default (docs/results/generalisation.md): on the shared records plus LUDB, 12 leads,
trees, ``blend`` raised the Challenge metric over ``none`` both under leave-one-source-out (+0.040, 4
held-out sources) and under k-fold (+0.005); ``decide`` raised it further on held-out sources (+0.075) but
lowered it by 0.074 under k-fold, 5 folds of 5: classes no training record has (bradycardia, poor R-wave
progression, a long PR besides first-degree AV block) are then predicted on records of sources that never
label them.

The weights are stored with the trees (whose inputs carry the features the criteria read) and reported per
class at training, so which evidence decided each class is on record (:func:`evidence_lines`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from ecgserve.blending import criterion_abbreviations, mix_criteria, scores_from_tree_inputs
from ecgsignal.criteria import CRITERIA
from ecgtrain.labels import annotation_mask

log = logging.getLogger(__name__)

#: Values of the ``diagnostic_criteria`` setting.
CRITERIA_MODES = ("blend", "decide", "none")
#: Candidate criterion weights.
GRID = np.round(np.linspace(0.0, 1.0, 11), 2)


def _log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    p = np.clip(probabilities, 1e-6, 1 - 1e-6)
    return float(-np.mean(np.where(labels, np.log(p), np.log1p(-p))))


def fit_weights(
    labels: np.ndarray,
    probabilities: np.ndarray,
    scores: np.ndarray,
    annotated: np.ndarray,
    min_positives: int,
    decide_unseen: bool = False,
) -> np.ndarray:
    """(C,) criterion weights from out-of-fold ``labels``, ``probabilities`` and ``scores`` (all (N, C));
    ``annotated`` (N, C) says which labels are meant (a source that never annotates a class says nothing
    about it). Classes without a measured score get 0; classes with too few positives 1 when
    ``decide_unseen``, else 0."""
    labels = np.asarray(labels, dtype=bool)
    weights = np.zeros(labels.shape[1])
    for c in range(labels.shape[1]):
        measured = np.isfinite(scores[:, c])
        if not measured.any():
            continue
        counted = annotated[:, c]
        if int(labels[counted, c].sum()) < max(min_positives, 1):
            weights[c] = 1.0 if decide_unseen else 0.0
            continue
        rows = counted & measured
        losses = [_log_loss(labels[rows, c], (1 - w) * probabilities[rows, c] + w * scores[rows, c]) for w in GRID]
        weights[c] = float(GRID[int(np.argmin(np.round(losses, 9)))])
    return weights


def fit_member(
    labels: np.ndarray,
    probabilities: np.ndarray,
    tree_inputs: np.ndarray,
    sources: Sequence[str],
    classes: Sequence[str],
    min_positives: int,
    decide_unseen: bool = False,
) -> tuple[np.ndarray | None, np.ndarray]:
    """(C,) criterion weights fitted on out-of-fold records (see module doc), or None when the task's
    classes have no criteria, and those records' probabilities with the criteria mixed in by them (what
    :func:`ecgserve.blending.with_criteria` gives, from the scores computed once here). ``tree_inputs``:
    those records' trees' inputs; ``sources``: their sources."""
    names = criterion_abbreviations(classes)
    if names is None:
        return None, probabilities
    scores = scores_from_tree_inputs(tree_inputs, names)
    annotated = annotation_mask(list(sources), labels)
    weights = fit_weights(labels, probabilities, scores, annotated, min_positives, decide_unseen)
    log.info("criteria: %s", "; ".join(evidence_lines(weights, names)))
    return weights, mix_criteria(probabilities, scores, weights)


def evidence_lines(weights: np.ndarray, abbreviations: Sequence[str]) -> list[str]:
    """Per class with a criterion, which evidence decides it: ``learned``, ``criterion`` or a mix."""
    out = []
    for name, w in zip(abbreviations, weights):
        if name not in CRITERIA:
            continue
        kind = "criterion" if w >= 1 else "learned" if w <= 0 else f"mix (criterion weight {w:.1f})"
        out.append(f"{name}: {kind}")
    return out
