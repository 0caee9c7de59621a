#!/usr/bin/env python
"""Device-perturbed copies of Challenge-format records, for training the boosted trees as if more devices
had recorded the same patients.

Usage:
    python benchmarks/device_copies.py IN_DIR OUT_DIR [--seed 0]

Each record under ``IN_DIR`` is written under ``OUT_DIR`` at the same relative path and name (so its
source, read from the name, and its labels stay those of the original) after
:func:`ecgtrain.augment.imitate_device`: per-lead gain error, a device's causal filters, breathing
wander, and another sampling rate. The trees read features of whole records, which the networks'
on-the-fly window augmentation never reaches; training them on originals plus copies is their device
imitation (``compare_sources.py --candidate-device-copies``). A copy already complete is kept.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from ecgdata.challenge_format import is_complete_record, write_challenge_adc
from ecgio.record import find_records, read_record
from ecgsignal.features import amplitudes_normalised
from ecgtrain.augment import imitate_device

log = logging.getLogger("device_copies")
#: The largest ADC value a copy's lead reaches (its gain is chosen per lead so that it does).
FULL_SCALE = 32000.0


def write_copies(source: Path, out: Path, seed: int = 0) -> int:
    """Write a device-perturbed copy of every record under ``source`` into ``out``; returns how many were
    written. Each record's draws come from (seed, its position), so a copy does not depend on which
    others were already written."""
    written = 0
    for position, header in enumerate(find_records(source)):
        target = out / header.parent.relative_to(source)
        record = read_record(header)
        if is_complete_record(target / header.name, len(record.leads)):
            continue
        rng = np.random.default_rng([seed, position])
        signal, fs = imitate_device(record.signal, record.fs, rng)
        if amplitudes_normalised(record.signal):  # the source normalises every lead: so would its copy be
            spans = np.ptp(record.signal, axis=1, keepdims=True)
            signal = signal * np.where(spans > 0, spans / np.maximum(np.ptp(signal, axis=1, keepdims=True), 1e-9), 1.0)
        peaks = np.abs(signal).max(axis=1)
        gains = FULL_SCALE / np.where(peaks > 0, peaks, 1.0)
        adc = np.round(signal * gains[:, None]).astype(np.int16)
        age = None if np.isnan(record.age) else record.age
        leads, zeros = record.leads, [0] * len(record.leads)
        write_challenge_adc(target, record.name, adc, fs, leads, gains, zeros, age, record.sex, record.labels)
        written += 1
    log.info("device copies: %d written into %s", written, out)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    write_copies(args.source, args.out, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
