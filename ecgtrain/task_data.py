"""Training data for a PTB-XL task: the task's records, prepared for one lead set, straight from a PTB-XL folder.

The Challenge route reads labels from headers (:func:`ecgtrain.data.lead_set_data`); a PTB-XL
task's labels, folds, ages and sexes come from ``ptbxl_database.csv`` instead
(:func:`ecgdata.ptbxl_tasks.load_task`), while the signals go through the same
``ecgcache.prepare_folder`` (PTB-XL's own ``.hea``/``.dat`` read as any WFDB record), so a
network trained here sees exactly the inputs the Challenge route gives it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecgcache import prepare_folder
from ecgdata.ptbxl_tasks import PTBXLTask
from ecgsignal.config import SignalConfig
from ecgtrain.data import LeadSetData
from ecgtrain.errors import TrainingDataError

log = logging.getLogger(__name__)


@dataclass
class TaskData:
    """A task's records usable for one lead set: ``data`` row ``i`` is task record ``task_rows[i]``;
    ``train``/``validation``/``test`` are rows of ``data`` (the task's folds, unprepared records left out)."""

    data: LeadSetData
    task_rows: np.ndarray
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    folds: list[str]  # strat_fold of each data row, as text (the groups of ecgtrain.tasks.fold_split)


def _rows_of(task_indices: np.ndarray, data_row: dict[int, int]) -> np.ndarray:
    return np.asarray([data_row[int(i)] for i in task_indices if int(i) in data_row], dtype=np.int64)


def ptbxl_lead_set_data(
    task: PTBXLTask,
    leads: Sequence[str],
    config: SignalConfig,
    cache_dir: str | Path | None,
    n_jobs: int = 1,
    progress: bool = True,
) -> TaskData:
    """Prepare every record of ``task`` for ``leads`` (cached) and align it with the task's targets and folds."""
    leads = tuple(leads)
    store = prepare_folder(list(task.paths), leads, config, Path(cache_dir) if cache_dir else None, n_jobs, progress)
    store_row = {name: row for row, name in enumerate(store.names)}
    keep = [i for i, path in enumerate(task.paths) if path.name in store_row]
    if len(keep) < len(task):
        failed = sorted(set(p.name for p in task.paths) - set(store_row))
        log.warning("%d of %d records could not be prepared and are left out: %s", len(failed), len(task), failed[:10])
    if not keep:
        raise TrainingDataError(f"none of the {len(task)} records of PTB-XL {task.name} could be prepared")
    ages = task.ages if task.ages is not None else np.full(len(task), np.nan)
    sexes = task.sexes if task.sexes else (None,) * len(task)
    data = LeadSetData(
        leads=leads,
        names=[task.names[i] for i in keep],
        targets=task.targets[keep],
        ages=np.asarray(ages, dtype=np.float64)[keep],
        sexes=[sexes[i] for i in keep],
        store=store,
        store_rows=np.asarray([store_row[task.paths[i].name] for i in keep], dtype=np.int64),
    )
    data_row = {task_index: row for row, task_index in enumerate(keep)}
    return TaskData(
        data=data,
        task_rows=np.asarray(keep, dtype=np.int64),
        train=_rows_of(task.train, data_row),
        validation=_rows_of(task.validation, data_row),
        test=_rows_of(task.test, data_row),
        folds=[str(int(task.strat_fold[i])) for i in keep],
    )


__all__ = ["TaskData", "ptbxl_lead_set_data"]
