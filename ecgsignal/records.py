"""Delineation of a whole record, and its points back at the record's own rate.

The delineator works on the conditioned signal at the processing rate; people and files speak of
samples at the record's rate. These two functions are the bridge that the delineation CLI, the
record report and the delineation benchmarks share.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ecgio import Record
from ecgsignal.config import SignalConfig
from ecgsignal.delineate import Delineation, delineate
from ecgsignal.pacing import spikes_at
from ecgsignal.preprocess import condition, repair_nonfinite


def delineate_record(record: Record, config: Any = None) -> Delineation:
    """Condition ``record`` at ``config.fs`` and delineate it (one lead per record lead).

    Exactly what :func:`ecgsignal.pipeline.prepare` delineates (pacemaker stimuli found on the raw
    signal included): the conditioned signal in mV
    (:func:`ecgsignal.preprocess.condition`: repair, resampling, band-pass, notch, unusable leads
    zeroed), before the per-lead normalisation that only the network input gets.
    """
    config = config or SignalConfig()
    x_mv, quality = condition(record.signal, record.fs, config)
    return delineate(x_mv, config.fs, spikes_at(repair_nonfinite(record.signal), record.fs, config.fs, quality))


def to_record_rate(points: np.ndarray, fs_from: float, fs_to: float, num_samples: int) -> np.ndarray:
    """Sample indices at ``fs_from`` -> indices at ``fs_to`` (rounded, clipped); ``-1`` (absent) stays."""
    points = np.asarray(points, dtype=np.int64)
    converted = np.clip(np.round(points * (fs_to / fs_from)), 0, max(num_samples - 1, 0)).astype(np.int64)
    return np.where(points < 0, -1, converted)


__all__ = ["delineate_record", "to_record_rate"]
