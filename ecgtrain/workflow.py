"""``training_code`` behind team_code.py: one network per lead set, written into the model folder.

The folds (``folds`` = 1: one training/validation split) are made once, on the task's targets, so
every lead set's networks are validated on the same records (their reduced-lead versions); each
lead set's k networks are stored as one ensemble weights file (:mod:`ecgtrain.folds`). The run holds
the model folder's lock, trains into a staging folder and commits only a complete, verified
model: whatever stops it (bad data, a full disk, kill -9), the folder keeps the model it had
(see :mod:`ecgserve.model_folder`). Data a model cannot be learned from is refused before any
feature is computed.
"""

from __future__ import annotations

import contextlib
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
from ecgscore.classes import class_names
from ecgserve import model_folder
from ecgserve.device import apply_threads
from ecgsignal.config import SignalConfig
from ecgtrain import distributed
from ecgtrain.data import LeadSetData, lead_set_data, read_dataset_index
from ecgtrain.errors import SettingsError, TrainingDataError
from ecgtrain.folds import FoldedRecords, TrainedEnsemble, fold_names
from ecgtrain.settings import Settings, default_cache_dir
from ecgtrain.stacking import train_lead_set
from ecgtrain.tasks import Task, get_task

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


def manifest_entry(
    trained: TrainedEnsemble, files: dict[str, str], member_files: dict[str, str] | None = None
) -> dict[str, Any]:
    """The manifest's record of one trained lead set (its ``members`` networks in one weights file; the
    histories and best epochs are of every network trained, a stack's parts' included; ``member_files``:
    the features member's file, when it has one)."""
    entry: dict[str, Any] = {
        "leads": list(trained.leads),
        **files,
        "architecture": trained.architecture,
        "model_kwargs": trained.model_kwargs,
        "members": len(trained.members),
        "tabular": trained.scaler.to_dict(),
        "thresholds": [float(t) for t in trained.thresholds],
        "validation": {k: float(v) for k, v in trained.validation.items()},
        "validation_records": len(trained.oof_rows),
        "history": [network.history for network in trained.networks],
        "best_epoch": trained.best_epoch,
        "member_best_epochs": [network.best_epoch for network in trained.networks],
        "train_records": int(np.median([member.train_records for member in trained.members])),
        "val_records": int(np.median([member.val_records for member in trained.members])),
        "seconds": round(trained.seconds, 1),
    }
    if trained.stack_weights is not None:
        entry["stack_weights"] = [[round(float(w), 4) for w in row] for row in trained.stack_weights]
    if trained.features_member is not None and trained.member_weights is not None and member_files:
        entry["features_member"] = {
            "kind": "gbm",
            **member_files,
            "weights": [[float(w) for w in row] for row in trained.member_weights],
        }
        if trained.criteria_weights is not None:
            entry["features_member"]["criteria_weights"] = [float(w) for w in trained.criteria_weights]
        if trained.network_calibration is not None:
            entry["features_member"]["network_calibration"] = [
                [float(v) for v in row] for row in trained.network_calibration
            ]
    return entry


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
    nothing; returns the manifest.

    Under torchrun every rank runs this: rank 0 alone takes the folder's lock, reads the data folder (the
    other ranks get its index, so all make the same folds), writes the staging folder and commits; the others
    train beside it and return the manifest rank 0 committed. A failure of rank 0 before or at the commit is
    handed to every rank (see :func:`ecgtrain.distributed.on_main`)."""
    settings = settings or Settings.from_env()
    started = time.perf_counter()
    try:
        task = get_task(settings.task)
    except KeyError as error:
        raise SettingsError(f"setting 'task': {error.args[0]}") from None
    config = signal_config(settings)
    apply_threads(settings.threads)
    with distributed.session(settings.device):
        settings = distributed.rank_settings(settings)
        manifest, records = _lock_train_commit(data_directory, model_directory, settings, config, task)
        log.info(
            "trained %d lead sets on %d records in %.0f s",
            len(settings.lead_sets),
            records,
            time.perf_counter() - started,
        )
    return manifest


def _lock_train_commit(
    data_directory: str | Path, model_directory: str | Path, settings: Settings, config: SignalConfig, task: Task
) -> tuple[dict[str, Any], int]:
    """The run under the folder's lock (rank 0's; other ranks hold none and write nothing); returns the
    committed manifest and the number of records."""
    main = distributed.is_main()
    with contextlib.ExitStack() as stack:

        def start() -> tuple[Path, DatasetIndex, np.ndarray]:
            folder = stack.enter_context(model_folder.locked(model_directory))
            table = read_dataset_index(data_directory, settings.progress)
            targets = task.targets(table)
            task.check_targets(targets)
            return folder, table, targets

        folder, table, targets = distributed.on_main(start, "the data folder's index")
        staging = model_folder.staging_folder(folder) if main else None
        try:
            manifest = _train_into(staging, table, targets, settings, config, task)
            manifest = distributed.on_main(lambda: _commit(staging, folder), "the committed model")
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
    return manifest, len(table)


def _commit(staging: Path | None, folder: Path) -> dict[str, Any]:
    assert staging is not None  # rank 0's
    checkpoint("before_commit")
    return model_folder.commit(staging, folder)


#: Records named in the message that refuses a lead set's data (the rest are counted).
NAMED_RECORDS = 5


def check_trainable(data: LeadSetData, table: DatasetIndex, task: Task, folds: int) -> None:
    """Refuse a lead set whose usable records (those left after preparation) hold fewer than two classes with
    positives, or are too few for the folds: the label check made on the headers cannot see records that fail
    later (a 1 Hz rate, none of the set's leads), and training on what is left would report a perfect score.
    The message names the first records left out and counts them."""
    needed = max(2, 2 * folds)
    problem = None
    if len(data) < needed:
        problem = f"too few for {folds} fold(s) (at least {needed} are needed)"
    else:
        try:
            task.check_targets(data.targets)
        except TrainingDataError as error:
            problem = str(error)
    if problem is None:
        return
    kept = set(data.names)
    dropped = [name for name in table.records if name not in kept]
    named = ", ".join(dropped[:NAMED_RECORDS]) + (
        f" (and {len(dropped) - NAMED_RECORDS} more)" if len(dropped) > NAMED_RECORDS else ""
    )
    raise TrainingDataError(
        f"leads {'-'.join(data.leads)}: {len(data)} of {len(table)} records are usable after preparation: {problem}; "
        f"{len(dropped)} not usable: {named or 'none'} (their errors are logged above)"
    )


def _train_into(
    staging: Path | None,
    table: DatasetIndex,
    targets: np.ndarray,
    settings: Settings,
    config: SignalConfig,
    task: Task,
) -> dict[str, Any]:
    """Train every lead set into ``staging`` and write its complete manifest there (``None``: a rank other
    than 0, which trains the same networks and writes nothing)."""
    try:
        folds = fold_names(table, targets, settings, task)
    except ValueError as error:
        raise SettingsError(f"setting 'folds': {error}") from None
    sizes = ", ".join(str(len(fold)) for fold in folds)
    log.info("%d records in %d fold(s) of %s validation records", len(table), settings.folds, sizes)
    manifest = base_manifest(settings, config, task)
    cache_dir = usable_cache_dir(settings.cache_dir or default_cache_dir())
    with logging_redirect_tqdm():  # log lines above the progress bars, not through them
        for leads in settings.lead_sets:
            checkpoint("before_prepare")
            data = lead_set_data(table, leads, config, cache_dir, settings.n_jobs, settings.progress, targets)
            check_trainable(data, table, task, settings.folds)
            trained = train_lead_set(FoldedRecords(data, folds, task), settings)
            files = model_folder.save_weights(staging, tuple(leads), trained.state_dict) if staging else {}
            member_files = None
            if staging and trained.features_member is not None:
                member_files = model_folder.save_member(staging, tuple(leads), trained.features_member.to_bytes())
            manifest["models"]["-".join(leads)] = manifest_entry(trained, files, member_files)
            checkpoint("after_lead_set")
            v = trained.validation
            log.info(
                "%d-lead network(s): best epoch %d, %s %s (%.0f s)",
                len(leads),
                trained.best_epoch,
                "out-of-fold" if len(folds) > 1 else "validation",
                ", ".join(f"{key} {value:.3f}" for key, value in v.items()),
                trained.seconds,
            )
    manifest["complete"] = True
    if staging is not None:
        model_folder.write_manifest(staging, manifest)
    return manifest
