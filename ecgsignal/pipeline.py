"""``prepare``: the one call the classifier makes per record (raw mV in, network inputs out).

signal (L, N) mV at fs
  -> condition: NaN repair, resampling to ``config.fs``, band-pass + notch, quality mask (mV kept)
  -> pacemaker stimuli on the raw signal (before filtering blurs them)
  -> delineate the conditioned mV signal (unusable leads are zero and take no part)
  -> global features on the conditioned mV signal (amplitudes in mV; left out when the record's leads
     were amplitude-normalised one by one, as LUDB's are: ``features.amplitudes_normalised``)
  -> fiducial channels (C, M) aligned with it
  -> normalise (per-lead z-score) and cut signal and fiducials into the same windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecgsignal.config import SignalConfig
from ecgsignal.delineate import Delineation, delineate
from ecgsignal.features import (
    AMPLITUDE_FEATURES,
    FEATURE_NAMES,
    amplitudes_normalised,
    fiducial_channels,
    global_features,
)
from ecgsignal.pacing import spikes_at
from ecgsignal.preprocess import condition, normalise, repair_nonfinite, window_starts, windows

_AMPLITUDE_COLUMNS = np.array([FEATURE_NAMES.index(name) for name in AMPLITUDE_FEATURES])


class UnusableSignalError(ValueError):
    """A record with nothing to classify: no finite sample, or no lead passes the quality check.

    Raised instead of returning all-zero network inputs, on which a classifier still gives
    confident answers. ``reason`` says which; the caller adds the file name.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"no usable signal: {reason}")


@dataclass(frozen=True)
class Prepared:
    """Network inputs of one record.

    ``windows`` float32 (W, L, T) normalised signal; ``fiducials`` float32 (W, C, T) fiducial
    channels of the same windows; ``features`` float32 (F,) global features (NaN where missing);
    ``feature_present`` bool (F,); ``quality`` bool (L,) usable leads. ``delineation`` (at
    ``config.fs``, whole record) is kept for plots and checks.
    """

    windows: np.ndarray
    fiducials: np.ndarray
    features: np.ndarray
    feature_present: np.ndarray
    quality: np.ndarray
    delineation: Delineation | None = None


def prepare(signal: np.ndarray, fs: float, leads: tuple[str, ...], config: SignalConfig = SignalConfig()) -> Prepared:
    """Preprocess, delineate and featurise one record; output leads are ``leads``, in that order.

    ``signal`` (len(leads), N) in mV at ``fs`` Hz, ``leads`` canonical names (any subset of the 12).
    Records from 2.5 s to 30 min are handled; shorter ones still give valid (padded) windows.
    A record with no finite sample or no usable lead raises :class:`UnusableSignalError`.
    """
    signal = np.asarray(signal)
    leads = tuple(leads)
    if signal.ndim != 2 or signal.shape[0] != len(leads):
        raise ValueError(f"signal has shape {signal.shape} but {len(leads)} leads are named: {leads}")
    if signal.size == 0 or not np.isfinite(signal).any():
        raise UnusableSignalError("no finite sample (all NaN or infinite)" if signal.size else "no samples")
    x_mv, quality = condition(signal, fs, config)
    if not quality.any():
        raise UnusableSignalError(f"none of the {len(leads)} leads passes the quality check (flat, saturated or noise)")
    delineation = delineate(x_mv, config.fs, spikes_at(repair_nonfinite(signal), fs, config.fs, quality))
    features, present = global_features(x_mv, config.fs, delineation, leads)
    if amplitudes_normalised(signal, quality):
        features, present = features.copy(), present.copy()
        features[_AMPLITUDE_COLUMNS], present[_AMPLITUDE_COLUMNS] = np.nan, False
    fiducials = fiducial_channels(delineation, x_mv.shape[1])
    x_net = normalise(x_mv, quality, config)
    starts = window_starts(x_mv.shape[1], config)
    return Prepared(
        windows=windows(x_net, config, starts),
        fiducials=windows(fiducials, config, starts),
        features=features,
        feature_present=present,
        quality=quality,
        delineation=delineation,
    )
