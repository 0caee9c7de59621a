"""``training_code`` behind team_code.py: one network per lead set, written into the model folder.

The split into training and validation records is made once, on the label table, so every lead
set's network is validated on the same records (their reduced-lead versions), and the folder's
manifest is rewritten after each finished lead set: an interrupted run leaves a folder that loads
the lead sets it finished (see :mod:`training.model_folder`).
"""

from __future__ import annotations

import logging
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.contrib.logging import logging_redirect_tqdm

from ecgcache import usable_cache_dir
from ecgdata.index import DatasetIndex
from ecgsignal.config import SignalConfig
from scoring.classes import class_names, representative_codes
from training import model_folder
from training.data import LeadSetData, lead_set_data, read_labels
from training.settings import Settings, default_cache_dir
from training.trainer import TrainedNetwork, split_records, train_network

log = logging.getLogger(__name__)
PACKAGE_VERSION = "0.1.0"


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


def base_manifest(settings: Settings, config: SignalConfig) -> dict[str, Any]:
    """Manifest fields shared by all lead sets."""
    return {
        "classes": list(representative_codes()),
        "class_names": list(class_names()),
        "package_version": PACKAGE_VERSION,
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


def split_names(table: DatasetIndex, settings: Settings) -> tuple[set[str], set[str]]:
    """One stratified split of the records (by class and source), shared by every lead set."""
    train, val = split_records(table.targets, settings, table.sources)
    return {table.records[i] for i in train}, {table.records[i] for i in val}


def train_all(
    data_directory: str | Path, model_directory: str | Path, settings: Settings | None = None
) -> dict[str, Any]:
    """Train every lead set of ``settings.lead_sets`` and write the model folder; returns the manifest."""
    settings = settings or Settings.from_env()
    started = time.perf_counter()
    if settings.threads > 0:
        torch.set_num_threads(settings.threads)
    config = SignalConfig.from_dict(settings.signal)
    folder = model_folder.begin(model_directory)
    table = read_labels(data_directory, settings.progress)
    train_names, val_names = split_names(table, settings)
    log.info("%d records: %d for training, %d for validation", len(table), len(train_names), len(val_names))
    manifest = base_manifest(settings, config)
    cache_dir = usable_cache_dir(settings.cache_dir or default_cache_dir())
    with logging_redirect_tqdm():  # log lines above the progress bars, not through them
        for leads in settings.lead_sets:
            data = lead_set_data(table, leads, config, cache_dir, settings.n_jobs, settings.progress)
            trained = train_network(data, settings, rows_of(data, train_names), rows_of(data, val_names))
            files = model_folder.save_weights(folder, tuple(leads), trained.state_dict)
            manifest["models"]["-".join(leads)] = manifest_entry(trained, files)
            model_folder.write_manifest(folder, manifest)
            v = trained.validation
            log.info(
                "%d-lead network: best epoch %d, validation challenge %.3f, AUROC %.3f, F %.3f (%.0f s)",
                len(leads),
                trained.best_epoch,
                v["challenge_metric"],
                v["auroc"],
                v["f_measure"],
                trained.seconds,
            )
    log.info(
        "trained %d lead sets on %d records in %.0f s",
        len(settings.lead_sets),
        len(table),
        time.perf_counter() - started,
    )
    return manifest
