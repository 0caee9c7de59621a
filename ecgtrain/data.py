"""Training data for one lead set: labels from the headers, network inputs from the signal layer's cache.

Labels, age, sex and source come from the dataset index (one pass over the headers); the signals go through
``ecgcache.prepare_folder`` (parallel, cached on disk, memory-mapped), once per lead set,
because the delineation and the global features of a 2-lead record differ from those of the same
record's 12 leads, and at test time only those leads exist.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ecgcache import prepare_folder
from ecgdata.index import DatasetIndex, build_index
from ecgio import RecordError
from ecgsignal.config import SignalConfig
from ecgtrain import distributed
from ecgtrain.errors import TrainingDataError

log = logging.getLogger(__name__)


@dataclass
class LeadSetData:
    """Aligned labels and prepared inputs of the records usable for one lead set."""

    leads: tuple[str, ...]
    names: list[str]
    targets: np.ndarray
    ages: np.ndarray
    sexes: list[str | None]
    store: Any  # ecgcache.PreparedStore; record(i) -> Prepared
    store_rows: np.ndarray  # row in the store of each record
    sources: list[str] = field(default_factory=list)  # each record's source (ecgdata.index.source_of)
    fs: float = 250.0  # the rate of the windows (the signal layer's)

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


def read_dataset_index(data_directory: str | Path, progress: bool = True) -> DatasetIndex:
    """The dataset index of the folder (unreadable headers logged and skipped); an error when it is empty."""
    table = build_index(data_directory, progress=progress)
    if not len(table):
        raise RecordError(data_directory, "no readable records (.hea with .mat or .dat) found")
    return table


def _prepare_share(
    table: DatasetIndex, leads: tuple[str, ...], config: SignalConfig, cache: Path | None, n_jobs: int, progress: bool
) -> None:
    """Under torchrun: every rank prepares every K-th record (interleaved, so each share mixes the folder's
    sources and lengths alike) into the shared cache, and all wait until every share is there; the full
    :func:`prepare_folder` that follows then only finds and verifies. Nothing in one process. Without a cache
    folder (each rank would get its own temporary one) every rank prepares all records itself. Across
    machines the cache folder must be one shared file system for the shares to help; on separate disks each
    machine's ranks prepare the other machines' shares again (correct, only slower)."""
    if not distributed.active():
        return
    if not distributed.everywhere(cache is not None, "whether each rank can write the feature cache"):
        log.warning("a rank has no writable feature cache: every rank prepares all %d records", len(table.paths))
        return
    assert cache is not None
    share = table.paths[distributed.rank() :: distributed.world_size()]
    prepare_folder(share, leads, config, cache, n_jobs, progress)
    distributed.barrier(f"preparing the records of leads {'-'.join(leads)}")


def lead_set_data(
    table: DatasetIndex,
    leads: Sequence[str],
    config: SignalConfig,
    cache_dir: str | Path | None,
    n_jobs: int,
    progress: bool = True,
    targets: np.ndarray | None = None,
) -> LeadSetData:
    """Prepare every record for ``leads`` (cached) and align it with the label table and ``targets``
    (one row per table record, the task's; default: the table's 26 Challenge targets)."""
    targets = table.targets if targets is None else np.asarray(targets)
    leads = tuple(leads)
    cache = Path(cache_dir) if cache_dir else None
    _prepare_share(table, leads, config, cache, n_jobs, progress)
    store = prepare_folder(table.paths, leads, config, cache, n_jobs, progress)
    row_of = {name: row for row, name in enumerate(store.names)}
    prepared = np.array([name in row_of for name in table.records], dtype=bool)
    # Ranks must train on the same records (a failure that only some ranks met, e.g. a transient read error).
    keep = np.flatnonzero(distributed.on_every_rank(prepared, "which records each rank could prepare")).tolist()
    if len(keep) < len(table.records):
        log.warning(
            "%d of %d records could not be prepared and are left out",
            len(table.records) - len(keep),
            len(table.records),
        )
    if not keep:
        raise TrainingDataError(
            f"none of the {len(table.records)} records could be prepared for leads {'-'.join(leads)}"
        )
    return LeadSetData(
        leads=leads,
        names=[table.records[i] for i in keep],
        targets=targets[keep],
        ages=table.ages[keep],
        sexes=[table.sexes[i] for i in keep],
        store=store,
        store_rows=np.array([row_of[table.records[i]] for i in keep], dtype=np.int64),
        sources=[table.sources[i] for i in keep],
        fs=float(config.fs),
    )
