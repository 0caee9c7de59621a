"""The delineator's fast paths give exactly what the numpy and scipy calls they replace give.

Each replaced a call whose overhead, not its work, cost time on a record's small arrays
(``take_along_axis``, ``sliding_window_view`` over ``np.pad``, ``np.median``, one ``find_peaks``
per lead, ``np.pad`` reflection); the delineation's fiducials were checked identical before and
after on all shared and LUDB records. These tests keep each piece equal on its own, edge cases included.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import find_peaks

from ecgsignal.beats import _peaks_per_lead
from ecgsignal.sample_windows import median_last, neighbourhoods, pick, walk
from ecgsignal.wavelet import _transform_block


def test_pick_is_take_along_axis() -> None:
    rng = np.random.default_rng(0)
    for shape in [(3, 4, 7), (5, 9), (2, 0, 3), (1, 1, 1)]:
        values = rng.standard_normal(shape)
        index = rng.integers(0, shape[-1], shape[:-1])
        expected = np.take_along_axis(values, index[..., None], -1)[..., 0]
        np.testing.assert_array_equal(pick(values, index), expected)
        np.testing.assert_array_equal(pick(values.T.copy().T, index), expected)  # not C-contiguous
    values = rng.standard_normal((2, 5))
    np.testing.assert_array_equal(pick(values, np.array([-1, -5])), values[[0, 1], [4, 0]])  # numpy's negatives
    with pytest.raises(IndexError):
        pick(values, np.array([0, 5]))


def test_neighbourhoods_are_nan_padded_sliding_windows() -> None:
    rng = np.random.default_rng(1)
    for shape, half in [((7,), 2), ((3, 5), 2), ((2, 1), 3), ((4, 12), 1)]:
        for dtype in (np.float32, np.float64):
            values = rng.standard_normal(shape).astype(dtype)
            values[..., 0] = np.nan
            pad = [(0, 0)] * (len(shape) - 1) + [(half, half)]
            padded = np.pad(values, pad, constant_values=np.nan)
            expected = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1, axis=-1)
            got = neighbourhoods(values, half)
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected)


def test_median_last_is_np_median() -> None:
    rng = np.random.default_rng(2)
    for width in (1, 2, 5, 12):
        values = rng.standard_normal((6, width)).astype(np.float32)
        expected = np.median(values, axis=1)
        got = median_last(values)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def test_walk_is_two_gathers() -> None:
    """walk() reads each step and the one after it in one gather: same stops as reading them apart."""
    rng = np.random.default_rng(3)
    w = np.abs(rng.standard_normal((3, 200))).astype(np.float32)
    start = rng.integers(0, 200, (3, 8))
    ratio = rng.uniform(0.05, 0.5, (3, 8))
    for direction in (-1, +1):
        steps = np.arange(1, 31)
        path = start[..., None] + direction * steps
        rows = np.arange(3)[:, None, None]
        values = w[rows, np.clip(path, 0, 199)]
        ahead = w[rows, np.clip(path + direction, 0, 199)]
        level = w[np.arange(3)[:, None], start][..., None] * ratio[..., None]
        stop = (values < level) | (values <= ahead) | (path <= 0) | (path >= 199)
        expected = start + direction * np.where(stop.any(-1), np.argmax(stop, -1) + 1, 30)
        np.testing.assert_array_equal(walk(w, start, direction, ratio, 30), expected)


def test_peaks_of_all_leads_in_one_call() -> None:
    """Rows laid end to end give each row's own find_peaks: plateaus, peaks at the ends, flat rows."""
    rng = np.random.default_rng(4)
    energy = np.abs(rng.standard_normal((5, 400))).astype(np.float32)
    energy[1, :3] = [5.0, 5.0, 1.0]  # a plateau at the start: not a peak
    energy[1, -3:] = [1.0, 5.0, 5.0]  # nor one at the end
    energy[1, 200:204] = [0.1, 7.0, 7.0, 0.1]  # an interior plateau: its middle
    energy[2, -2:] = [0.0, 9.0]  # the last sample, highest of the row
    energy[3] = 0.0  # a flat row
    energy[4, 0] = 50.0  # the first sample, highest of the row
    height = (0.35 * energy.max(axis=1, keepdims=True) * np.ones_like(energy)).astype(np.float32)
    height[0, 100:150] = 10.0  # a height demand that varies along the row
    for distance in (1, 5, 62):
        peaks, rows = _peaks_per_lead(energy, height, distance)
        for row in range(energy.shape[0]):
            expected, _ = find_peaks(energy[row], height=height[row], distance=distance)
            np.testing.assert_array_equal(peaks[rows == row], expected)
        assert np.all(np.diff(rows) >= 0)


@pytest.mark.parametrize("n", [2, 3, 40, 300])
def test_wavelet_reflection_is_np_pad(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The transform's reflection (two reversed slices) is np.pad's, down to a block one sample longer than the pad."""
    x = np.random.default_rng(n).standard_normal((2, n)).astype(np.float32)
    seen: list[np.ndarray] = []
    import ecgsignal.wavelet as module

    real_rfft = module.spfft.rfft

    def spy(a, *args, **kwargs):
        seen.append(np.array(a))
        return real_rfft(a, *args, **kwargs)

    monkeypatch.setattr(module.spfft, "rfft", spy)
    for pad in sorted({0, 1, n // 2, n - 1, n + 5}):
        seen.clear()
        _transform_block(x, 250.0, (2, 3), pad)
        used = min(pad, n - 1)
        np.testing.assert_array_equal(seen[0], np.pad(x, ((0, 0), (used, used)), mode="reflect"))
