"""NaN-ignoring medians and quantiles along the last axis, by one sort.

The delineator and the global features take medians and quantiles of small groups (a beat's
leads, a beat's neighbours, a lead's beats) thousands of times per record. ``np.nanmedian`` and
``np.nanquantile`` handle such small slices through masked arrays or ``apply_along_axis``, and
cost more than the whole delineation of a record; these give the same numbers (bit for bit: the
same sort, the same interpolation) from one vectorised sort.
"""

from __future__ import annotations

import numpy as np

from ecgsignal.sample_windows import pick


def _sorted_present(values: np.ndarray, present: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(values sorted along the last axis with the absent ones last, count of present per row)."""
    values = np.asarray(values, dtype=np.float64)
    keep = ~np.isnan(values) if present is None else np.asarray(present, dtype=bool)
    ordered = np.sort(np.where(keep, values, np.inf), axis=-1)
    return ordered, keep.sum(axis=-1)


def _take(ordered: np.ndarray, index: np.ndarray) -> np.ndarray:
    if ordered.shape[-1] == 0:
        return np.full(index.shape, np.nan)
    return pick(ordered, index)


def nan_median(values: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """Median over the last axis of the ``present`` entries (default: the non-NaN ones); NaN where none.

    An even count gives the mean of the two middle values, as ``np.nanmedian`` does.
    """
    ordered, count = _sorted_present(values, present)
    lo = _take(ordered, np.maximum(count - 1, 0) // 2)
    hi = np.where(count % 2 == 1, lo, _take(ordered, np.minimum(count // 2, max(ordered.shape[-1] - 1, 0))))
    return np.where(count > 0, (lo + hi) / 2.0, np.nan)


def nan_quantile(values: np.ndarray, q: float, present: np.ndarray | None = None) -> np.ndarray:
    """The q-quantile over the last axis of the ``present`` entries (default: the non-NaN ones); NaN where none.

    Linear interpolation between the two closest ranks, position (n - 1) q: ``np.nanquantile``'s
    default, and its way of interpolating (from the upper value when the fraction is 0.5 or more).
    """
    ordered, count = _sorted_present(values, present)
    position = np.maximum(count - 1, 0) * float(q)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, np.maximum(count - 1, 0))
    fraction = position - below
    low, high = _take(ordered, below), _take(ordered, above)
    with np.errstate(invalid="ignore"):  # rows with nothing present hold inf - inf; they become NaN below
        step = high - low
        out = np.where(fraction >= 0.5, high - step * (1.0 - fraction), low + step * fraction)
    return np.where(count > 0, out, np.nan)


__all__ = ["nan_median", "nan_quantile"]
