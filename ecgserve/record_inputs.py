"""From a record to the network's input, without torch: the part of inference that worker processes run.

Reading a record, conditioning, delineating and measuring it cost about as much CPU as the network
on a 10-s record, and far more on a long one (a 30-min record is delineated whole; the network sees
at most 8 windows of it), while the network runs several times cheaper per record on windows of
many records at once. So test_model prepares records with these functions, in worker processes when
asked (:mod:`ecgserve.prepare_workers`), and runs the network on batches in its own process
(``Predictor.probabilities_batch``). Nothing here imports torch, so a worker starts fast and stays
small. ``team_code.run_model`` makes its checks through :func:`checked_recording` too, so a record
fails with the same message whichever path classifies it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ecgio.errors import RecordError
from ecgio.header import Header, parsed_header
from ecgio.limits import check_signal_length, check_usable, max_samples
from ecgio.record import load_raw, to_millivolts
from ecgserve.tabular import TabularScaler
from ecgsignal.config import SignalConfig
from ecgsignal.pipeline import Prepared, UnusableSignalError, prepare

#: One record's network input: windows (W, L, T), fiducials (W, C, T), tabular row (D,); the same
#: layout as ``ecgserve.inference.RecordInput``, named here so workers need not import torch.
NetworkInput = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class RecordPreparer:
    """The part of a Predictor that turns millivolts into network input: leads, signal settings, feature
    scaling. Small and picklable (no network), so it travels to worker processes with each record."""

    leads: tuple[str, ...]
    config: SignalConfig
    scaler: TabularScaler
    with_trees: bool = False  # append the features member's input (ecgserve.forest.gbm_inputs) to the tabular row

    def prepare(self, signal: np.ndarray, fs: float, age: float = math.nan, sex: str | None = None) -> NetworkInput:
        """Network input of a (len(self.leads), N) signal in mV, rows in ``self.leads`` order; ``with_trees``:
        the tabular row is followed by the trees' input (the predictor splits it at ``scaler.num_inputs``)."""
        signal = np.asarray(signal, dtype=np.float32)
        if signal.ndim != 2 or signal.shape[0] != len(self.leads):
            raise ValueError(f"signal has shape {signal.shape}; expected ({len(self.leads)}, samples) for {self.leads}")
        return self.inputs(prepare(signal, fs, self.leads, self.config), age, sex)

    def inputs(self, prepared: Prepared, age: float = math.nan, sex: str | None = None) -> NetworkInput:
        """Network input of an already prepared record (what :meth:`prepare` returns after ``prepare``)."""
        tabular = self.scaler.transform(prepared.features[None], prepared.feature_present[None], np.array([age]), [sex])
        if self.with_trees:
            from ecgserve.forest import gbm_inputs

            trees = gbm_inputs(prepared.features[None], prepared.feature_present[None], np.array([age]), [sex])
            tabular = np.concatenate([tabular.astype(np.float64), trees], axis=1)
        return prepared.windows, prepared.fiducials, tabular[0]


def checked_recording(header_text: str, recording: np.ndarray) -> tuple[np.ndarray, Header]:
    """The recording as an array and its parsed header, after the checks that make a record unclassifiable
    (rate, length, size, shape): each raises an error naming the record. ``run_model`` makes them too.
    A :class:`ecgio.header.HeaderText` (what test_model passes) is not parsed again."""
    parsed = parsed_header(header_text)
    name = parsed.record_name
    check_usable(parsed, name)
    recording = np.asarray(recording)
    if recording.ndim != 2 or recording.shape[0] != len(parsed.leads):
        raise ValueError(f"{name}: recording has shape {recording.shape}, header lists {len(parsed.leads)} leads")
    if recording.size > max_samples():
        raise RecordError(name, f"recording has {recording.size} samples, more than the {max_samples()} allowed")
    check_signal_length(recording.shape[1], parsed.fs, name)
    return recording, parsed


def prepare_input(preparer: RecordPreparer, header_text: str, recording: np.ndarray) -> NetworkInput:
    """What ``run_model`` computes before the network, from the same arguments, with the same errors."""
    recording, parsed = checked_recording(header_text, recording)
    signal = to_millivolts(recording, parsed, preparer.leads)
    try:
        return preparer.prepare(signal, parsed.fs, parsed.age, parsed.sex)
    except UnusableSignalError as error:
        raise RecordError(parsed.record_name, str(error)) from None


def describe(error: BaseException) -> str:
    """A failure as test_model reports it: a RecordError already names its file, others get their type."""
    return str(error) if isinstance(error, RecordError) else f"{type(error).__name__}: {error}"


def prepare_file(header_file: str, header_text: str, preparer: RecordPreparer) -> tuple[NetworkInput | None, str]:
    """Read and prepare one record as test_model's record-by-record path does: ``(input, "")``, or
    ``(None, reason)`` for a record that cannot be read or classified. Never raises, so a worker's
    failure comes back as that record's reason instead of an exception to unpickle. A
    :class:`ecgio.header.HeaderText` (what test_model passes) is not parsed again."""
    try:
        recording, _ = load_raw(header_file, parsed_header(header_text, source=header_file))
        return prepare_input(preparer, header_text, recording), ""
    except Exception as error:  # one bad record never stops a batch: its reason goes back with it
        return None, describe(error)


__all__ = ["NetworkInput", "RecordPreparer", "checked_recording", "describe", "prepare_file", "prepare_input"]
