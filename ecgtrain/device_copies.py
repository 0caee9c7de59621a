"""Device-perturbed copies of Challenge-format records: the boosted trees' device imitation.

The trees read features of whole records, which the networks' on-the-fly window augmentation never
reaches; training them on the originals plus copies written as another device would have recorded the
same patients (:func:`ecgtrain.augment.imitate_device`: per-lead gain error, a device's causal filters,
breathing wander, another sampling rate) is their device imitation. Measured by leave-one-source-out
(docs/results/generalisation.md) and not adopted: ``benchmarks/device_copies.py`` writes them for
``compare_sources.py --candidate-device-copies``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ecgdata.challenge_format import is_complete_record, write_challenge_adc
from ecgio.record import find_records, read_record
from ecgsignal.features import amplitudes_normalised
from ecgtrain.augment import imitate_device

log = logging.getLogger(__name__)
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
        write_challenge_adc(target, record.name, adc, fs, leads, gains.tolist(), zeros, age, record.sex, record.labels)
        written += 1
    log.info("device copies: %d written into %s", written, out)
    return written
