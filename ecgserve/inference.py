"""Running a network over prepared records: windows batched across records, then averaged per record.

A 10-s record is one window and a 30-min Holter-like record is many; batching windows from several
records together keeps the network busy either way. The per-record probability is by default the
mean of its windows' probabilities (a rhythm or morphology label describes the record as a whole);
``max`` or ``top<k>`` (mean of the k highest) let a finding seen in a few windows of a long record,
a paroxysm or a few ectopic beats, still count (the ``window_aggregation`` setting).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import numpy as np
import torch
import torch.nn as nn

AGGREGATIONS = ("mean", "max", "top<k>")
#: One record's network input: windows (W, L, T), fiducials (W, C, T), tabular row (D,).
RecordInput = tuple[np.ndarray, np.ndarray, np.ndarray]


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """Mixed precision on CUDA (float16 autocast), plain float32 elsewhere."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def _chunks(items: Iterable[RecordInput], batch_size: int) -> Iterator[tuple[list[RecordInput], list[int]]]:
    """Group records so each chunk holds about ``batch_size`` windows; yields (records, their indices)."""
    chunk: list[RecordInput] = []
    indices: list[int] = []
    windows = 0
    for index, item in enumerate(items):
        chunk.append(item)
        indices.append(index)
        windows += len(item[0])
        if windows >= batch_size:
            yield chunk, indices
            chunk, indices, windows = [], [], 0
    if chunk:
        yield chunk, indices


def check_aggregation(rule: str) -> int:
    """0 for ``mean``, -1 for ``max``, k for ``top<k>``; anything else is a ValueError."""
    if rule == "mean":
        return 0
    if rule == "max":
        return -1
    if rule.startswith("top") and rule[3:].isdigit() and int(rule[3:]) >= 1:
        return int(rule[3:])
    raise ValueError(f"setting 'window_aggregation' is {rule!r}; expected 'mean', 'max' or 'top<k>' (e.g. 'top3')")


def aggregate_windows(probabilities: np.ndarray, rule: str = "mean") -> np.ndarray:
    """(W, C) window probabilities -> (C,) for the record, by ``rule`` (see :func:`check_aggregation`)."""
    k = check_aggregation(rule)
    if k == 0:
        return probabilities.mean(axis=0)
    if k == -1:
        return probabilities.max(axis=0)
    top = np.sort(probabilities, axis=0)[-k:]
    return top.mean(axis=0)


@torch.no_grad()
def predict_records(
    network: nn.Module,
    items: Iterable[RecordInput],
    device: torch.device,
    batch_size: int = 64,
    aggregation: str = "mean",
) -> np.ndarray:
    """Probabilities (N, num_classes), one row per record in input order, windows combined by ``aggregation``."""
    check_aggregation(aggregation)
    network.eval()
    rows: dict[int, np.ndarray] = {}
    for chunk, indices in _chunks(items, batch_size):
        counts = [len(windows) for windows, _, _ in chunk]
        signal = torch.from_numpy(np.concatenate([np.asarray(w, np.float32) for w, _, _ in chunk])).to(device)
        fiducials = torch.from_numpy(np.concatenate([np.asarray(f, np.float32) for _, f, _ in chunk])).to(device)
        tabular = torch.from_numpy(np.repeat(np.stack([t for _, _, t in chunk]), counts, axis=0)).to(device)
        with autocast(device):
            logits = network(signal, fiducials, tabular)
        probabilities = torch.sigmoid(logits.float()).cpu().numpy()
        start = 0
        for index, count in zip(indices, counts):
            rows[index] = aggregate_windows(probabilities[start : start + count], aggregation)
            start += count
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([rows[i] for i in range(len(rows))]).astype(np.float32)
