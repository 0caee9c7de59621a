"""What a record must declare before any of its signal is read: a sane rate, a length, a bounded size.

A header is text anyone can edit. ``fs 1e9`` makes the resampler ask for 112 GiB; ``12 x 10^9``
samples makes the reader allocate until the machine dies; ``fs 0.5`` or 3 samples give the network
nothing to look at but still get a confident answer. These checks run on the parsed header, so a
bad record fails fast with a :class:`~ecgio.errors.RecordError` naming it, and the rest of a batch
goes on.
"""

from __future__ import annotations

import os
from pathlib import Path

from ecgio.errors import RecordError
from ecgio.header import Header

#: Default bound on num_leads x num_samples: a 30-min 12-lead record at 1000 Hz (21.6 M) fits.
DEFAULT_MAX_SAMPLES = 12 * 2_000_000
#: Environment variable that overrides :data:`DEFAULT_MAX_SAMPLES`.
MAX_SAMPLES_ENV = "ECG_MAX_SAMPLES"
#: Sampling rates an ECG can sensibly have, in Hz.
MIN_FS = 50.0
MAX_FS = 5000.0
#: Shortest record with enough signal for one beat or two, in seconds.
MIN_SECONDS = 1.0
#: Bytes a MATLAB file may hold beyond its samples (file header, variable name, padding).
MAT_MARGIN_BYTES = 64 * 1024
#: Largest header read, in bytes (Challenge headers are about 1 kB; a 300 MB one cost 1.8 GB to parse).
MAX_HEADER_BYTES = 1 << 20
#: Bytes per sample allowed in a ``.mat`` file whatever the header's format says (float64 at most).
MAT_BYTES_PER_SAMPLE = 8


def max_samples() -> int:
    """The bound on num_leads x num_samples: ``ECG_MAX_SAMPLES`` when set (a positive integer), else the default."""
    text = os.environ.get(MAX_SAMPLES_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_SAMPLES
    try:
        value = int(float(text))
    except (ValueError, OverflowError):  # OverflowError: 'inf'
        raise ValueError(f"{MAX_SAMPLES_ENV}={text!r} is not a number") from None
    if value <= 0:
        raise ValueError(f"{MAX_SAMPLES_ENV}={text!r} must be positive")
    return value


def check_size(header: Header, source: str | Path) -> None:
    """A multi-segment record, or a declared size (num_leads x num_samples) over :func:`max_samples`, is an error.

    A multi-segment header's lines name other headers, whose files a reader (``wfdb``) would open
    without the checks made here; the Challenge's records are all single-segment, so such a record
    is refused before anything it names is opened.
    """
    if header.num_segments is not None:
        raise RecordError(
            source,
            f"multi-segment record ({header.num_segments} segments): not read, only single-segment records are",
        )
    declared = header.num_leads * header.num_samples
    limit = max_samples()
    if declared > limit:
        raise RecordError(
            source,
            f"header declares {header.num_leads} leads x {header.num_samples} samples = {declared} samples, "
            f"more than the {limit} allowed (set {MAX_SAMPLES_ENV} to raise the limit)",
        )


def check_usable(header: Header, source: str | Path) -> None:
    """The header-level part of "is there a signal to classify": rate within bounds, at least 1 s declared."""
    if not MIN_FS <= header.fs <= MAX_FS:
        raise RecordError(
            source, f"sampling frequency {header.fs:g} Hz is outside the usable range {MIN_FS:g}-{MAX_FS:g} Hz"
        )
    if header.num_samples_declared and header.num_samples < MIN_SECONDS * header.fs:
        raise RecordError(
            source,
            f"record is {header.num_samples} samples at {header.fs:g} Hz "
            f"({header.num_samples / header.fs:.3g} s), shorter than {MIN_SECONDS:g} s",
        )
    if header.num_leads == 0:
        raise RecordError(source, "header declares no leads")


def check_signal_length(num_samples: int, fs: float, source: str | Path) -> None:
    """At least 1 s of signal, for callers that only hold the array (the header may not declare a length)."""
    if num_samples < MIN_SECONDS * fs:
        raise RecordError(
            source, f"record is {num_samples} samples at {fs:g} Hz, shorter than {MIN_SECONDS:g} s of signal"
        )


def mat_bytes_per_sample(header: Header, format_bytes: float) -> float:
    """Bytes per sample a ``.mat`` file may use: up to 8 (float64) when the header declares the record's length,
    only the header's format width when it does not (the sample limit then stands in for the length, and 8
    bytes for each of those samples let a 150 MB file through to be loaded before anything could fail)."""
    declared = header.num_samples_declared and header.num_samples
    return float(max(MAT_BYTES_PER_SAMPLE, format_bytes)) if declared else float(max(format_bytes, 1.0))


def mat_file_bound(header: Header) -> int:
    """The most bytes the record's ``<record>.mat`` may have (see :func:`mat_bytes_per_sample`)."""
    declared = header.num_samples_declared and header.num_samples
    samples = header.num_leads * header.num_samples if declared else max_samples()
    width = max((signal.bytes_per_sample for signal in header.signals), default=2.0)
    return int(MAT_MARGIN_BYTES + mat_bytes_per_sample(header, width) * samples) + 1


def signal_file_bounds(header: Header) -> dict[str, int]:
    """For each file the header names, the most bytes it may have.

    A WFDB ``.dat`` file holds the interleaved samples of its signals: bytes per sample of each
    signal's format x samples, plus its byte offset. A ``.mat`` file may store wider numbers than the
    header's format says, so it is bounded by 8 bytes per sample plus a margin. When the header
    declares no length, the sample limit (shared by its leads) stands in for it.
    """
    declared = header.num_samples_declared and header.num_samples
    samples = header.num_samples if declared else max_samples() // max(header.num_leads, 1)
    bounds: dict[str, float] = {}
    for signal in header.signals:
        if signal.file_name.lower().endswith(".mat"):
            per_sample = mat_bytes_per_sample(header, signal.bytes_per_sample)
            extra = MAT_MARGIN_BYTES
        else:
            per_sample = signal.bytes_per_sample
            extra = (signal.byte_offset or 0) + 16  # format 212/310 round a frame up to whole bytes
        bounds[signal.file_name] = bounds.get(signal.file_name, float(extra)) + per_sample * samples
    return {name: int(bound) + 1 for name, bound in bounds.items()}


__all__ = [
    "DEFAULT_MAX_SAMPLES",
    "MAX_FS",
    "MAX_HEADER_BYTES",
    "MAX_SAMPLES_ENV",
    "MIN_FS",
    "MIN_SECONDS",
    "check_signal_length",
    "check_size",
    "check_usable",
    "mat_bytes_per_sample",
    "mat_file_bound",
    "max_samples",
    "signal_file_bounds",
]
