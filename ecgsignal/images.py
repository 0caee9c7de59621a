"""Each lead as three images (Gramian angular field, Markov transition field, recurrence plot), vectorised.

Seed 002's image route turns every lead of a 10-s window into a GAF-summation, an MTF and a
recurrence plot and stacks them as channels of one picture for a 2-D CNN (lead I: GAF, MTF, RP,
lead II: ..., so 3 channels per lead). Per lead the window is min-max scaled to [0, 1], then:

* GAF: x̃ = 2u − 1, φ = arccos x̃, image cos(φ_i + φ_j), mapped to [0, 1] by (g + 1) / 2;
* MTF: 10 equal bins on [0, 1], first-order transition probabilities between bins counted over the
  whole window (row-normalised), image W[bin(u_i), bin(u_j)];
* RP: min(|u_i − u_j| / ε, steps) / steps with ε = 0.1, steps = 10.

The seed computed 1000 x 1000 images and shrank them bilinearly to 256 x 256; here the series is
first reduced to ``size`` points by piecewise aggregate approximation (segment means), so the
images are computed at ``size`` x ``size`` directly (16x less work at 1000 -> 256; the usual way
GAF/RP are sized). The MTF's transition probabilities still come from every sample. The seed also
divided MTF values by 5; here they stay probabilities in [0, 1] like the other two channels.
Images are uint8 (value x 255), as the seed stored them.

:class:`ImageCache` keeps the images of recently seen windows (keyed by their content), so the
validation windows, identical every epoch, are turned into images once.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np

MTF_BINS = 10
RP_EPSILON, RP_STEPS = 0.1, 10
KINDS = ("gaf", "mtf", "rp")


def unit_scale(x: np.ndarray) -> np.ndarray:
    """Min-max scale the last axis to [0, 1]; a flat series becomes all zeros (the seed divided by zero)."""
    x = np.asarray(x, dtype=np.float64)
    low, high = x.min(axis=-1, keepdims=True), x.max(axis=-1, keepdims=True)
    span = high - low
    return np.where(span > 0, (x - low) / np.where(span > 0, span, 1.0), 0.0)


def paa(x: np.ndarray, size: int) -> np.ndarray:
    """Piecewise aggregate approximation: ``size`` segment means along the last axis (interpolated up if shorter)."""
    length = x.shape[-1]
    if length < size:
        grid = np.linspace(0, length - 1, size)
        flat = x.reshape(-1, length)
        return np.stack([np.interp(grid, np.arange(length), row) for row in flat]).reshape(*x.shape[:-1], size)
    edges = np.linspace(0, length, size + 1).round().astype(int)
    return np.add.reduceat(x, edges[:-1], axis=-1) / np.diff(edges)


def gramian_angular_field(u: np.ndarray) -> np.ndarray:
    """(..., S) in [0, 1] -> (..., S, S) GAF-summation in [0, 1]."""
    v = np.clip(2 * u - 1, -1, 1)
    s = np.sqrt(1 - v**2)
    return (v[..., :, None] * v[..., None, :] - s[..., :, None] * s[..., None, :] + 1) / 2


def markov_transition_field(u_full: np.ndarray, u: np.ndarray, bins: int = MTF_BINS) -> np.ndarray:
    """Transitions counted on ``u_full`` (..., T), field drawn at the points ``u`` (..., S) -> (..., S, S)."""
    lead_shape = u_full.shape[:-1]
    full = np.minimum((u_full * bins).astype(np.int64), bins - 1).reshape(-1, u_full.shape[-1])
    points = np.minimum((u * bins).astype(np.int64), bins - 1).reshape(-1, u.shape[-1])
    series = np.arange(len(full))[:, None]
    codes = (series * bins + full[:, :-1]) * bins + full[:, 1:]
    counts = np.bincount(codes.ravel(), minlength=len(full) * bins * bins).reshape(len(full), bins, bins)
    rows = counts.sum(axis=2, keepdims=True)
    transitions = (counts / np.maximum(rows, 1)).astype(np.float32)
    field = transitions[series[:, :, None], points[:, :, None], points[:, None, :]]
    return field.reshape(*lead_shape, u.shape[-1], u.shape[-1])


def recurrence_plot(u: np.ndarray, epsilon: float = RP_EPSILON, steps: int = RP_STEPS) -> np.ndarray:
    """(..., S) -> (..., S, S) thresholded distance min(|u_i − u_j| / ε, steps) / steps."""
    return np.minimum(np.abs(u[..., :, None] - u[..., None, :]) / epsilon, steps) / steps


def ecg_images(windows: np.ndarray, size: int = 256) -> np.ndarray:
    """(N, L, T) windows -> uint8 (N, 3L, size, size): per lead GAF, MTF, RP, leads in input order."""
    windows = np.asarray(windows)
    if windows.ndim != 3 or windows.shape[-1] < 2 or size < 2:
        raise ValueError(f"ecg_images needs (windows, leads, samples >= 2) and size >= 2, got {windows.shape}, {size}")
    u_full = unit_scale(windows)
    u = paa(u_full, size).astype(np.float32)  # float32 halves the work on the (S, S) images
    out = np.empty((*windows.shape[:2], len(KINDS), size, size), dtype=np.uint8)
    out[:, :, 0] = _to_uint8(gramian_angular_field(u))
    out[:, :, 1] = _to_uint8(markov_transition_field(u_full, u))
    out[:, :, 2] = _to_uint8(recurrence_plot(u))
    return out.reshape(windows.shape[0], len(KINDS) * windows.shape[1], size, size)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


class ImageCache:
    """Least-recently-used store of :func:`ecg_images` per window, keyed by the window's bytes and the size."""

    def __init__(self, max_windows: int = 128) -> None:
        self.max_windows = max_windows
        self._store: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._store)

    @staticmethod
    def key(window: np.ndarray, size: int) -> bytes:
        digest = hashlib.blake2b(np.ascontiguousarray(window, dtype=np.float32).tobytes(), digest_size=16)
        digest.update(f"{window.shape}/{size}".encode())
        return digest.digest()

    def images(self, windows: np.ndarray, size: int = 256) -> np.ndarray:
        """Like :func:`ecg_images`, computing (together, vectorised) only the windows not in the cache."""
        windows = np.asarray(windows, dtype=np.float32)
        keys = [self.key(w, size) for w in windows]
        missing = [i for i, k in enumerate(keys) if k not in self._store]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        fresh = dict(zip(missing, ecg_images(windows[missing], size))) if missing else {}
        out = []
        for i, k in enumerate(keys):
            image = fresh[i] if i in fresh else self._store[k]
            if self.max_windows > 0:
                self._store[k] = image
                self._store.move_to_end(k)
            out.append(image)
        while len(self._store) > self.max_windows:
            self._store.popitem(last=False)
        return np.stack(out)
