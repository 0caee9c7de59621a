"""``training_code`` behind team_code.py: one network per lead set, written into the model folder.

The split into training and validation records is made once, on the task's targets, so every
lead set's network is validated on the same records (their reduced-lead versions). The run holds
the model folder's lock, trains into a staging folder and commits only a complete, verified
model: whatever stops it (bad data, a full disk, kill -9), the folder keeps the model it had
(see :mod:`training.model_folder`). Data a model cannot be learned from is refused before any
feature is computed.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import platform
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.contrib.logging import logging_redirect_tqdm

from ecgcache import usable_cache_dir
from ecgdata.index import DatasetIndex
from ecgsignal.config import SignalConfig
from scoring.classes import class_names
from training import model_folder
from training.data import LeadSetData, lead_set_data, read_dataset_index
from training.device import apply_threads
from training.errors import SettingsError
from training.settings import Settings, default_cache_dir
from training.tasks import Task, get_task
from training.trainer import TrainedNetwork, train_network

log = logging.getLogger(__name__)
#: Fault-injection tests set this to a point name (see :func:`checkpoint`) to be killed there with SIGKILL.
KILL_AT_ENV = "ECG_TEST_KILL_AT"


def package_version() -> str:
    """The installed package's version (pyproject.toml's), or ``unknown`` when run from an uninstalled copy."""
    try:
        return importlib.metadata.version("ecg-leads")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def checkpoint(name: str) -> None:
    """A named point of the run where a fault-injection test may kill this process for real (kill -9)."""
    if os.environ.get(KILL_AT_ENV) == name:
        log.warning("%s=%s: killing this process (fault-injection test)", KILL_AT_ENV, name)
        os.kill(os.getpid(), signal.SIGKILL)


def manifest_entry(trained: TrainedNetwork, files: dict[str, str]) -> dict[str, Any]:
    """The manifest's record of one trained lead set."""
    return {
        "leads": list(trained.leads),
        **files,
        "architecture": trained.architecture,
        "model_kwargs": trained.model_kwargs,
        "tabular": trained.scaler.to_dict(),
        "thresholds": [float(t) for t in trained.thresholds],
        "validation": {k: float(v) for k, v in trained.validation.items()},
        "history": trained.history,
        "best_epoch": trained.best_epoch,
        "train_records": trained.train_records,
        "val_records": trained.val_records,
        "seconds": round(trained.seconds, 1),
    }


def base_manifest(settings: Settings, config: SignalConfig, task: Task) -> dict[str, Any]:
    """Manifest fields shared by all lead sets."""
    return {
        "task": task.name,
        "classes": list(task.classes),
        "class_names": list(class_names()) if task.name == "challenge2021" else list(task.labels),
        "package_version": package_version(),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "seed": settings.seed,
        "settings": settings.to_dict(),
        "signal_config": config.to_dict(),
        "models": {},
    }


def rows_of(data: LeadSetData, names: set[str]) -> np.ndarray:
    return np.array([i for i, name in enumerate(data.names) if name in names], dtype=np.int64)


def split_names(table: DatasetIndex, targets: np.ndarray, settings: Settings, task: Task) -> tuple[set[str], set[str]]:
    """One split of the records (the task's: stratified by class and source), shared by every lead set."""
    train, val = task.split(targets, table.sources, settings.val_fraction, settings.seed)
    return {table.records[i] for i in train}, {table.records[i] for i in val}


def signal_config(settings: Settings) -> SignalConfig:
    """The signal layer's parameters from the ``signal`` setting; a bad key is a settings error."""
    try:
        return SignalConfig.from_dict(settings.signal)
    except (TypeError, ValueError) as error:
        raise SettingsError(f"setting 'signal': {error}") from None


def train_all(
    data_directory: str | Path, model_directory: str | Path, settings: Settings | None = None
) -> dict[str, Any]:
    """Train every lead set of ``settings.lead_sets`` and replace the model folder's model with them, all or
    nothing; returns the manifest."""
    settings = settings or Settings.from_env()
    started = time.perf_counter()
    try:
        task = get_task(settings.task)
    except KeyError as error:
        raise SettingsError(f"setting 'task': {error.args[0]}") from None
    config = signal_config(settings)
    apply_threads(settings.threads)
    created = not Path(model_directory).exists()
    try:
        with model_folder.locked(model_directory) as folder:
            table = read_dataset_index(data_directory, settings.progress)
            targets = task.targets(table)
            task.check_targets(targets)
            staging = model_folder.staging_folder(folder)
            try:
                manifest = _train_into(staging, table, targets, settings, config, task)
                checkpoint("before_commit")
                manifest = model_folder.commit(staging, folder)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        if created:  # leave no empty model folder behind a run that wrote none
            _remove_if_only_lock(Path(model_directory))
        raise
    log.info(
        "trained %d lead sets on %d records in %.0f s",
        len(settings.lead_sets),
        len(table),
        time.perf_counter() - started,
    )
    return manifest


def _remove_if_only_lock(folder: Path) -> None:
    try:
        if [path.name for path in folder.iterdir()] in ([], [model_folder.LOCK]):
            shutil.rmtree(folder, ignore_errors=True)
    except OSError:
        pass


def _train_into(
    staging: Path, table: DatasetIndex, targets: np.ndarray, settings: Settings, config: SignalConfig, task: Task
) -> dict[str, Any]:
    """Train every lead set into ``staging`` and write its complete manifest there."""
    train_names, val_names = split_names(table, targets, settings, task)
    log.info("%d records: %d for training, %d for validation", len(table), len(train_names), len(val_names))
    manifest = base_manifest(settings, config, task)
    cache_dir = usable_cache_dir(settings.cache_dir or default_cache_dir())
    with logging_redirect_tqdm():  # log lines above the progress bars, not through them
        for leads in settings.lead_sets:
            checkpoint("before_prepare")
            data = lead_set_data(table, leads, config, cache_dir, settings.n_jobs, settings.progress, targets)
            trained = train_network(data, settings, rows_of(data, train_names), rows_of(data, val_names), task)
            files = model_folder.save_weights(staging, tuple(leads), trained.state_dict)
            manifest["models"]["-".join(leads)] = manifest_entry(trained, files)
            checkpoint("after_lead_set")
            v = trained.validation
            log.info(
                "%d-lead network: best epoch %d, validation %s (%.0f s)",
                len(leads),
                trained.best_epoch,
                ", ".join(f"{key} {value:.3f}" for key, value in v.items()),
                trained.seconds,
            )
    manifest["complete"] = True
    model_folder.write_manifest(staging, manifest)
    return manifest
