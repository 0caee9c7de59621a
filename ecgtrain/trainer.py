"""The training loop: one network for one lead set, early-stopped on validation records.

Each epoch sees every training record once, through one randomly chosen window (long records
thus contribute a different stretch each epoch), augmented on the fly (:mod:`ecgtrain.augment`).
After each epoch the validation records are scored with all their windows; the ``early_stopping``
setting picks what decides the best epoch: the task's metric at thresholds tuned on those records
(``metric``), its mean over the last three epochs (``smoothed``: one lucky epoch on a small split
no longer wins), the validation loss (``loss``) or nothing (``none``: the last epoch of a fixed
count). The best epoch's weights, thresholds and
validation probabilities are kept. What the classes are, how they are scored and how records are
split is the task's business (:mod:`ecgtrain.tasks`); devices and threads are
:mod:`ecgserve.device`'s; k-fold ensembles are :mod:`ecgtrain.folds`'.

Under torchrun (:mod:`ecgtrain.distributed`) the same loop runs on every rank: ``batch_size`` is the global
batch (all ranks together, so one setting means the same at any rank count, and so does the learning rate),
each rank trains on its equal part of every batch and predicts its share of the validation records, and
rank 0 scores the gathered predictions and hands its thresholds and scores to every rank, so all of them
keep the same best epoch and stop at the same epoch. In one process every one of those steps is the identity.
"""

from __future__ import annotations

import copy
import functools
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import models
from ecglog.progress import progress as progress_bar
from ecgserve.device import resolve_device, seed_everything
from ecgserve.inference import RecordInput, autocast, predict_records
from ecgserve.tabular import TabularScaler
from ecgtrain import distributed
from ecgtrain.augment import augment_signals, augmentations, mixup
from ecgtrain.data import LeadSetData
from ecgtrain.errors import SettingsError
from ecgtrain.labels import annotation_mask
from ecgtrain.losses import make_loss
from ecgtrain.settings import Settings
from ecgtrain.tasks import Task, get_task
from ecgtrain.thresholds import tune_as

log = logging.getLogger(__name__)
#: ``early_stopping="smoothed"`` ranks epochs by the mean metric of this many epochs (the last ones).
SMOOTHING = 3


@dataclass
class TrainedNetwork:
    """Everything the model folder stores for one lead set."""

    leads: tuple[str, ...]
    architecture: str
    model_kwargs: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    thresholds: np.ndarray
    scaler: TabularScaler
    validation: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    train_records: int = 0
    val_records: int = 0
    seconds: float = 0.0
    val_probabilities: np.ndarray | None = None  # best epoch's, for comparing threshold strategies


def _batches(order: np.ndarray, batch_size: int, ranks: int = 1) -> Iterator[np.ndarray]:
    """Consecutive slices of ``batch_size`` (global: all ranks together); a trailing batch too small to give
    each of ``ranks`` two rows joins the previous one (batch norm needs two; in one process: a batch of one)."""
    starts = list(range(0, len(order), batch_size))
    if len(starts) > 1 and len(order) - starts[-1] < 2 * ranks:
        starts.pop()
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else len(order)
        yield order[start:stop]


def _gather(
    data: LeadSetData, rows: np.ndarray, rng: np.random.Generator, augment: tuple[str, ...], fs: float
) -> tuple[np.ndarray, np.ndarray]:
    """One random window per record, augmented: signals (B, L, T) and fiducial channels (B, C, T)."""
    signals, fiducials = [], []
    for i in rows:
        signal, fiducial = data.window(i, int(rng.integers(data.num_windows(i))))
        signals.append(signal)
        fiducials.append(fiducial)
    return augment_signals(np.stack(signals), np.stack(fiducials), augment, rng, fs)


def record_inputs(data: LeadSetData, rows: Sequence[int] | np.ndarray, tabular: np.ndarray) -> Iterator[RecordInput]:
    for i in rows:
        prepared = data.prepared(i)
        yield prepared.windows, prepared.fiducials, tabular[i]


@dataclass
class _Fit:
    """The moving parts of one training run."""

    network: torch.nn.Module
    model: torch.nn.Module  # what training calls: ``network``, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    schedule: Any
    criterion: torch.nn.Module
    grad_scaler: torch.amp.GradScaler
    device: torch.device
    augment: tuple[str, ...]
    fs: float
    mask: np.ndarray | None  # (N, C) classes counted in each record's loss; None: all


def _setup(
    data: LeadSetData, settings: Settings, train_rows: np.ndarray, num_tabular: int
) -> tuple[_Fit, dict[str, Any]]:
    """Network (sized from the data), AdamW with a one-cycle schedule, the loss of the settings, AMP scaler."""
    device = distributed.rank_device(resolve_device(settings.device))
    first_signal, first_fiducials = data.window(int(train_rows[0]), 0)
    model_kwargs = {
        "num_leads": int(first_signal.shape[0]),
        "num_fiducial": int(first_fiducials.shape[0]),
        "num_tabular": num_tabular,
        "num_classes": int(data.targets.shape[1]),
        "branches": list(settings.branches),
        **settings.model_kwargs,
    }
    network = models.build(settings.architecture, **model_kwargs).to(device)
    model = distributed.wrap(network, device)
    steps_per_epoch = max(len(list(_batches(train_rows, settings.batch_size, distributed.world_size()))), 1)
    optimizer = torch.optim.AdamW(network.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings.learning_rate, total_steps=settings.epochs * steps_per_epoch, pct_start=0.2
    )
    try:
        criterion = make_loss(
            settings.loss, data.targets[train_rows], settings.max_pos_weight, device, settings.loss_kwargs
        )
    except ValueError as error:
        raise SettingsError(str(error)) from None
    grad_scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    mask = annotation_mask(data.sources, data.targets) if settings.mask_unannotated and data.sources else None
    fs = float(data.fs or 250.0)
    fit = _Fit(
        network, model, optimizer, schedule, criterion, grad_scaler, device, augmentations(settings.augment), fs, mask
    )
    return fit, model_kwargs


def _train_epoch(
    fit: _Fit,
    data: LeadSetData,
    train_rows: np.ndarray,
    tabular: np.ndarray,
    rng: np.random.Generator,
    settings: Settings,
    draws: np.random.Generator | None = None,
) -> float:
    """One pass over the training records (one random window each); returns the mean loss.

    ``rng`` orders the records; ``draws`` (default ``rng``) picks windows and augments. Several ranks share
    ``rng``'s state, so all cut the same permutation into the same global batches, and each trains on its
    part of every batch (:func:`ecgtrain.distributed.shard_batch`) with its own ``draws``."""
    draws = rng if draws is None else draws
    fit.model.train()
    losses = []
    for global_rows in _batches(rng.permutation(train_rows), settings.batch_size, distributed.world_size()):
        rows = distributed.shard_batch(global_rows)
        signal, fiducials = _gather(data, rows, draws, fit.augment, fit.fs)
        arrays = [signal, fiducials, tabular[rows], data.targets[rows].astype(np.float32)]
        mask = None if fit.mask is None else fit.mask[rows]
        if "mixup" in fit.augment:
            arrays, partner, _ = mixup(arrays, draws)
            mask = None if mask is None else mask & mask[partner]
        batch = [torch.from_numpy(np.ascontiguousarray(a)).to(fit.device) for a in arrays[:3]]
        target = torch.from_numpy(arrays[3]).to(fit.device)
        weights = None if mask is None else torch.from_numpy(mask).to(fit.device)
        fit.optimizer.zero_grad(set_to_none=True)
        with autocast(fit.device):
            loss = fit.criterion(fit.model(*batch).float(), target, weights)
            loss = loss + _auxiliary_loss(fit, target, weights)
        fit.grad_scaler.scale(loss).backward()
        fit.grad_scaler.unscale_(fit.optimizer)
        torch.nn.utils.clip_grad_norm_(fit.network.parameters(), 5.0)
        fit.grad_scaler.step(fit.optimizer)
        fit.grad_scaler.update()
        fit.schedule.step()
        losses.append(float(loss.detach()))
    return distributed.mean(float(np.mean(losses)), "the training losses")


def _auxiliary_loss(fit: _Fit, target: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor | float:
    """A network's own extra loss terms: ``auxiliary_logits`` (set by its last training forward) scored by the
    same criterion, mean over them, times its ``auxiliary_loss_weight``; 0 for networks without them."""
    weight = float(getattr(fit.network, "auxiliary_loss_weight", 0.0))
    logits = getattr(fit.network, "auxiliary_logits", None)
    if weight <= 0 or not logits:
        return 0.0
    return weight * torch.stack([fit.criterion(extra.float(), target, weights) for extra in logits]).mean()


def validation_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Unweighted mean binary cross-entropy of record probabilities: what ``early_stopping="loss"`` minimises."""
    p = np.clip(np.asarray(probabilities, np.float64), 1e-6, 1 - 1e-6)
    y = np.asarray(labels, bool)
    return float(-np.mean(np.where(y, np.log(p), np.log1p(-p))))


def _better(scores: dict[str, float], best: dict[str, Any], rule: str, metric: str) -> bool:
    """Whether this epoch beats the best so far under the ``early_stopping`` rule."""
    if "scores" not in best:
        return True
    if rule == "loss":
        return scores["val_loss"] < best["scores"]["val_loss"]
    if rule == "smoothed":
        return scores["smoothed_metric"] > best["scores"]["smoothed_metric"]
    if rule == "none":
        return True
    return scores[metric] > best["scores"][metric]


def _validate(
    fit: _Fit, data: LeadSetData, val_rows: np.ndarray, tabular: np.ndarray, settings: Settings
) -> np.ndarray:
    """Record probabilities of ``val_rows`` in their order: each rank predicts its contiguous share and the
    shares are gathered, so every rank holds the same array one process would compute."""
    distributed.sync_buffers(fit.network)
    mine = distributed.shard(val_rows)
    probabilities = predict_records(
        fit.network, record_inputs(data, mine, tabular), fit.device, aggregation=settings.window_aggregation
    )
    if len(mine) == 0 < len(val_rows):  # a rank left without validation records (fewer of them than ranks)
        probabilities = np.zeros((0, data.targets.shape[1]), np.float32)
    return distributed.gather_rows(probabilities, "the validation probabilities")


def _score(
    labels: np.ndarray, probabilities: np.ndarray, history: list[dict[str, float]], settings: Settings, task: Task
) -> tuple[np.ndarray, dict[str, float]]:
    """Thresholds tuned on the validation records and the epoch's scores at them (what early stopping reads)."""
    thresholds = tune_as(labels, probabilities, settings, task.scorer)
    scores = task.evaluate(labels, probabilities, thresholds, settings.decision_rule)
    scores["val_loss"] = validation_loss(labels, probabilities)
    if settings.early_stopping == "smoothed":
        recent = [entry[task.metric] for entry in history[-(SMOOTHING - 1) :]] + [scores[task.metric]]
        scores["smoothed_metric"] = float(np.mean(recent))
    return thresholds, scores


def train_network(
    data: LeadSetData,
    settings: Settings,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    task: Task | None = None,
    scaler: TabularScaler | None = None,
) -> TrainedNetwork:
    """Fit one network on ``train_rows``, early-stopped (``early_stopping`` setting) and threshold-tuned on
    ``val_rows`` for ``task`` (default: the ``task`` setting); ``scaler`` (default: fitted on ``train_rows``)
    standardises the tabular input."""
    task = task or get_task(settings.task)
    started = time.perf_counter()
    seed_everything(settings.seed)
    rng = np.random.default_rng(settings.seed)
    values, present = data.features()
    scaler = scaler or TabularScaler.fit(values[train_rows], present[train_rows])
    tabular = scaler.transform(values, present, data.ages, data.sexes)
    fit, model_kwargs = _setup(data, settings, train_rows, scaler.num_inputs)
    val_labels = data.targets[val_rows]
    name = "-".join(data.leads)
    best: dict[str, Any] = {"epoch": 0}
    history: list[dict[str, float]] = []
    bar = progress_bar(
        range(settings.epochs),
        desc=f"train {name}",
        unit="epoch",
        enabled=settings.progress,
        leave=False,
        may_stop_early=settings.early_stopping != "none",
    )
    draws = distributed.rank_rng(rng, settings.seed)
    distributed.seed_torch(settings.seed)
    for epoch in bar:
        loss = _train_epoch(fit, data, train_rows, tabular, rng, settings, draws)
        probabilities = _validate(fit, data, val_rows, tabular, settings)
        score = functools.partial(_score, val_labels, probabilities, history, settings, task)
        thresholds, scores = distributed.on_main(score, "the validation scores")
        history.append({"epoch": epoch + 1, "loss": loss, **scores})
        log.info(
            "%s epoch %d: loss %.4f, validation %s",
            name,
            epoch + 1,
            loss,
            ", ".join(f"{key} {value:.3f}" for key, value in scores.items()),
        )
        bar.set_postfix(loss=f"{loss:.3f}", metric=f"{scores[task.metric]:.3f}")
        if _better(scores, best, settings.early_stopping, task.metric):
            best = {
                "epoch": epoch + 1,
                "thresholds": thresholds,
                "scores": scores,
                "state": copy.deepcopy(fit.network.state_dict()),
                "probabilities": probabilities,
            }
        elif epoch + 1 >= settings.min_epochs and epoch + 1 - best["epoch"] >= settings.patience:
            log.info("%s: early stop after epoch %d (best %d)", name, epoch + 1, best["epoch"])
            break
    bar.close()
    return TrainedNetwork(
        leads=data.leads,
        architecture=settings.architecture,
        model_kwargs=model_kwargs,
        state_dict={k: v.detach().cpu() for k, v in best["state"].items()},
        thresholds=np.asarray(best["thresholds"], dtype=np.float64),
        scaler=scaler,
        validation=best["scores"],
        history=history,
        best_epoch=best["epoch"],
        train_records=len(train_rows),
        val_records=len(val_rows),
        seconds=time.perf_counter() - started,
        val_probabilities=best["probabilities"],
    )
