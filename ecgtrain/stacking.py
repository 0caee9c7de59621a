"""``fusion: stacked``: one ensemble per branch group, mixed per class by out-of-fold weights.

Each group of ``stack_groups`` (by default the raw signal, and the PQRST branches) is trained as
its own k-fold ensemble on the same folds (:func:`ecgtrain.folds.train_ensemble`), so every
training record has an out-of-fold probability from every group. The mixing weights are fitted on
those out-of-fold probabilities (``stack_weights``), the thresholds are then tuned on the mixed
ones, and member k of the result is :class:`models.branch_stack.BranchStack` over the groups'
k-th networks: the mean over members of the mixed probabilities equals the mix of the groups'
ensemble means, so what was tuned out of fold is what the saved model computes.

Weight rules (docs/results/classification.md says which one cross-validation chose):

* ``global``: one weight vector for all classes, the point of a simplex grid whose mixed out-of-fold
  probabilities score best on the task's metric at thresholds tuned on them (the same tuning the
  model gets);
* ``per_class``: per class the grid point with the smallest out-of-fold binary log-loss; classes
  with fewer than ``threshold_min_positives`` out-of-fold positives take the ``global`` weights.

The features member (``features_member: gbm``, :func:`add_features_member`) is mixed the same way:
boosted trees on the global features (:mod:`ecgtrain.gbm`) trained on the networks' folds, one
``global`` weight for networks against trees fitted on the out-of-fold probabilities, thresholds
tuned on the blend.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from ecgserve.blending import calibrate, mix
from ecgserve.forest import gbm_inputs
from ecgtrain import calibration, criteria
from ecgtrain.data import LeadSetData
from ecgtrain.folds import FoldedRecords, TrainedEnsemble, train_ensemble
from ecgtrain.gbm import gbm_params, train_forest
from ecgtrain.labels import annotation_mask
from ecgtrain.settings import Settings
from ecgtrain.tasks import Task
from ecgtrain.thresholds import tune_as
from ecgtrain.weight_rules import WEIGHT_RULES

log = logging.getLogger(__name__)

#: Spacing of the simplex grid the mixing weights are chosen from.
GRID_STEP = 0.1


def simplex_grid(groups: int, step: float = GRID_STEP) -> np.ndarray:
    """(M, groups) weight vectors on a regular grid, each non-negative and summing to 1."""
    ticks = round(1 / step)
    rows = [c for c in itertools.product(range(ticks + 1), repeat=groups) if sum(c) == ticks]
    return np.asarray(rows, dtype=np.float64) / ticks


def _tuned_score(labels: np.ndarray, probabilities: np.ndarray, task: Task, settings: Settings) -> float:
    thresholds = tune_as(labels, probabilities, settings, task.scorer)
    return float(task.evaluate(labels, probabilities, thresholds, settings.decision_rule)[task.metric])


def _log_loss(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Binary log-loss per class (columns)."""
    p = np.clip(probabilities, 1e-6, 1 - 1e-6)
    return -np.mean(np.where(labels, np.log(p), np.log1p(-p)), axis=0)


def fit_weights(
    labels: np.ndarray, probabilities: Sequence[np.ndarray], rule: str, task: Task, settings: Settings
) -> np.ndarray:
    """(G, C) mixing weights for G groups' out-of-fold probabilities of the same records (see module doc)."""
    if rule not in WEIGHT_RULES:
        raise ValueError(f"stack_weights is {rule!r}; expected one of {list(WEIGHT_RULES)}")
    labels = np.asarray(labels, bool)
    groups, classes = len(probabilities), labels.shape[1]
    grid = simplex_grid(groups)
    scores = [_tuned_score(labels, mix(probabilities, np.repeat(w[:, None], classes, 1)), task, settings) for w in grid]
    # Ties (common on small data) go to the most even mix: it averages out more of each part's noise.
    evenness = -np.abs(grid - 1 / groups).sum(axis=1)
    best = grid[max(range(len(grid)), key=lambda i: (round(scores[i], 9), evenness[i]))]
    weights = np.repeat(best[:, None], classes, axis=1)
    if rule == "per_class":
        stacked = np.stack(probabilities).astype(np.float64)  # (G, N, C)
        losses = np.stack([_log_loss(labels, np.einsum("g,gnc->nc", w, stacked)) for w in grid])  # (M, C)
        enough = labels.sum(axis=0) >= max(settings.threshold_min_positives, 1)
        weights[:, enough] = grid[np.argmin(losses[:, enough], axis=0)].T
    return weights


def stack(ensembles: Sequence[TrainedEnsemble], labels: np.ndarray, task: Task, settings: Settings) -> TrainedEnsemble:
    """The groups' ensembles (same folds, same out-of-fold records) as one ensemble of ``branch_stack``
    members, with weights and thresholds tuned on the mixed out-of-fold probabilities; ``labels`` are the
    targets of the out-of-fold records."""
    first = ensembles[0]
    for other in ensembles[1:]:
        if not np.array_equal(other.oof_rows, first.oof_rows) or len(other.members) != len(first.members):
            raise ValueError("stacked groups were not trained on the same folds")
    weights = fit_weights(labels, [e.oof_probabilities for e in ensembles], settings.stack_weights, task, settings)
    probabilities = mix([e.oof_probabilities for e in ensembles], weights)
    thresholds = tune_as(labels, probabilities, settings, task.scorer)
    validation = task.evaluate(labels, probabilities, thresholds, settings.decision_rule)
    common = ("num_leads", "num_fiducial", "num_tabular", "num_classes")
    model_kwargs = {
        **{key: first.model_kwargs[key] for key in common},
        "branches": sorted({b for e in ensembles for b in e.model_kwargs.get("branches", [])}),
        "parts": [
            {
                "architecture": e.architecture,
                "model_kwargs": {k: v for k, v in e.model_kwargs.items() if k not in common},
            }
            for e in ensembles
        ],
    }
    weight_tensor = torch.from_numpy(weights.astype(np.float32))
    members = []
    for k, member in enumerate(first.members):
        state = {
            f"parts.{g}.{name}": value
            for g, e in enumerate(ensembles)
            for name, value in e.members[k].state_dict.items()
        }
        state["weights"] = weight_tensor.clone()
        parts_val = [e.members[k].val_probabilities for e in ensembles]
        members.append(
            replace(
                member,
                architecture="branch_stack",
                model_kwargs=model_kwargs,
                state_dict=state,
                val_probabilities=None if any(p is None for p in parts_val) else mix(parts_val, weights),  # type: ignore[arg-type]
                seconds=sum(e.members[k].seconds for e in ensembles),
            )
        )
    log.info(
        "%s stacked: weights per group (mean over classes) %s, out-of-fold %s %.3f",
        "-".join(first.leads),
        ", ".join(f"{w:.2f}" for w in weights.mean(axis=1)),
        task.metric,
        validation[task.metric],
    )
    return replace(
        first,
        architecture="branch_stack",
        model_kwargs=model_kwargs,
        members=members,
        thresholds=np.asarray(thresholds, dtype=np.float64),
        validation=validation,
        oof_probabilities=probabilities,
        seconds=sum(e.seconds for e in ensembles),
        parts=list(ensembles),
        stack_weights=weights,
    )


def train_lead_set(records: FoldedRecords, settings: Settings) -> TrainedEnsemble:
    """What ``training_code`` trains for one lead set under the ``fusion`` setting: one ensemble of the
    ``branches`` (``joint``), or one per group of ``stack_groups`` mixed by :func:`stack` (``stacked``)."""
    if settings.fusion == "joint":
        trained = train_ensemble(records, settings)
    else:
        parts = [train_ensemble(records, replace(settings, branches=tuple(group))) for group in settings.stack_groups]
        trained = stack(parts, records.data.targets[parts[0].oof_rows], records.task, settings)
    if settings.features_member == "gbm":
        trained = add_features_member(trained, records, settings)
    return trained


def record_gbm_inputs(data: LeadSetData, rows: np.ndarray) -> np.ndarray:
    """The trees' input (:func:`ecgserve.forest.gbm_inputs`) of ``rows``."""
    values, present = data.features()
    return gbm_inputs(values[rows], present[rows], data.ages[rows], [data.sexes[i] for i in rows])


def calibrated_networks(
    networks: np.ndarray, labels: np.ndarray, sources: Sequence[str], trees: np.ndarray, task: Task, settings: Settings
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The networks' out-of-fold probabilities calibrated by ``network_calibration`` (:mod:`ecgtrain.calibration`),
    its parameters (None: unchanged) and the (2, C) ``global`` weights of those networks against the trees;
    logs the calibration error and the trees' blend weight before and after, so what calibrating changed is
    on record."""
    params = calibration.fit(labels, networks, settings.network_calibration, annotation_mask(sources, labels))
    calibrated = calibrate(networks, params)
    weights = fit_weights(labels, [calibrated, trees], "global", task, settings)
    if params is None:
        return networks, None, weights
    before = fit_weights(labels, [networks, trees], "global", task, settings)[1, 0]
    log.info(
        "networks calibrated (%s, mean a %.2f, b %.2f): calibration error %.4f -> %.4f (trees %.4f),"
        " trees' blend weight %.2f -> %.2f",
        settings.network_calibration,
        params[0].mean(),
        params[1].mean(),
        calibration.expected_calibration_error(labels, networks),
        calibration.expected_calibration_error(labels, calibrated),
        calibration.expected_calibration_error(labels, trees),
        before,
        weights[1, 0],
    )
    return calibrated, params, weights


def add_features_member(trained: TrainedEnsemble, records: FoldedRecords, settings: Settings) -> TrainedEnsemble:
    """``trained`` with boosted trees trained on its folds, blended by a ``global`` out-of-fold weight; its
    thresholds and out-of-fold probabilities become the blend's (what the saved model computes)."""
    data, task = records.data, records.task
    pairs = records.pairs()
    if not np.array_equal(np.concatenate([val for _, val in pairs]), trained.oof_rows):
        raise ValueError("the features member's folds differ from the networks' folds")
    inputs = record_gbm_inputs(data, np.arange(len(data)))
    forest, trees = train_forest(inputs, data.targets, pairs, gbm_params(settings.gbm_kwargs), settings.seed)
    labels = data.targets[trained.oof_rows]
    sources = [data.sources[i] for i in trained.oof_rows]
    networks, network_calibration, weights = calibrated_networks(
        trained.oof_probabilities, labels, sources, trees, task, settings
    )
    probabilities = mix([networks, trees], weights)
    criteria_weights = None
    if settings.diagnostic_criteria != "none":
        oof_inputs = inputs[trained.oof_rows]
        min_positives = settings.threshold_min_positives
        criteria_weights, probabilities = criteria.fit_member(
            labels,
            probabilities,
            oof_inputs,
            sources,
            task.classes,
            min_positives,
            settings.diagnostic_criteria == "decide",
        )
    thresholds = tune_as(labels, probabilities, settings, task.scorer)
    validation = task.evaluate(labels, probabilities, thresholds, settings.decision_rule)
    log.info(
        "%s features member (gbm): weight %.2f, out-of-fold %s: networks %.3f, trees %.3f, blend %.3f",
        "-".join(data.leads),
        weights[1, 0],
        task.metric,
        trained.validation[task.metric],
        _tuned_score(labels, trees, task, settings),
        validation[task.metric],
    )
    return replace(
        trained,
        thresholds=np.asarray(thresholds, dtype=np.float64),
        validation=validation,
        oof_probabilities=probabilities,
        features_member=forest,
        member_weights=weights,
        criteria_weights=criteria_weights,
        network_calibration=network_calibration,
    )
