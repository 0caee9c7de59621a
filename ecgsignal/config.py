"""Every parameter of the signal layer, in one frozen object.

The target rate is 250 Hz. Why:

* The Challenge records come at 257 Hz (INCART), 500 Hz (CPSC, Georgia, PTB-XL) and 1000 Hz (PTB).
  250 Hz is at or below all of them, so no record is upsampled by more than 3 % (257 -> 250 is a mild
  decimation) and no information the network could use is invented.
* The diagnostic content of a surface ECG lies below ~40-50 Hz (QRS energy peaks at 10-25 Hz; the
  pass band below ends at 45 Hz), so 250 Hz (Nyquist 125 Hz) keeps it all with a wide margin for the
  anti-alias and notch filters.
* The quadratic-spline wavelet delineator (Martinez 2004) is defined at 250 Hz; delineating at its
  native rate needs no filter rescaling and is the cheapest case.
* Cost: the classifier must run in <= 50 ms per 10-s record on one CPU core, preprocessing and
  delineation included. Half the samples of 500 Hz halves the cost of every filter, of the
  delineation and of the network's first layers.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SignalConfig:
    """Preprocessing, quality and window parameters (JSON-safe through :meth:`to_dict`).

    Filtering: ``highpass_hz`` removes baseline wander and ``lowpass_hz`` muscle noise, in one
    zero-phase Butterworth band-pass of ``filter_order`` (zero phase: R peaks do not move);
    ``notch_hz`` powerline frequencies are notched (quality factor ``notch_q``) when below both
    Nyquist limits.

    Quality (per lead; a failing lead is zeroed and marked unusable):
    ``flat_std_mv`` a band-passed lead quieter than this (mV) is flat; ``saturation_fraction`` a lead
    whose raw samples sit on their extreme value for at least this fraction of the record is
    saturated (clipped at the converter's rail), as is one with more than that fraction of
    samples beyond ``max_abs_mv``; a lead with more than ``noise_hf_fraction`` of its band-passed
    power above ``noise_split_hz`` AND a kurtosis below ``noise_kurtosis`` is noise only (an ECG
    keeps most power below 20 Hz and is spiky; see :func:`ecgsignal.preprocess.lead_quality`).

    Windows: ``window_seconds`` long (T = window_seconds * fs samples); up to ``max_windows`` evenly
    spread windows per record; ``min_extra_fraction`` a record must exceed k windows by this
    fraction of a window before a (k+1)-th window is cut.

    Normalisation of the network input: ``normalisation`` ``"zscore"`` (per lead: minus mean, over
    std; std floored at ``norm_floor_mv``) or ``"none"``. Amplitudes survive in mV in the global
    features, which are computed before normalisation.
    """

    fs: float = 250.0
    highpass_hz: float = 0.5
    lowpass_hz: float = 45.0
    filter_order: int = 2
    notch_hz: tuple[float, ...] = (50.0, 60.0)
    notch_q: float = 30.0
    flat_std_mv: float = 0.01
    saturation_fraction: float = 0.05
    max_abs_mv: float = 20.0
    noise_split_hz: float = 20.0
    noise_hf_fraction: float = 0.3
    noise_kurtosis: float = 6.0
    window_seconds: float = 10.0
    max_windows: int = 8
    min_extra_fraction: float = 0.2
    normalisation: str = "zscore"
    norm_floor_mv: float = 0.01

    def __post_init__(self) -> None:
        if not 50.0 <= self.fs <= 2000.0:
            raise ValueError(f"SignalConfig.fs={self.fs}: expected 50-2000 Hz")
        if not 0.0 < self.highpass_hz < self.lowpass_hz < self.fs / 2:
            raise ValueError(
                f"SignalConfig band {self.highpass_hz}-{self.lowpass_hz} Hz is not inside 0-{self.fs / 2} Hz"
            )
        if self.window_seconds <= 0 or self.max_windows < 1:
            raise ValueError("SignalConfig: window_seconds must be > 0 and max_windows >= 1")
        if self.normalisation not in ("zscore", "none"):
            raise ValueError(f"SignalConfig.normalisation={self.normalisation!r}: expected 'zscore' or 'none'")
        object.__setattr__(self, "notch_hz", tuple(float(f) for f in self.notch_hz))

    @property
    def window_samples(self) -> int:
        """T, the length of one network window in samples."""
        return int(round(self.window_seconds * self.fs))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (tuples become lists)."""
        out = dataclasses.asdict(self)
        out["notch_hz"] = list(self.notch_hz)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SignalConfig:
        """Inverse of :meth:`to_dict`. An unknown key is a ValueError listing the known ones: a typo such as
        ``lowpas_hz`` would otherwise train silently at the default."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown signal setting(s) {unknown}; known: {sorted(known)}")
        kwargs = dict(values)
        if "notch_hz" in kwargs:
            kwargs["notch_hz"] = tuple(kwargs["notch_hz"])
        return cls(**kwargs)
