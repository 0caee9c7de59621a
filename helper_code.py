#!/usr/bin/env python
"""The PhysioNet/CinC Challenge 2021 helper API, our own implementation.

Same names, arguments, return types and output format as the official ``helper_code.py``, so
``team_code.py`` runs unchanged whether the harness uses this file or its own copy. Where the
official helper is fragile, this one follows the record format instead:

- gains written ``1000/mV`` *and* ``1000.0(0)/mV`` (the official parser returns 0 for the second);
- comment keys written ``#Dx:`` and ``# Dx:`` (same for ``Age`` and ``Sex``);
- lead names matched case-insensitively and returned canonically (``AVR`` -> ``aVR``);
- ages ``NaN``/``Unknown`` -> NaN;
- header lines split on any line ending, so ``\\r\\n`` files parse;
- output files shorter than four lines load as empty lists instead of crashing.

Everything that touches a file raises an error naming that file.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterable, Sequence

import numpy as np

from ecgio.header import WFDB_DEFAULT_GAIN, parse_gain
from ecgio.leads import canonical_lead
from ecgio.leads import sort_leads as _sort_leads
from ecgio.record import load_mat

twelve_leads = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
six_leads = ("I", "II", "III", "aVR", "aVL", "aVF")
four_leads = ("I", "II", "III", "V2")
three_leads = ("I", "II", "V2")
two_leads = ("I", "II")
lead_sets = (twelve_leads, six_leads, four_leads, three_leads, two_leads)

_COMMENT_RE = re.compile(r"^#\s*([A-Za-z]+)\s*:(.*)$")
_UNIT_SCALE_TO_MV = {"mv": 1.0, "uv": 1e-3, "μv": 1e-3, "v": 1e3}


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
    """The whole header text."""
    with open(header_file, encoding="utf-8", errors="replace") as file:
        return file.read()


def load_recording(
    recording_file: str, header: str | None = None, leads: Sequence[str] | None = None, key: str = "val"
) -> np.ndarray:
    """Raw ADC values (leads x samples) of a ``.mat`` file; with ``header`` and ``leads``, only those leads.

    Errors (missing file, unreadable file, no variable ``key``) raise ``ecgio.RecordError``
    naming the file. Values stay in ADC units: scale with :func:`get_adc_gains` and
    :func:`get_baselines` as ``(x - baseline) / gain``.
    """
    from pathlib import Path

    from ecgio.errors import RecordError

    recording = load_mat(Path(recording_file), key)
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
# Header fields
# ---------------------------------------------------------------------------------------------
def _lines(header: str) -> list[str]:
    return header.splitlines()


def _record_tokens(header: str) -> list[str]:
    for line in _lines(header):
        if line.strip() and not line.lstrip().startswith("#"):
            return line.split()
    return []


def _record_field(header: str, index: int) -> float | None:
    tokens = _record_tokens(header)
    if len(tokens) <= index:
        return None
    try:
        return float(tokens[index])
    except ValueError:
        return None


def _signal_lines(header: str) -> list[list[str]]:
    """Token lists of the signal lines: the non-comment lines after line 0, at most as many as declared."""
    lines = [line for line in _lines(header) if line.strip() and not line.lstrip().startswith("#")]
    declared = _record_field(header, 1)
    count = int(declared) if declared is not None and declared >= 0 else 0
    return [line.split() for line in lines[1 : count + 1]]


def get_recording_id(header: str) -> str | None:
    """The record name (first token of line 0)."""
    tokens = _record_tokens(header)
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
    """Lead names in header order, canonically spelled (``AVR`` -> ``aVR``)."""
    return tuple(
        canonical_lead(" ".join(tokens[8:]) if len(tokens) >= 9 else tokens[-1])
        for tokens in _signal_lines(header)
        if tokens
    )


def _per_lead(header: str, leads: Sequence[str], value_of) -> np.ndarray:
    """For each requested lead, ``value_of(tokens)`` of its signal line (0 when absent or unreadable)."""
    wanted = [canonical_lead(lead).upper() for lead in leads]
    values = np.zeros(len(leads))
    for tokens in _signal_lines(header):
        name = canonical_lead(" ".join(tokens[8:]) if len(tokens) >= 9 else tokens[-1]).upper()
        if name not in wanted:
            continue
        with contextlib.suppress(ValueError, IndexError):
            values[wanted.index(name)] = value_of(tokens)
    return values


def _gain(tokens: list[str]) -> float:
    gain, _, units = parse_gain(tokens[2])
    gain = gain if gain != 0 else WFDB_DEFAULT_GAIN
    return gain / _UNIT_SCALE_TO_MV.get(units.lower(), 1.0)


def _baseline(tokens: list[str]) -> float:
    _, baseline, _ = parse_gain(tokens[2])
    if baseline is not None:
        return baseline
    return float(tokens[4]) if len(tokens) > 4 else 0.0


def get_adc_gains(header: str, leads: Sequence[str]) -> np.ndarray:
    """ADC units per mV for each of ``leads`` (both ``1000/mV`` and ``1000.0(0)/mV`` spellings; 0 if absent)."""
    return _per_lead(header, leads, _gain)


def get_baselines(header: str, leads: Sequence[str]) -> np.ndarray:
    """ADC value of 0 mV for each of ``leads``: the baseline in parentheses, else the ADC zero; 0 if absent."""
    return _per_lead(header, leads, _baseline)


def _comment(header: str, key: str) -> list[str]:
    """Values of every ``#Key:`` / ``# Key:`` comment line (key matched case-insensitively)."""
    values = []
    for line in _lines(header):
        match = _COMMENT_RE.match(line.strip())
        if match and match.group(1).lower() == key.lower():
            values.append(match.group(2).strip())
    return values


def get_age(header: str) -> float | None:
    """Age in years; NaN when written but not a number (``NaN``, ``Unknown``); None when absent."""
    values = _comment(header, "Age")
    if not values:
        return None
    try:
        return float(values[-1])
    except ValueError:
        return float("nan")


def get_sex(header: str) -> str | None:
    """The sex as written (``Male``, ``Female``, ``Unknown``...); None when absent."""
    values = _comment(header, "Sex")
    return values[-1] if values else None


def get_labels(header: str) -> list[str]:
    """SNOMED CT codes of every ``#Dx`` line, in order."""
    labels = []
    for value in _comment(header, "Dx"):
        labels.extend(entry.strip() for entry in value.split(",") if entry.strip())
    return labels


def sort_leads(leads: Iterable[str]) -> tuple[str, ...]:
    """Leads in the order I, II, III, aVR, aVL, aVF, V1..V6; unknown names follow in input order."""
    return _sort_leads(canonical_lead(lead) for lead in leads)


# ---------------------------------------------------------------------------------------------
# Outputs
# ---------------------------------------------------------------------------------------------
def save_outputs(
    output_file: str,
    recording_id: str | None,
    classes: Iterable[object],
    labels: Iterable[object],
    probabilities: Iterable[object],
) -> None:
    """Write the four-line Challenge output file, byte for byte as the official helper does."""
    text = "#{}\n{}\n{}\n{}\n".format(
        recording_id,
        ",".join(str(c) for c in classes),
        ",".join(str(label) for label in labels),
        ",".join(str(p) for p in probabilities),
    )
    with open(output_file, "w") as file:
        file.write(text)


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
