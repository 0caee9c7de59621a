#!/usr/bin/env python
"""Which device differences survive the signal layer: how far a network window moves when the same record
comes from a device with another rate, filter or notch.

Usage:
    python benchmarks/device_survival.py --data DIR [--records 40]

Each record (mV, native rate) is changed as another device would have recorded it, both versions go
through the signal layer (:func:`ecgsignal.pipeline.prepare`: polyphase resampling to 250 Hz, zero-phase
0.5-45 Hz band-pass, 50 and 60 Hz notches, per-lead z-score), and the RMS difference of their first windows
is printed in lead spreads (the unit of the windows), median and 90th percentile over records. The
scale to read it against: the default ``noise`` augmentation adds 0.05 spreads RMS. Last, the same
figure for the window augmentations ``resample`` and ``band_limit`` applied to the original windows.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import scipy.signal as sps

from ecgio.record import find_records, read_record
from ecgsignal.pipeline import prepare
from ecgtrain.augment import band_limit, device_response, resample

log = logging.getLogger("device_survival")
Change = Callable[[np.ndarray, float], tuple[np.ndarray, float]]


def at_rate(rate: float) -> Change:
    def change(x: np.ndarray, fs: float) -> tuple[np.ndarray, float]:
        ratio = Fraction(rate / fs).limit_denominator(1000)
        return sps.resample_poly(x, ratio.numerator, ratio.denominator, axis=-1, padtype="line"), rate

    return change


def notch(frequency: float, quality: float = 30.0) -> Change:
    """A device's causal mains notch."""

    def change(x: np.ndarray, fs: float) -> tuple[np.ndarray, float]:
        b, a = sps.iirnotch(frequency, quality, fs=fs)
        return sps.lfilter(b, a, x, axis=-1), fs

    return change


def device_filter(highpass_hz: float, lowpass_hz: float, undelayed: bool = False) -> Change:
    """A device's causal first-order high-pass and second-order low-pass (as ``band_limit``'s); ``undelayed``:
    the low-pass's low-frequency group delay (sqrt(2) / (2 pi fc)) taken back, leaving its change of shape."""

    def change(x: np.ndarray, fs: float) -> tuple[np.ndarray, float]:
        n = x.shape[-1]
        mirrored = np.concatenate([x, x[..., ::-1]], axis=-1)
        frequencies = np.fft.rfftfreq(2 * n, 1.0 / fs)
        response = device_response(frequencies, highpass_hz, lowpass_hz)
        if undelayed:
            response = response * np.exp(2j * np.pi * frequencies * np.sqrt(2) / (2 * np.pi * lowpass_hz))
        return np.fft.irfft(np.fft.rfft(mirrored, axis=-1) * response, n=2 * n, axis=-1)[..., :n], fs

    return change


CHANGES: dict[str, Change] = {
    "rate 257 Hz": at_rate(257.0),
    "rate 360 Hz": at_rate(360.0),
    "rate 1000 Hz": at_rate(1000.0),
    "notch 50 Hz (Q 30)": notch(50.0),
    "notch 60 Hz (Q 30)": notch(60.0),
    "notch 50 Hz (Q 5)": notch(50.0, 5.0),
    "high-pass 0.05 Hz": device_filter(0.05, 1e6),
    "high-pass 0.5 Hz": device_filter(0.5, 1e6),
    "high-pass 0.67 Hz": device_filter(0.67, 1e6),
    "low-pass 150 Hz": device_filter(1e-6, 150.0),
    "low-pass 100 Hz": device_filter(1e-6, 100.0),
    "low-pass 40 Hz": device_filter(1e-6, 40.0),
    "low-pass 150 Hz, undelayed": device_filter(1e-6, 150.0, True),
    "low-pass 40 Hz, undelayed": device_filter(1e-6, 40.0, True),
}


def window(signal: np.ndarray, fs: float, leads: tuple[str, ...]) -> np.ndarray:
    return prepare(np.asarray(signal, np.float32), fs, leads).windows[0]


def rms(a: np.ndarray, b: np.ndarray) -> float:
    n = min(a.shape[-1], b.shape[-1])
    return float(np.sqrt(np.mean((a[..., :n] - b[..., :n]) ** 2)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--records", type=int, default=40)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    headers = find_records(args.data)
    chosen = [headers[i] for i in np.linspace(0, len(headers) - 1, min(args.records, len(headers))).astype(int)]
    moved: dict[str, list[float]] = {name: [] for name in [*CHANGES, "window resample", "window band_limit"]}
    rng = np.random.default_rng(0)
    for header in chosen:
        record = read_record(header)
        original = window(record.signal, record.fs, record.leads)
        for name, change in CHANGES.items():
            signal, fs = change(np.asarray(record.signal, np.float64), record.fs)
            moved[name].append(rms(window(signal, fs, record.leads), original))
        batch, fiducials = original[None], np.zeros((1, 1, original.shape[-1]), np.float32)
        for name, augment in (("window resample", resample), ("window band_limit", band_limit)):
            moved[name].append(rms(augment(batch, fiducials, rng, 250.0)[0][0], original))
    rates = sorted({read_record(h).fs for h in chosen})
    print(f"{len(chosen)} records of {args.data} (rates {rates} Hz); window RMS change in lead spreads:")
    for name, values in moved.items():
        print(f"  {name:<27} median {np.median(values):.4f}  90th percentile {np.percentile(values, 90):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
