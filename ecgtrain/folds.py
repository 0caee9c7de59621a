"""Out-of-fold training of one lead set: k networks, thresholds tuned on every training record.

With one train/validation split (``folds`` = 1) the thresholds and the early-stopping epoch are
tuned on a fifth of the records, a few dozen on small data: they fit those records' noise and the
held-out score falls far below the validation one. With k folds every record is predicted once by
a network that did not train on it; the thresholds are tuned on all those out-of-fold predictions
(k times more records than one split gives), and the k networks are kept as an ensemble (mean of
probabilities, :mod:`ecgserve.ensemble`), which is what the out-of-fold predictions approximate.

The folds are made once per training run on the task's targets and the records' sources, so every
lead set's networks see the same folds (their reduced-lead versions).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from ecgdata.index import DatasetIndex
from ecgserve.ensemble import merge_state_dicts
from ecgserve.forest import Forest
from ecgserve.tabular import TabularScaler
from ecgtrain.data import LeadSetData
from ecgtrain.settings import Settings
from ecgtrain.tasks import Task
from ecgtrain.thresholds import tune_as
from ecgtrain.trainer import TrainedNetwork, train_network

log = logging.getLogger(__name__)


@dataclass
class TrainedEnsemble:
    """The k networks of one lead set with the thresholds tuned on their out-of-fold predictions."""

    leads: tuple[str, ...]
    architecture: str
    model_kwargs: dict[str, Any]
    members: list[TrainedNetwork]
    scaler: TabularScaler
    thresholds: np.ndarray
    validation: dict[str, float]  # scores of the out-of-fold predictions (k = 1: of the validation split)
    oof_rows: np.ndarray  # the records the out-of-fold predictions are of (rows of the LeadSetData)
    oof_probabilities: np.ndarray
    seconds: float
    parts: list[TrainedEnsemble] | None = None  # fusion "stacked": the groups' own ensembles
    stack_weights: np.ndarray | None = None  # fusion "stacked": (groups, classes) mixing weights
    features_member: Forest | None = None  # features_member "gbm": trees on the global features
    member_weights: np.ndarray | None = None  # features_member: (2, classes) weights of networks and trees
    criteria_weights: np.ndarray | None = None  # diagnostic_criteria "blend": (classes,) criterion weights
    network_calibration: np.ndarray | None = None  # network_calibration: (2, classes) logit scale and shift

    @property
    def networks(self) -> list[TrainedNetwork]:
        """Every network trained for this lead set (a stack's parts' networks, else the members)."""
        return [network for part in self.parts for network in part.members] if self.parts else list(self.members)

    @property
    def state_dict(self) -> dict[str, torch.Tensor]:
        """One state dict for :class:`ecgserve.ensemble.MeanProbability` of all members."""
        return merge_state_dicts([member.state_dict for member in self.members])

    @property
    def best_epoch(self) -> int:
        """The members' median best epoch (each member's is in ``members``)."""
        return int(np.median([member.best_epoch for member in self.members]))


def fold_names(table: DatasetIndex, targets: np.ndarray, settings: Settings, task: Task) -> list[set[str]]:
    """The validation records of each fold, by name: k folds of the task's k-fold split, or for ``folds`` = 1
    the task's single train/validation split."""
    if settings.folds == 1:
        _, val = task.split(targets, table.sources, settings.val_fraction, settings.seed)
        return [{table.records[i] for i in val}]
    count = len(table.records)
    if count < 2 * settings.folds:
        raise ValueError(f"{count} records are too few for {settings.folds} folds; use fewer 'folds'")
    pairs = task.kfold(targets, table.sources, settings.folds, settings.seed)
    return [{table.records[i] for i in val} for _, val in pairs]


def fold_rows(data: LeadSetData, folds: Sequence[set[str]], rows: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(training rows, validation rows) of each fold among ``rows``: every member of a lead set (networks,
    the features member) trains and predicts on exactly these, so their out-of-fold predictions align."""
    pairs = []
    for fold in folds:
        chosen = np.array([name in fold for name in np.asarray(data.names)[rows]], bool)
        train_rows, val_rows = rows[~chosen], rows[chosen]
        if not len(val_rows) or not len(train_rows):  # a smoke run on very few records: train and validate on all
            train_rows = val_rows = rows
        pairs.append((train_rows, val_rows))
    return pairs


@dataclass(frozen=True)
class FoldedRecords:
    """What every member of a lead set trains on, the same for all of them so that their out-of-fold
    predictions align: the lead set's data, its folds (each fold's validation records, by name), the task,
    and the rows taking part (``None``: every record of ``data``)."""

    data: LeadSetData
    folds: Sequence[set[str]]
    task: Task
    rows: np.ndarray | None = None

    def row_indices(self) -> np.ndarray:
        """The rows taking part, as int64 indices."""
        return np.arange(len(self.data)) if self.rows is None else np.asarray(self.rows, dtype=np.int64)

    def pairs(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(training rows, validation rows) of each fold (:func:`fold_rows`)."""
        return fold_rows(self.data, self.folds, self.row_indices())


def train_ensemble(records: FoldedRecords, settings: Settings) -> TrainedEnsemble:
    """One network per fold (trained on the records' rows outside it, early-stopped on it), thresholds tuned
    on the out-of-fold predictions. With one fold the records outside it train and the fold validates, as a
    single split does (its records then are the "out-of-fold" ones)."""
    started = time.perf_counter()
    data, folds, task, rows = records.data, records.folds, records.task, records.row_indices()
    values, present = data.features()
    # k folds share one scaler (the ensemble has one tabular input); one split fits it on its training records.
    scaler = TabularScaler.fit(values[rows], present[rows]) if len(folds) > 1 else None
    members, oof_rows, oof = [], [], []
    pairs = records.pairs()
    for k, (train_rows, val_rows) in enumerate(pairs):
        member_settings = replace(settings, seed=settings.seed + k)
        member = train_network(data, member_settings, train_rows, val_rows, task, scaler)
        log.info(
            "%s fold %d/%d: best epoch %d, fold %s %.3f",
            "-".join(data.leads),
            k + 1,
            len(pairs),
            member.best_epoch,
            task.metric,
            member.validation[task.metric],
        )
        members.append(member)
        oof_rows.append(val_rows)
        assert member.val_probabilities is not None
        oof.append(member.val_probabilities)
    all_rows, probabilities = np.concatenate(oof_rows), np.concatenate(oof)
    labels = data.targets[all_rows]
    if len(folds) == 1:
        thresholds = members[0].thresholds
    else:
        thresholds = tune_as(labels, probabilities, settings, task.scorer)
    validation = task.evaluate(labels, probabilities, thresholds, settings.decision_rule)
    return TrainedEnsemble(
        leads=data.leads,
        architecture=members[0].architecture,
        model_kwargs=members[0].model_kwargs,
        members=members,
        scaler=scaler or members[0].scaler,
        thresholds=np.asarray(thresholds, dtype=np.float64),
        validation=validation,
        oof_rows=all_rows,
        oof_probabilities=probabilities,
        seconds=time.perf_counter() - started,
    )


def add_copies(
    names: Sequence[str],
    inputs: np.ndarray,
    targets: np.ndarray,
    pairs: list[tuple[np.ndarray, np.ndarray]],
    copy_names: Sequence[str],
    copy_inputs: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Rows of the copies appended after the originals' (targets: the original's), and each fold's training
    rows joined by the copies of its training rows only: a validation row's copy is trained on by no fold
    that validates it (it is in no training set at all unless its original is)."""
    row_of = {name: row for row, name in enumerate(copy_names)}
    extra = np.array([i for i, name in enumerate(names) if name in row_of], dtype=np.int64)
    copy_of = np.full(len(names), -1)
    copy_of[extra] = len(names) + np.arange(len(extra))
    inputs = np.concatenate([inputs, copy_inputs[[row_of[names[i]] for i in extra]]])
    targets = np.concatenate([targets, targets[extra]])
    return inputs, targets, [(np.concatenate([tr, copy_of[tr][copy_of[tr] >= 0]]), val) for tr, val in pairs]
