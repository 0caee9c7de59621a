"""Vectorised helpers on (leads, beats, window) arrays, shared by beat detection and wave delineation.

The delineator looks at every beat of every lead at once: a window of K samples around each of B
beats in each of L leads is one (L, B, K) array, read from the (L, N) signal or wavelet scale with
:func:`take`. Durations are given in ms and turned into samples with :func:`to_samples`, so every
rule is rate-independent.
"""

from __future__ import annotations

import numpy as np


def to_samples(value_ms: float, fs: float) -> int:
    """``value_ms`` milliseconds as a whole number of samples at ``fs`` Hz (at least one)."""
    return max(1, int(round(value_ms * fs / 1000.0)))


def _clipped(positions: np.ndarray, n: int) -> np.ndarray:
    """``positions`` clipped to [0, n - 1], as a new array made once (the two bounds in place)."""
    clipped = np.maximum(positions, 0)
    np.minimum(clipped, n - 1, out=clipped)
    return clipped


def _flat(clipped: np.ndarray, num_rows: int, n: int) -> np.ndarray:
    """Flat indices into a C-ordered (num_rows, n) array of clipped positions (L, ...), in place where it can."""
    offsets = np.arange(0, num_rows * n, n).reshape((-1,) + (1,) * (clipped.ndim - 1))
    if clipped.dtype == offsets.dtype and clipped.shape == np.broadcast_shapes(clipped.shape, offsets.shape):
        clipped += offsets
        return clipped
    return clipped + offsets


def take(values: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """values (L, N)[lead, positions] for positions (L, B, K) or (L, B), clipped to the record.

    Positions the same for every lead may come as (1, B, K): they are clipped once and broadcast."""
    n = values.shape[1]
    clipped = _clipped(positions, n)
    if not values.flags.c_contiguous:
        rows = np.arange(values.shape[0]).reshape((-1,) + (1,) * (positions.ndim - 1))
        return values[rows, clipped]
    # A flat take is 2-3x faster than 2-D fancy indexing, and this runs ~25 times per record.
    return values.ravel().take(_flat(clipped, values.shape[0], n))


def take_both(first: np.ndarray, second: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`take` from two (L, N) arrays at the same positions, the clipped flat index computed once."""
    if not (first.flags.c_contiguous and second.flags.c_contiguous) or first.shape != second.shape:
        return take(first, positions), take(second, positions)
    n = first.shape[1]
    flat = _flat(_clipped(positions, n), first.shape[0], n)
    return first.ravel().take(flat), second.ravel().take(flat)


def pick(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``values[..., index]``, one element per row of the last axis (``index`` has ``values``' leading shape).

    What ``np.take_along_axis(values, index[..., None], -1)[..., 0]`` gives, without building an index
    array per dimension: that costs more than the gather on these small arrays, 30-40 times a record.
    """
    index = np.asarray(index)
    k = values.shape[-1]
    if values.shape[:-1] != index.shape or index.size == 0:
        return np.take_along_axis(values, index[..., None], -1)[..., 0]
    values = np.ascontiguousarray(values)  # a sort of a transposed array keeps its order: one small copy
    if index.min() < 0 or index.max() >= k:  # negative or out of range: numpy's own rules
        return np.take_along_axis(values, index[..., None], -1)[..., 0]
    return values.ravel().take(index.ravel() + np.arange(0, index.size * k, k)).reshape(index.shape)


def neighbourhoods(values: np.ndarray, half: int) -> np.ndarray:
    """(..., C, 2 half + 1): each entry of ``values`` (..., C) with ``half`` neighbours either side along the
    last axis, NaN beyond the ends (what a NaN-padded ``sliding_window_view`` gives, as a plain array: the
    view and the padding cost ~0.1 ms a call in overhead, on a dozen beats)."""
    count = values.shape[-1]
    padded = np.full(values.shape[:-1] + (count + 2 * half,), np.nan, dtype=values.dtype)
    padded[..., half : half + count] = values
    return padded[..., np.arange(count)[:, None] + np.arange(2 * half + 1)]


def local_maxima(a: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Interior local maxima along the last axis (>= left, > right), both neighbours valid."""
    out = np.zeros(a.shape, dtype=bool)
    out[..., 1:-1] = (a[..., 1:-1] >= a[..., :-2]) & (a[..., 1:-1] > a[..., 2:])
    out[..., 1:-1] &= valid[..., :-2] & valid[..., 2:]
    return out & valid


def first_true(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of first True along the last axis, whether any)."""
    return np.argmax(mask, axis=-1), np.asarray(mask.any(axis=-1))


def walk(w_abs: np.ndarray, start: np.ndarray, direction: int, ratio: np.ndarray, limit: int) -> np.ndarray:
    """From MML positions ``start`` (L, B), step by ``direction`` until |W| < ratio*|W[start]| or a local minimum.

    Stops at ``limit`` samples when neither happens. Returns absolute positions (L, B).
    """
    n = w_abs.shape[1]
    steps = np.arange(1, limit + 2)
    reach = take(w_abs, start[..., None] + direction * steps)  # each step and the one after it, one gather
    values, ahead = reach[..., :-1], reach[..., 1:]
    level = take(w_abs, start)[..., None] * ratio[..., None]
    first, found = first_true((values < level) | (values <= ahead))
    # Step j (0-based) reaches start + direction (j + 1); the record's first and last samples stop the
    # walk. The first such j per row, from the start alone (not a test per step of every window):
    # already outside on the way in means at once, else where the edge ahead is met.
    if direction > 0:
        edge = np.where(start + 1 <= 0, 0, np.maximum(n - 2 - start, 0))
    else:
        edge = np.where(start - 1 >= n - 1, 0, np.maximum(start - 1, 0))
    first = np.where(found, np.minimum(first, edge), edge)
    found |= edge < limit
    return start + direction * np.where(found, first + 1, limit)


def median_last(a: np.ndarray) -> np.ndarray:
    """Median along the last axis of a small array (np.median costs ~50 us a call in overhead alone)."""
    middle = a.shape[-1] // 2
    if a.shape[-1] < 2:
        ordered = np.sort(a, axis=-1)
    else:  # long rows (a second of |W_3| per row): selecting the middle pair costs a fraction of a sort
        ordered = np.partition(a, (middle - 1, middle), axis=-1)
    if a.shape[-1] % 2:
        return ordered[..., middle]
    return 0.5 * (ordered[..., middle - 1] + ordered[..., middle])
