#!/usr/bin/env python
"""The PhysioNet/CinC Challenge 2021 helper API, as a thin layer over :mod:`ecgio`.

Same names, arguments, return types and output format as the official ``helper_code.py``, so
``team_code.py`` runs unchanged whether the harness uses this file or its own copy. Every header
field comes from :mod:`ecgio.header`, the one header grammar of the package, so this API and
``ecgio`` never disagree on a lead name, a gain or a baseline. Where the official helper is
fragile, the grammar follows the WFDB format instead:

- gains written ``1000/mV`` *and* ``1000.0(0)/mV`` (the official parser returns 0 for the second);
- lead names from the description field even on lines without checksum/block size columns
  (``x.mat 16 1000/mV 16 0 0 0 I`` names ``I``, as wfdb reads it), matched case-insensitively
  and returned canonically (``AVR`` -> ``aVR``); a line with no description names ``''``;
- comment keys written ``#Dx:`` and ``# Dx:`` (same for ``Age`` and ``Sex``); a repeated
  ``#Age``/``#Sex`` line: the last one counts, as in the official helper (and in ``ecgio``);
- ages ``NaN``/``Unknown`` -> NaN;
- header lines split on any line ending, so ``\\r\\n`` files parse;
- output files shorter than four lines load as empty lists instead of crashing; outputs are
  written atomically (a full disk leaves no half-written file).

Everything that touches a file raises an error naming that file; a ``.mat`` file is read only
when it is a regular file of bounded size (:func:`ecgio.files.contained_file`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from ecgio.errors import RecordError
from ecgio.files import atomic_write, contained_file
from ecgio.header import (
    SignalSpec,
    comment_values,
    declared_signal_lines,
    parse_age,
    parse_signal_line,
    record_fields,
)
from ecgio.leads import canonical_lead
from ecgio.leads import sort_leads as _sort_leads
from ecgio.limits import MAT_BYTES_PER_SAMPLE, MAT_MARGIN_BYTES, max_samples
from ecgio.record import load_mat, read_header_text

twelve_leads = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
six_leads = ("I", "II", "III", "aVR", "aVL", "aVF")
four_leads = ("I", "II", "III", "V2")
three_leads = ("I", "II", "V2")
two_leads = ("I", "II")
lead_sets = (twelve_leads, six_leads, four_leads, three_leads, two_leads)


# ---------------------------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------------------------
def is_number(x: object) -> bool:
    """True when ``float(x)`` succeeds (strings like ``'1e3'``, ``'nan'`` and numbers)."""
    try:
        float(x)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return False
    return True


def is_integer(x: object) -> bool:
    """True for numbers (or their text) with no fractional part."""
    return is_number(x) and float(x).is_integer()  # type: ignore[arg-type]


def is_finite_number(x: object) -> bool:
    """True for numbers (or their text) that are neither NaN nor infinite."""
    return is_number(x) and math.isfinite(float(x))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------
def find_challenge_files(data_directory: str) -> tuple[list[str], list[str]]:
    """Header and ``.mat`` paths of the records directly in ``data_directory`` (sorted, hidden skipped)."""
    header_files: list[str] = []
    recording_files: list[str] = []
    for name in sorted(os.listdir(data_directory)):
        root, extension = os.path.splitext(name)
        if root.startswith(".") or extension != ".hea":
            continue
        header_file = os.path.join(data_directory, root + ".hea")
        recording_file = os.path.join(data_directory, root + ".mat")
        if os.path.isfile(header_file) and os.path.isfile(recording_file):
            header_files.append(header_file)
            recording_files.append(recording_file)
    return header_files, recording_files


def load_header(header_file: str) -> str:
    """The whole header text; a header that is not a regular file, or over 1 MiB, raises ``ecgio.RecordError``."""
    return read_header_text(header_file)


def load_recording(
    recording_file: str, header: str | None = None, leads: Sequence[str] | None = None, key: str = "val"
) -> np.ndarray:
    """Raw ADC values (leads x samples) of a ``.mat`` file; with ``header`` and ``leads``, only those leads.

    Errors (missing file, not a regular file, too big, unreadable file, no variable ``key``)
    raise ``ecgio.RecordError`` naming the file. Values stay in ADC units: scale with
    :func:`get_adc_gains` and :func:`get_baselines` as ``(x - baseline) / gain``.
    """
    path = Path(recording_file)
    if not path.exists() and not path.is_symlink():
        raise RecordError(path, "signal file is missing")
    bound = MAT_MARGIN_BYTES + MAT_BYTES_PER_SAMPLE * max_samples()
    recording = load_mat(contained_file(path.parent, path.name, bound), key)
    if recording.ndim != 2:
        raise RecordError(recording_file, f"variable {key!r} has shape {recording.shape}, expected leads x samples")
    if header and leads:
        recording = choose_leads(recording, header, leads)
    return recording


def choose_leads(recording: np.ndarray, header: str, leads: Sequence[str]) -> np.ndarray:
    """Rows of ``recording`` for ``leads`` in that order; leads absent from the header stay zero.

    The result keeps the recording's dtype, as the official helper does.
    """
    available = [lead.upper() for lead in get_leads(header)]
    chosen = np.zeros((len(leads), np.shape(recording)[1]), dtype=recording.dtype)
    for i, lead in enumerate(leads):
        name = canonical_lead(lead).upper()
        if name in available:
            chosen[i, :] = recording[available.index(name), :]
    return chosen


# ---------------------------------------------------------------------------------------------
# Header fields (all read by the ecgio grammar)
# ---------------------------------------------------------------------------------------------
def _record_field(header: str, index: int) -> float | None:
    tokens = record_fields(header)
    if len(tokens) <= index:
        return None
    try:
        return float(tokens[index])
    except ValueError:
        return None


def _signals(header: str) -> list[SignalSpec]:
    """The declared signal lines, parsed; a line the grammar cannot read raises a RecordError."""
    return [parse_signal_line(line, "<header>") for line in declared_signal_lines(header)]


def get_recording_id(header: str) -> str | None:
    """The record name (first token of line 0)."""
    tokens = record_fields(header)
    return tokens[0] if tokens else None


def get_num_leads(header: str) -> float | None:
    """Declared number of leads (a float, as the official helper returns), None when unreadable."""
    return _record_field(header, 1)


def get_frequency(header: str) -> float | None:
    """Sampling frequency in Hz, None when unreadable."""
    return _record_field(header, 2)


def get_num_samples(header: str) -> float | None:
    """Number of samples per lead (a float, as the official helper returns), None when unreadable."""
    return _record_field(header, 3)


def get_leads(header: str) -> tuple[str, ...]:
    """Lead names in header order, canonically spelled (``AVR`` -> ``aVR``); ``''`` for an unnamed line."""
    return tuple(signal.lead for signal in _signals(header))


def _per_lead(header: str, leads: Sequence[str], value_of: Callable[[SignalSpec], float]) -> np.ndarray:
    """For each requested lead, ``value_of`` its signal line (0 when the header lacks the lead)."""
    wanted = [canonical_lead(lead).upper() for lead in leads]
    values = np.zeros(len(leads))
    for signal in _signals(header):
        name = signal.lead.upper()
        if name in wanted:
            values[wanted.index(name)] = value_of(signal)
    return values


def get_adc_gains(header: str, leads: Sequence[str]) -> np.ndarray:
    """ADC units per mV for each of ``leads`` (both ``1000/mV`` and ``1000.0(0)/mV`` spellings; 0 if absent)."""
    return _per_lead(header, leads, lambda signal: signal.gain_per_mv)


def get_baselines(header: str, leads: Sequence[str]) -> np.ndarray:
    """ADC value of 0 mV for each of ``leads``: the baseline in parentheses, else the ADC zero; 0 if absent."""
    return _per_lead(header, leads, lambda signal: signal.zero_level)


def get_age(header: str) -> float | None:
    """Age in years from the last ``#Age`` line; NaN when not a finite number (``NaN``, ``Unknown``); None when absent."""
    values = comment_values(header.splitlines(), "Age")
    return parse_age(values[-1]) if values else None


def get_sex(header: str) -> str | None:
    """The sex as written on the last ``#Sex`` line (``Male``, ``Female``, ``Unknown``...); None when absent."""
    values = comment_values(header.splitlines(), "Sex")
    return values[-1] if values else None


def get_labels(header: str) -> list[str]:
    """SNOMED CT codes of every ``#Dx`` line, in order."""
    labels = []
    for value in comment_values(header.splitlines(), "Dx"):
        labels.extend(entry.strip() for entry in value.split(",") if entry.strip())
    return labels


def sort_leads(leads: Iterable[str]) -> tuple[str, ...]:
    """Leads in the order I, II, III, aVR, aVL, aVF, V1..V6; unknown names follow in input order."""
    return _sort_leads(canonical_lead(lead) for lead in leads)


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------
def output_text(
    recording_id: str | None, classes: Iterable[object], labels: Iterable[object], probabilities: Iterable[object]
) -> str:
    """The four-line Challenge output text, byte for byte as the official helper writes it."""
    return "#{}\n{}\n{}\n{}\n".format(
        recording_id,
        ",".join(str(c) for c in classes),
        ",".join(str(label) for label in labels),
        ",".join(str(p) for p in probabilities),
    )


def save_outputs(
    output_file: str,
    recording_id: str | None,
    classes: Iterable[object],
    labels: Iterable[object],
    probabilities: Iterable[object],
) -> None:
    """Write the four-line Challenge output file in one step (never half-written, even on a full disk)."""
    atomic_write(output_file, output_text(recording_id, classes, labels, probabilities))


def load_outputs(output_file: str) -> tuple[str | None, tuple[str, ...], tuple[str, ...], tuple[float, ...]]:
    """Read an output file: (recording id, classes, labels, probabilities).

    Non-finite probabilities load as NaN. Unlike the official helper, the id comes back without
    its line ending, and missing or empty lines give empty tuples instead of a crash.
    """
    with open(output_file) as file:
        lines = file.read().splitlines()
    lines += [""] * (4 - len(lines))
    recording_id = lines[0][1:] if len(lines[0]) > 1 else None

    def entries(line: str) -> tuple[str, ...]:
        return tuple(entry.strip() for entry in line.split(",")) if line.strip() else ()

    classes = entries(lines[1])
    labels = entries(lines[2])
    probabilities = tuple(float(entry) if is_finite_number(entry) else float("nan") for entry in entries(lines[3]))
    return recording_id, classes, labels, probabilities
