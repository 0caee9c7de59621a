"""The signal layer: preprocessing, wavelet delineation, features and the per-record ``prepare`` call."""

from ecgsignal.config import SignalConfig
from ecgsignal.delineate import WAVE_POINTS, Delineation, delineate
from ecgsignal.features import (
    FEATURE_NAMES,
    FEATURE_RANGES,
    FEATURE_UNITS,
    FIDUCIAL_CHANNELS,
    fiducial_channels,
    global_features,
)
from ecgsignal.pipeline import Prepared, prepare
from ecgsignal.preprocess import condition, normalise, preprocess, window_starts, windows
from ecgsignal.wavelet import dyadic_wavelet_transform

__all__ = [
    "FEATURE_NAMES",
    "FEATURE_RANGES",
    "FEATURE_UNITS",
    "FIDUCIAL_CHANNELS",
    "WAVE_POINTS",
    "Delineation",
    "Prepared",
    "SignalConfig",
    "condition",
    "delineate",
    "dyadic_wavelet_transform",
    "fiducial_channels",
    "global_features",
    "normalise",
    "prepare",
    "preprocess",
    "window_starts",
    "windows",
]
