"""The training loop: one network for one lead set, early-stopped and threshold-tuned on validation records.

Each epoch sees every training record once, through one randomly chosen window (long records
thus contribute a different stretch each epoch). After each epoch the validation records are
scored with all their windows, thresholds are tuned on them and the task's metric at those
thresholds decides early stopping; the best epoch's weights and thresholds are kept. What the
classes are, how they are scored and how records are split is the task's business
(:mod:`training.tasks`); devices and threads are :mod:`training.device`'s.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import models
from ecglog.progress import progress as progress_bar
from training.data import LeadSetData
from training.device import resolve_device, seed_everything
from training.inference import RecordInput, autocast, predict_records
from training.losses import weighted_bce
from training.settings import Settings
from training.tabular import TabularScaler
from training.tasks import Task, get_task
from training.thresholds import tune

log = logging.getLogger(__name__)


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


def _batches(order: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Consecutive slices; a trailing batch of one joins the previous one (batch norm needs two)."""
    starts = list(range(0, len(order), batch_size))
    if len(starts) > 1 and len(order) - starts[-1] == 1:
        starts.pop()
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else len(order)
        yield order[start:stop]


def _gather(
    data: LeadSetData, rows: np.ndarray, rng: np.random.Generator, augment: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One random window per record: signals (B, L, T) and fiducial channels (B, C, T)."""
    signals, fiducials = [], []
    for i in rows:
        signal, fiducial = data.window(i, int(rng.integers(data.num_windows(i))))
        signals.append(signal)
        fiducials.append(fiducial)
    signal = np.stack(signals)
    if augment:
        # Gain differences between devices and electrode placement, and small noise.
        signal = signal * rng.uniform(0.8, 1.2, size=(len(rows), signal.shape[1], 1)).astype(np.float32)
        signal = signal + rng.normal(0.0, 0.05, size=signal.shape).astype(np.float32)
    return signal, np.stack(fiducials)


def record_inputs(data: LeadSetData, rows: Sequence[int] | np.ndarray, tabular: np.ndarray) -> Iterator[RecordInput]:
    for i in rows:
        prepared = data.prepared(i)
        yield prepared.windows, prepared.fiducials, tabular[i]


@dataclass
class _Fit:
    """The moving parts of one training run."""

    network: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Any
    criterion: torch.nn.Module
    grad_scaler: torch.amp.GradScaler
    device: torch.device


def _setup(
    data: LeadSetData, settings: Settings, train_rows: np.ndarray, num_tabular: int
) -> tuple[_Fit, dict[str, Any]]:
    """Network (sized from the data), AdamW with a one-cycle schedule, weighted loss, AMP scaler."""
    device = resolve_device(settings.device)
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
    steps_per_epoch = max(len(list(_batches(train_rows, settings.batch_size))), 1)
    optimizer = torch.optim.AdamW(network.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings.learning_rate, total_steps=settings.epochs * steps_per_epoch, pct_start=0.2
    )
    criterion = weighted_bce(data.targets[train_rows], settings.max_pos_weight, device)
    grad_scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    return _Fit(network, optimizer, schedule, criterion, grad_scaler, device), model_kwargs


def _train_epoch(
    fit: _Fit,
    data: LeadSetData,
    train_rows: np.ndarray,
    tabular: np.ndarray,
    rng: np.random.Generator,
    settings: Settings,
) -> float:
    """One pass over the training records (one random window each); returns the mean loss."""
    fit.network.train()
    losses = []
    for rows in _batches(rng.permutation(train_rows), settings.batch_size):
        signal, fiducials = _gather(data, rows, rng, settings.augment)
        batch = [torch.from_numpy(a).to(fit.device) for a in (signal, fiducials, tabular[rows])]
        target = torch.from_numpy(data.targets[rows].astype(np.float32)).to(fit.device)
        fit.optimizer.zero_grad(set_to_none=True)
        with autocast(fit.device):
            loss = fit.criterion(fit.network(*batch).float(), target)
        fit.grad_scaler.scale(loss).backward()
        fit.grad_scaler.unscale_(fit.optimizer)
        torch.nn.utils.clip_grad_norm_(fit.network.parameters(), 5.0)
        fit.grad_scaler.step(fit.optimizer)
        fit.grad_scaler.update()
        fit.schedule.step()
        losses.append(float(loss.detach()))
    return float(np.mean(losses))


def train_network(
    data: LeadSetData,
    settings: Settings,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    task: Task | None = None,
) -> TrainedNetwork:
    """Fit one network on ``train_rows``, early-stopped and threshold-tuned on ``val_rows`` for ``task``
    (default: the ``task`` setting)."""
    task = task or get_task(settings.task)
    started = time.perf_counter()
    seed_everything(settings.seed)
    rng = np.random.default_rng(settings.seed)
    values, present = data.features()
    scaler = TabularScaler.fit(values[train_rows], present[train_rows])
    tabular = scaler.transform(values, present, data.ages, data.sexes)
    fit, model_kwargs = _setup(data, settings, train_rows, scaler.num_inputs)
    val_labels = data.targets[val_rows]
    name = "-".join(data.leads)
    best: dict[str, Any] = {"metric": -np.inf}
    history: list[dict[str, float]] = []
    bar = progress_bar(
        range(settings.epochs), desc=f"train {name}", unit="epoch", enabled=settings.progress, leave=False
    )
    for epoch in bar:
        loss = _train_epoch(fit, data, train_rows, tabular, rng, settings)
        probabilities = predict_records(fit.network, record_inputs(data, val_rows, tabular), fit.device)
        thresholds = tune(
            val_labels, probabilities, settings.threshold_strategy, settings.threshold_min_positives, task.scorer
        )
        scores = task.evaluate(val_labels, probabilities, thresholds)
        history.append({"epoch": epoch + 1, "loss": loss, **scores})
        log.info(
            "%s epoch %d: loss %.4f, validation %s",
            name,
            epoch + 1,
            loss,
            ", ".join(f"{key} {value:.3f}" for key, value in scores.items()),
        )
        bar.set_postfix(loss=f"{loss:.3f}", metric=f"{scores[task.metric]:.3f}")
        if scores[task.metric] > best["metric"]:
            best = {
                "metric": scores[task.metric],
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
