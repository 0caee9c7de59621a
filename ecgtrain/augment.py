"""On-the-fly augmentation of training batches: what differs between devices, hospitals and lead sets.

Windows reach the network z-scored per lead at the signal layer's rate, so the perturbations are in
units of a lead's spread: gain differences (per-lead amplitude scaling), sensor noise, breathing and
electrode motion (baseline wander), mains interference (powerline), heart-rate variation (time
stretch, applied to the fiducial channels too, so they stay aligned), missing or flat leads (lead
dropout: one network then serves records whose leads the signal layer zeroed), shorter recordings
(random crop: the rest of the window zero-padded, as the signal layer pads short records). Mixup
(Zhang et al. 2018) blends pairs of records and their targets, which the trainer applies since it
touches the tabular input and targets too.

Device imitation (another hospital's electrocardiograph, as it reaches the network after the signal layer):

* ``band_limit``: the device's own filters, causal as in the hardware: a first-order high-pass between
  0.05 Hz (diagnostic mode) and 0.67 Hz (monitor mode) and a second-order Butterworth low-pass between
  35 Hz (monitor mode) and 150 Hz (diagnostic mode). The signal layer's zero-phase 0.5-45 Hz band-pass
  cannot undo them: a causal high-pass above 0.05 Hz tilts the ST segment and T wave (why diagnostic
  standards ask for 0.05 Hz), and a 35-45 Hz low-pass damps the QRS. The low-pass's delay (up to 6 ms)
  is taken back: on a real record the delineation, hence the fiducial channels, would follow it, and a
  shift of the whole window is no difference between devices. Each record's leads keep their spread
  (the signal layer z-scores after the device's filters).
* ``resample``: the record as an upstream resampler that interpolates linearly would have left it, from
  a device at 257, 360, 500 or 1000 Hz (round trip 250 -> rate -> 250 Hz at a random sub-sample offset):
  the smoothing of the interpolation and a shift of a fraction of a sample. The signal layer's own
  resampling is polyphase: a record from 257, 360 or 1000 Hz reaches the window within 0.0006 spreads
  of the same record from 500 Hz, so this imitates only a source that was resampled linearly before
  it reached us (it moves windows by 0.015 spreads; ``benchmarks/device_survival.py``).
* :func:`imitate_device` is the same imitation on a whole record in mV at its own rate, written at a
  device rate: what the boosted trees, which read only features of whole records, can train on
  (device-perturbed copies of the training records).
* Per-lead gain is ``amplitude`` (one gain per lead and record). Notch differences are not imitated: the
  signal layer notches 50 and 60 Hz on every record and passes nothing above 45 Hz, so a device's causal
  notch moves a window by about 0.01 spreads, a fifth of the ``noise`` augmentation.

Measured by leave-one-source-out (docs/results/generalisation.md): ``band_limit`` added to the default
neither helped nor hurt beyond the spread of two seeds, so the default stays (amplitude + noise).

Each is switched on by name in the ``augment`` setting; ``True`` keeps the original pair
(amplitude + noise), ``False`` none.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

#: Signal-only augmentations, in the order they are applied.
SIGNAL_AUGMENTATIONS = (
    "resample",
    "band_limit",
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
#: The source rates ``resample`` imitates (Hz): INCART, MIT-BIH, PTB-XL/Georgia/CPSC, PTB.
DEVICE_RATES = (257.0, 360.0, 500.0, 1000.0)
#: ``band_limit``'s ranges of a device's causal cutoffs (Hz), drawn log-uniformly per record.
DEVICE_HIGHPASS_HZ = (0.05, 0.67)
DEVICE_LOWPASS_HZ = (35.0, 150.0)

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


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float], size: tuple[int, ...]) -> np.ndarray:
    return np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]), size=size))


def device_response(frequencies: np.ndarray, highpass_hz: np.ndarray, lowpass_hz: np.ndarray) -> np.ndarray:
    """Complex response (phase included: hardware filters are causal) of a first-order high-pass at
    ``highpass_hz`` followed by a second-order Butterworth low-pass at ``lowpass_hz``; cutoffs broadcast
    against ``frequencies``."""
    s_high = 1j * frequencies / highpass_hz
    s_low = 1j * frequencies / lowpass_hz
    return s_high / (1.0 + s_high) / (1.0 + np.sqrt(2.0) * s_low + s_low**2)


def band_limit(signal: np.ndarray, fiducials: np.ndarray, rng: np.random.Generator, fs: float) -> Batch:
    """Each record through one device's causal high-pass and low-pass (cutoffs drawn per record, the
    low-pass's delay taken back so the fiducial channels stay aligned), each lead rescaled to its former
    spread. Filtered in the frequency domain over the window followed by its mirror
    image, so the window's two ends do not wrap into each other."""
    batch = signal.shape[0]
    highpass = _log_uniform(rng, DEVICE_HIGHPASS_HZ, (batch, 1, 1))
    lowpass = _log_uniform(rng, DEVICE_LOWPASS_HZ, (batch, 1, 1))
    filtered = _causal_filter(signal, fs, highpass, lowpass, undelayed=True)
    before = signal.std(axis=-1, keepdims=True)
    after = filtered.std(axis=-1, keepdims=True)
    scale = np.where(after > 1e-6, before / np.maximum(after, 1e-6), 1.0)
    return (filtered * scale).astype(np.float32), fiducials


def _causal_filter(
    signal: np.ndarray, fs: float, highpass_hz: np.ndarray, lowpass_hz: np.ndarray, undelayed: bool = False
) -> np.ndarray:
    """``signal`` (..., T) through :func:`device_response`, over the signal followed by its mirror image;
    ``undelayed``: without the low-pass's low-frequency group delay, sqrt(2) / (2 pi lowpass_hz)."""
    length = signal.shape[-1]
    mirrored = np.concatenate([signal, signal[..., ::-1]], axis=-1)
    frequencies = np.fft.rfftfreq(2 * length, 1.0 / fs)
    response = device_response(frequencies, highpass_hz, lowpass_hz)
    if undelayed:
        response = response * np.exp(1j * frequencies * np.sqrt(2.0) / lowpass_hz)
    return np.fft.irfft(np.fft.rfft(mirrored, axis=-1) * response, n=2 * length, axis=-1)[..., :length]


#: :func:`imitate_device`'s ranges: a lead's gain error and the baseline wander's size (mV) and frequency (Hz).
DEVICE_GAIN = (0.9, 1.1)
DEVICE_WANDER_MV = (0.0, 0.1)
DEVICE_WANDER_HZ = (0.05, 0.5)


def imitate_device(signal_mv: np.ndarray, fs: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A record (leads, samples) in mV as another device would have recorded it: each lead's gain off by
    up to 10 %, the device's causal filters (as ``band_limit``, cutoffs drawn once), breathing wander of
    up to 0.1 mV, and sampled at a rate from :data:`DEVICE_RATES` other than ``fs`` (polyphase, so the
    signal layer reads it as it would a record of that device). Returns the signal and its new rate."""
    from fractions import Fraction

    from scipy.signal import resample_poly

    leads, length = signal_mv.shape
    gain = rng.uniform(*DEVICE_GAIN, size=(leads, 1))
    highpass = _log_uniform(rng, DEVICE_HIGHPASS_HZ, ())
    lowpass = _log_uniform(rng, DEVICE_LOWPASS_HZ, ())
    filtered = _causal_filter(np.asarray(signal_mv, np.float64) * gain, fs, highpass, lowpass)
    t = np.arange(length) / fs
    frequency = rng.uniform(*DEVICE_WANDER_HZ)
    size = rng.uniform(*DEVICE_WANDER_MV, size=(leads, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(leads, 1))
    wandering = filtered + size * np.sin(2 * np.pi * frequency * t + phase)
    rates = [rate for rate in DEVICE_RATES if rate != fs]
    rate = float(rates[int(rng.integers(len(rates)))])
    ratio = Fraction(rate / fs).limit_denominator(1000)
    out = resample_poly(wandering, ratio.numerator, ratio.denominator, axis=-1, padtype="line")
    return out.astype(np.float32), fs * ratio.numerator / ratio.denominator


def _interpolate(x: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(B, L, T) read at fractional sample ``positions`` (B, N) by linear interpolation, clamped at the ends."""
    positions = np.clip(positions, 0.0, x.shape[-1] - 1)
    left = np.minimum(np.floor(positions).astype(np.int64), x.shape[-1] - 2)
    weight = (positions - left)[:, None, :].astype(np.float32)
    lo = np.take_along_axis(x, left[:, None, :], axis=-1)
    hi = np.take_along_axis(x, left[:, None, :] + 1, axis=-1)
    return lo * (1.0 - weight) + hi * weight


def resample(signal: np.ndarray, fiducials: np.ndarray, rng: np.random.Generator, fs: float) -> Batch:
    """Each record sampled at a device rate from :data:`DEVICE_RATES` (its grid at a random sub-sample
    offset) and read back at ``fs``, both by linear interpolation; all of a record's leads alike."""
    batch, _, length = signal.shape
    if length < 2:
        return signal, fiducials
    ratio = rng.choice(DEVICE_RATES, size=(batch, 1)) / fs  # device samples per window sample
    offset = rng.uniform(0.0, 1.0, size=(batch, 1))  # of a device sample
    on_device = np.arange(length) * ratio - offset  # each window sample on the device's grid
    first = np.floor(on_device)
    weight = (on_device - first)[:, None, :].astype(np.float32)
    # only the two device samples around each window sample are read, each interpolated from the window
    before = _interpolate(signal, (first + offset) / ratio)
    after = _interpolate(signal, (first + 1.0 + offset) / ratio)
    back = before * (1.0 - weight) + after * weight
    return back.astype(np.float32), fiducials


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
    "resample": resample,
    "band_limit": band_limit,
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
