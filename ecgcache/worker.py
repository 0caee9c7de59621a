"""What a worker process does with one record: read it, keep the model's leads, run the pipeline.

This module's source is part of the cache key (:data:`ecgcache.keys.KEYED_MODULES`): it decides
which leads and which dtypes are stored, so keep it to that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ecgio import RecordError, read_record

#: Called with each header in the worker just before it is prepared; None in normal use. Set it
#: in the parent before :func:`ecgcache.prepare_folder`: it travels with every task (tests inject
#: worker crashes through it).
record_hook: Callable[[Path], None] | None = None


def select_leads(signal: np.ndarray, have: Sequence[str], want: Sequence[str]) -> np.ndarray:
    """Rows of ``signal`` (leads ``have``) in the order ``want``; absent leads are zero rows."""
    position = {name: i for i, name in enumerate(have)}
    out = np.zeros((len(want), signal.shape[1]), dtype=np.float32)
    for row, name in enumerate(want):
        if name in position:
            out[row] = signal[position[name]]
    return out


def _describe(error: BaseException, header: Path) -> str:
    """An error message that names the file (RecordError already does)."""
    if isinstance(error, RecordError):
        return str(error)
    return f"{header}: {type(error).__name__}: {error}"


def prepare_one(
    header: Path, leads: tuple[str, ...], config: Any, dtype: str, hook: Callable[[Path], None] | None = None
) -> dict:
    """Read and prepare one record; never raises, reports the error instead (one bad record never stops a batch)."""
    from ecgsignal.pipeline import prepare

    try:
        if hook is not None:
            hook(header)
        record = read_record(header)
        signal = select_leads(record.signal, record.leads, leads)
        prepared = prepare(signal, record.fs, leads, config)
        arrays = {
            "windows": np.asarray(prepared.windows, dtype=dtype),
            "fiducials": np.asarray(prepared.fiducials, dtype=dtype),
            "features": np.asarray(prepared.features, dtype=np.float32),
            "feature_present": np.asarray(prepared.feature_present, dtype=bool),
            "quality": np.asarray(prepared.quality, dtype=bool),
        }
        return {"ok": True, "arrays": arrays}
    except Exception as error:
        return {"ok": False, "error": _describe(error, header)}


__all__ = ["prepare_one", "record_hook", "select_leads"]
