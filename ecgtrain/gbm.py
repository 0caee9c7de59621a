"""``features_member: gbm``: fitting gradient-boosted trees on the global PQRST features.

Why a second member: the network reads the same global features through a small MLP, which needs them
scaled and imputed and learns little from a few hundred records; boosted trees split on the raw
values (ms, mV, bpm), take a missing measurement as its own branch, and are strong on exactly this
kind of table. Per class one binary :class:`sklearn.ensemble.HistGradientBoostingClassifier` is
trained on each fold's training records (the networks' folds), so every training record gets an
out-of-fold tree probability to fit the blend weight and the thresholds on
(:func:`ecgtrain.stacking.add_features_member`); the k fold models are kept and averaged, as the
k fold networks are. A class with fewer than :data:`MIN_POSITIVES` positives (or negatives) in a
fold gets its prevalence there instead of trees fitted to one or two records.

The fitted trees are exported to plain node arrays (:func:`export_classifier`) and stored and
evaluated by :class:`ecgserve.forest.Forest`, without pickle and without sklearn at serving time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ecgserve.forest import Forest, assemble

#: The trees' settings, chosen by cross-validation on the shared records (docs/results/classification.md, "Features member").
GBM_PARAMS: dict[str, Any] = {
    "max_iter": 150,
    "learning_rate": 0.05,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 10,
    "l2_regularization": 1.0,
}
#: Keys the ``gbm_kwargs`` setting may change (early stopping stays off: every fold then fits the same way).
TUNABLE = ("max_iter", "learning_rate", "max_leaf_nodes", "min_samples_leaf", "l2_regularization", "max_depth")
#: A class needs this many positives and negatives among a fold's training records to get trees.
MIN_POSITIVES = 3
#: Probabilities of constant (prevalence) models are kept inside [EPS, 1 - EPS] so their log-odds stay finite.
EPS = 1e-6


def gbm_params(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The trees' parameters: :data:`GBM_PARAMS` with ``overrides`` (the ``gbm_kwargs`` setting); an unknown
    key is a ValueError naming it."""
    if not isinstance(overrides or {}, dict):
        raise ValueError(f"gbm_kwargs is {overrides!r}; expected an object of parameters")
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(TUNABLE))
    if unknown:
        raise ValueError(f"gbm_kwargs: unknown key(s) {unknown}; allowed: {list(TUNABLE)}")
    return {**GBM_PARAMS, **overrides}


def export_classifier(model: Any) -> tuple[float, list[dict[str, np.ndarray]]]:
    """(baseline log-odds, trees as node arrays) of a fitted binary ``HistGradientBoostingClassifier``."""
    if len(model.classes_) != 2 or model.n_trees_per_iteration_ != 1:
        raise ValueError("only binary classifiers (one tree per iteration) can be exported")
    trees = []
    for iteration in model._predictors:
        nodes = iteration[0].nodes
        if np.any(nodes["is_categorical"]):
            raise ValueError("categorical splits cannot be exported")
        trees.append(
            {
                "feature": nodes["feature_idx"].astype(np.int64),
                "threshold": nodes["num_threshold"].astype(np.float64),
                "missing_left": nodes["missing_go_to_left"].astype(bool),
                "left": nodes["left"].astype(np.int64),
                "right": nodes["right"].astype(np.int64),
                "value": nodes["value"].astype(np.float64),
                "is_leaf": nodes["is_leaf"].astype(bool),
            }
        )
    return float(model._baseline_prediction.reshape(-1)[0]), trees


def fit_class(inputs: np.ndarray, target: np.ndarray, params: dict[str, Any], seed: int) -> tuple[float, list]:
    """(baseline, trees) of one class: boosted trees, or the prevalence when positives or negatives are too few."""
    target = np.asarray(target, dtype=bool)
    positives = int(target.sum())
    if min(positives, len(target) - positives) < MIN_POSITIVES:
        prevalence = np.clip(positives / max(len(target), 1), EPS, 1 - EPS)
        return float(np.log(prevalence / (1 - prevalence))), []
    from sklearn.ensemble import HistGradientBoostingClassifier  # imported here: only this member needs it

    model = HistGradientBoostingClassifier(**params, early_stopping=False, random_state=seed)
    # sklearn cannot bin a column without one value (a feature the lead set never measures); a constant
    # column is never split on either, so the trees are those of the column left out.
    model.fit(np.where(np.isnan(inputs).all(axis=0), 0.0, inputs), target)
    return export_classifier(model)


def train_forest(
    inputs: np.ndarray,
    targets: np.ndarray,
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    params: dict[str, Any],
    seed: int = 0,
) -> tuple[Forest, np.ndarray]:
    """One model per fold and class on the fold's training rows; returns the forest of all folds and the
    out-of-fold probabilities (the validation rows of each fold in turn, concatenated)."""
    targets = np.asarray(targets, dtype=bool)
    baseline = np.zeros((len(pairs), targets.shape[1]))
    trees: list[list[list[dict[str, np.ndarray]]]] = []
    oof = []
    for k, (train_rows, val_rows) in enumerate(pairs):
        member = []
        for c in range(targets.shape[1]):
            baseline[k, c], model = fit_class(inputs[train_rows], targets[train_rows, c], params, seed + k)
            member.append(model)
        trees.append(member)
        single = assemble(baseline[k : k + 1], [member], inputs.shape[1])
        oof.append(single.probabilities(inputs[val_rows]))
    return assemble(baseline, trees, inputs.shape[1]), np.concatenate(oof)
