"""The vectorised NaN medians and quantiles give numpy's numbers bit for bit (synthetic edge cases)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ecgsignal.order_stats import nan_median, nan_quantile


def _tables(seed: int = 0, count: int = 400):
    """Random (B, L) tables: integer-valued and real, with 0..all entries NaN, including empty rows."""
    rng = np.random.default_rng(seed)
    for _ in range(count):
        rows, cols = int(rng.integers(1, 25)), int(rng.integers(1, 13))
        values = rng.normal(size=(rows, cols)) * 100
        if rng.random() < 0.5:
            values = np.round(values)  # ties, as sample positions have
        values[rng.random((rows, cols)) < rng.random()] = np.nan
        yield values


@pytest.mark.parametrize("q", [0.0, 0.2, 0.37, 0.5, 0.8, 1.0])
def test_quantile_equals_numpy(q: float):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy warns on all-NaN rows
        for values in _tables():
            np.testing.assert_array_equal(nan_quantile(values, q), np.nanquantile(values, q, axis=1))


def test_median_equals_numpy_on_both_axes():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for values in _tables(seed=1):
            np.testing.assert_array_equal(nan_median(values), np.nanmedian(values, axis=1))
            np.testing.assert_array_equal(nan_median(values.T), np.nanmedian(values, axis=0))


def test_present_mask_overrides_nan_and_empty_rows_give_nan():
    values = np.array([[5.0, -1.0, 3.0, -1.0], [-1.0, -1.0, -1.0, -1.0], [4.0, 2.0, -1.0, 8.0]])
    present = values >= 0
    np.testing.assert_array_equal(nan_median(values, present), [4.0, np.nan, 4.0])
    np.testing.assert_allclose(nan_quantile(values, 0.2, present), [3.4, np.nan, 2.8])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning leaks from the all-absent row
        nan_quantile(values, 0.8, present)
    assert nan_median(np.zeros((3, 0))).shape == (3,)
    assert np.isnan(nan_quantile(np.zeros((2, 0)), 0.5)).all()
