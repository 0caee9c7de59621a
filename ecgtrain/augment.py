"""On-the-fly augmentation of training batches: what differs between devices, hospitals and lead sets.

Windows reach the network z-scored per lead at the signal layer's rate, so the perturbations are in
units of a lead's spread: gain differences (per-lead amplitude scaling), sensor noise, breathing and
electrode motion (baseline wander), mains interference (powerline), heart-rate variation (time
stretch, applied to the fiducial channels too, so they stay aligned), missing or flat leads (lead
dropout: one network then serves records whose leads the signal layer zeroed), shorter recordings
(random crop: the rest of the window zero-padded, as the signal layer pads short records). Mixup
(Zhang et al. 2018) blends pairs of records and their targets, which the trainer applies since it
touches the tabular input and targets too.

Each is switched on by name in the ``augment`` setting; ``True`` keeps the original pair
(amplitude + noise), ``False`` none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

#: Signal-only augmentations, in the order they are applied.
SIGNAL_AUGMENTATIONS = (
    "time_stretch",
    "random_crop",
    "amplitude",
    "baseline_wander",
    "powerline",
    "noise",
    "lead_dropout",
)
AUGMENTATIONS = (*SIGNAL_AUGMENTATIONS, "mixup")
DEFAULT = ("amplitude", "noise")
MIXUP_ALPHA = 0.2

Batch = tuple[np.ndarray, np.ndarray]
Augment = Callable[[np.ndarray, np.ndarray, np.random.Generator, float], Batch]


def augmentations(setting: bool | str | Sequence[str]) -> tuple[str, ...]:
    """The names an ``augment`` setting switches on; an unknown name is a ValueError listing the known ones."""
    if setting is True:
        return DEFAULT
    if setting is False or setting is None:
        return ()
    names = (setting,) if isinstance(setting, str) else tuple(setting)
    unknown = [name for name in names if name not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"setting 'augment': unknown augmentation(s) {unknown}; known: {list(AUGMENTATIONS)}")
    return names


def amplitude(signal: np.ndarray, fiducials: np.ndarray, rng: np.random.Generator, fs: float) -> Batch:
    """Each lead of each record scaled by a gain in [0.8, 1.2]."""
    gain = rng.uniform(0.8, 1.2, size=(signal.shape[0], signal.shape[1], 1))
    return signal * gain.astype(np.float32), fiducials


def noise(signal: np.ndarray, fiducials: np.ndarray, rng: np.random.Generator, fs: float) -> Batch:
    """White noise of 0.05 lead spreads."""
    return signal + rng.normal(0.0, 0.05, size=signal.shape).astype(np.float32), fiducials


def baseline_wander(signal: np.ndarray, fiducials: np.ndarray, rng: np.random.Generator, fs: float) -> Batch:
    """A 0.05-0.5 Hz sinusoid (breathing, electrode motion) of up to 0.3 spreads, its own phase per lead."""
    batch, leads, length = signal.shape
    t = np.arange(length) / fs
    frequency = rng.uniform(0.05, 0.5, size=(batch, 1, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(batch, leads, 1))
    size = rng.uniform(0.0, 0.3, size=(batch, leads, 1))
    return signal + (size * np.sin(2 * np.pi * frequency * t + phase)).astype(np.float32), fiducials


def powerline(signal: np.ndarray, fiducials: np.ndarray, rng: np.random.Generator, fs: float) -> Batch:
    """50 or 60 Hz interference (where the rate can carry it) of up to 0.1 spreads."""
    batch, leads, length = signal.shape
    frequency = rng.choice([50.0, 60.0], size=(batch, 1, 1))
    frequency = np.where(frequency < fs / 2, frequency, fs / 4)  # fold to a representable tone
    t = np.arange(length) / fs
    phase = rng.uniform(0, 2 * np.pi, size=(batch, 1, 1))
    size = rng.uniform(0.0, 0.1, size=(batch, leads, 1))
    return signal + (size * np.sin(2 * np.pi * frequency * t + phase)).astype(np.float32), fiducials


def _resample_rows(x: np.ndarray, factor: float, length: int) -> np.ndarray:
    """(R, T) rows read at ``factor`` times the speed (linear interpolation), zero past the end, length kept."""
    positions = np.arange(length) * factor
    inside = positions <= x.shape[-1] - 1
    left = np.minimum(np.floor(positions).astype(np.int64), x.shape[-1] - 1)
    right = np.minimum(left + 1, x.shape[-1] - 1)
    weight = (positions - left).astype(np.float32)
    out = x[:, left] * (1 - weight) + x[:, right] * weight
    return np.where(inside, out, 0.0).astype(np.float32)


def time_stretch(signal: np.ndarray, fiducials: np.ndarray, rng: np.random.Generator, fs: float) -> Batch:
    """Each record sped up or slowed down by up to 10% (heart rate and intervals with it)."""
    signal, fiducials = signal.copy(), fiducials.copy()
    length = signal.shape[-1]
    for b, factor in enumerate(rng.uniform(0.9, 1.1, size=len(signal))):
        signal[b] = _resample_rows(signal[b], factor, length)
        fiducials[b] = _resample_rows(fiducials[b], factor, length)
    return signal, fiducials


def random_crop(signal: np.ndarray, fiducials: np.ndarray, rng: np.random.Generator, fs: float) -> Batch:
    """Half of the records keep a random 50-100% stretch of their window, moved to the start, zero after."""
    signal, fiducials = signal.copy(), fiducials.copy()
    length = signal.shape[-1]
    for b in np.flatnonzero(rng.random(len(signal)) < 0.5):
        keep = int(rng.uniform(0.5, 1.0) * length)
        start = int(rng.integers(0, length - keep + 1))
        for array in (signal, fiducials):
            array[b, :, :keep] = array[b, :, start : start + keep]
            array[b, :, keep:] = 0.0
    return signal, fiducials


def lead_dropout(signal: np.ndarray, fiducials: np.ndarray, rng: np.random.Generator, fs: float) -> Batch:
    """Each lead zeroed with probability 0.1, never all of a record's leads."""
    drop = rng.random(signal.shape[:2]) < 0.1
    drop[drop.all(axis=1)] = False
    return np.where(drop[:, :, None], 0.0, signal).astype(np.float32), fiducials


_SIGNAL: dict[str, Augment] = {
    "time_stretch": time_stretch,
    "random_crop": random_crop,
    "amplitude": amplitude,
    "baseline_wander": baseline_wander,
    "powerline": powerline,
    "noise": noise,
    "lead_dropout": lead_dropout,
}


def augment_signals(
    signal: np.ndarray, fiducials: np.ndarray, names: Sequence[str], rng: np.random.Generator, fs: float
) -> Batch:
    """Apply the signal augmentations among ``names`` to a batch (B, L, T) + (B, C, T), float32 out."""
    for name in SIGNAL_AUGMENTATIONS:
        if name in names:
            signal, fiducials = _SIGNAL[name](signal, fiducials, rng, fs)
    return signal.astype(np.float32, copy=False), fiducials.astype(np.float32, copy=False)


def mixup(
    arrays: Sequence[np.ndarray], rng: np.random.Generator, alpha: float = MIXUP_ALPHA
) -> tuple[list[np.ndarray], np.ndarray, float]:
    """Blend each record with a random partner: every array (inputs and targets alike, first axis = batch)
    becomes lam * a + (1 - lam) * a[partner]; returns the arrays, the partner order and lam (>= 0.5, so the
    record stays the main one)."""
    lam = float(rng.beta(alpha, alpha))
    lam = max(lam, 1.0 - lam)
    partner = rng.permutation(len(arrays[0]))
    mixed = [(lam * a + (1.0 - lam) * a[partner]).astype(np.float32) for a in arrays]
    return mixed, partner, lam
