"""Training data for one lead set: labels from the headers, network inputs from the signal layer's cache.

Labels, age and sex come from one pass over the headers; the signals go through
``ecgsignal.extract.prepare_folder`` (parallel, cached on disk, memory-mapped), once per lead set,
because the delineation and the global features of a 2-lead record differ from those of the same
record's 12 leads, and at test time only those leads exist.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ecgio import RecordError, find_records, read_header
from ecgsignal.config import SignalConfig
from ecgsignal.extract import prepare_folder
from scoring.classes import labels_to_targets

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelTable:
    """What the headers say: one row per readable record."""

    headers: list[Path]
    names: list[str]
    targets: np.ndarray  # (N, 26) bool
    ages: np.ndarray  # (N,) float, NaN unknown
    sexes: list[str | None]


@dataclass
class LeadSetData:
    """Aligned labels and prepared inputs of the records usable for one lead set."""

    leads: tuple[str, ...]
    names: list[str]
    targets: np.ndarray
    ages: np.ndarray
    sexes: list[str | None]
    store: Any  # ecgsignal.extract.PreparedStore; record(i) -> Prepared
    store_rows: np.ndarray  # row in the store of each record

    def __len__(self) -> int:
        return len(self.names)

    def prepared(self, i: int):
        return self.store.record(int(self.store_rows[i]))

    def window(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Window ``j`` of record ``i``: signal (L, T) and fiducial channels (C, T), float32."""
        return self.store.window(int(self.store_rows[i]), j)

    def num_windows(self, i: int) -> int:
        return self.store.num_windows(int(self.store_rows[i]))

    def features(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, F) global feature values and their presence mask (held in RAM by the store)."""
        return self.store.features[self.store_rows], self.store.feature_present[self.store_rows]


def read_labels(data_directory: str | Path) -> LabelTable:
    """One pass over every header under the folder; unreadable headers are logged and skipped."""
    headers, names, targets, ages, sexes = [], [], [], [], []
    for path in find_records(data_directory):
        try:
            header = read_header(path)
        except RecordError as error:
            log.error("skipping %s", error)
            continue
        headers.append(path)
        names.append(path.stem)
        targets.append(labels_to_targets(header.labels))
        ages.append(header.age)
        sexes.append(header.sex)
    if not headers:
        raise RecordError(data_directory, "no readable records (.hea with .mat or .dat) found")
    return LabelTable(headers, names, np.array(targets, dtype=bool).reshape(-1, 26), np.array(ages, float), sexes)


def lead_set_data(
    table: LabelTable,
    leads: Sequence[str],
    config: SignalConfig,
    cache_dir: str | Path | None,
    n_jobs: int,
    progress: bool = True,
) -> LeadSetData:
    """Prepare every record for ``leads`` (cached) and align it with the label table."""
    leads = tuple(leads)
    store = prepare_folder(table.headers, leads, config, Path(cache_dir) if cache_dir else None, n_jobs, progress)
    row_of = {name: row for row, name in enumerate(store.names)}
    keep = [i for i, name in enumerate(table.names) if name in row_of]
    if len(keep) < len(table.names):
        log.warning("%d of %d records could not be prepared and are left out", len(table.names) - len(keep), len(table.names))
    if not keep:
        raise RuntimeError("no record could be prepared for training")
    return LeadSetData(
        leads=leads,
        names=[table.names[i] for i in keep],
        targets=table.targets[keep],
        ages=table.ages[keep],
        sexes=[table.sexes[i] for i in keep],
        store=store,
        store_rows=np.array([row_of[table.names[i]] for i in keep], dtype=np.int64),
    )
