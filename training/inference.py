"""Running a network over prepared records: windows batched across records, then averaged per record.

A 10-s record is one window and a 30-min Holter-like record is many; batching windows from several
records together keeps the network busy either way, and the per-record probability is the mean of
its windows' probabilities (a rhythm or morphology label describes the record as a whole).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import numpy as np
import torch
import torch.nn as nn

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


@torch.no_grad()
def predict_records(
    network: nn.Module, items: Iterable[RecordInput], device: torch.device, batch_size: int = 64
) -> np.ndarray:
    """Probabilities (N, num_classes), one row per record in input order."""
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
            rows[index] = probabilities[start : start + count].mean(axis=0)
            start += count
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack([rows[i] for i in range(len(rows))]).astype(np.float32)
