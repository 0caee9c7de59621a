"""Long records (Holter, patch, bedside monitors) classified one segment at a time, then summarised.

The networks were trained on 10-s to few-minute records and see at most ``max_windows`` 10-s windows
of one (8 by default: 80 s). A 24-hour record handed over whole would be classified from 80 s of it
spread over the day, and read into memory at once (a two-lead day at 500 Hz is 86 M samples). So a
record longer than :data:`LONG_RECORD_SECONDS` is cut into :data:`SEGMENT_SECONDS` segments, each
read from the file only when its turn comes and classified as a record of its own; the result says
which segments carry which diagnosis, with their times, merged into episodes.

>>> segment_bounds(num_samples=250 * 65, fs=250.0, seconds=60.0)  # a 5-s tail joins the segment before it
[(0, 16250)]
>>> segment_bounds(num_samples=250 * 200, fs=250.0, seconds=60.0)
[(0, 15000), (15000, 30000), (30000, 45000), (45000, 50000)]
>>> episodes([True, True, False, True], [(0, 60), (60, 120), (120, 180), (180, 200)])
[(0, 120), (180, 200)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Records longer than this (seconds) are classified in segments.
LONG_RECORD_SECONDS = 300.0
#: Length of one segment in seconds: six 10-s network windows, all of it seen by the network.
SEGMENT_SECONDS = 60.0
#: A last piece shorter than this (seconds) is joined to the segment before it.
MIN_SEGMENT_SECONDS = 10.0


def segment_bounds(
    num_samples: int, fs: float, seconds: float = SEGMENT_SECONDS, min_seconds: float = MIN_SEGMENT_SECONDS
) -> list[tuple[int, int]]:
    """(start, stop) sample bounds of consecutive segments covering the record; a tail shorter than
    ``min_seconds`` joins the previous segment, so no segment is too short to classify."""
    if seconds <= 0 or fs <= 0:
        raise ValueError(f"segment length {seconds} s at {fs} Hz: both must be positive")
    step = max(1, int(round(seconds * fs)))
    bounds = [(start, min(start + step, num_samples)) for start in range(0, num_samples, step)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < min_seconds * fs:
        bounds[-2:] = [(bounds[-2][0], bounds[-1][1])]
    return bounds


@dataclass(frozen=True)
class Segment:
    """One classified segment: its time span in seconds from the record's start, probabilities and
    decisions (one per class), or the reason it could not be classified (then the arrays are empty)."""

    start_s: float
    stop_s: float
    probabilities: np.ndarray
    decisions: np.ndarray
    problem: str = ""


def episodes(flags: Sequence[bool], spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Runs of consecutive flagged segments as (start, stop) spans."""
    out: list[tuple[float, float]] = []
    for flag, (start, stop) in zip(flags, spans):
        if not flag:
            continue
        if out and out[-1][1] == start:
            out[-1] = (out[-1][0], stop)
        else:
            out.append((start, stop))
    return out


def summarise(segments: Sequence[Segment], labels: Sequence[str]) -> list[dict]:
    """For each class positive in at least one segment: its label, the number and share of classified
    segments, the seconds they cover and the episodes (merged runs of positive segments), most first."""
    classified = [s for s in segments if not s.problem]
    if not classified:
        return []
    decisions = np.stack([s.decisions for s in classified]).astype(bool)
    spans = [(s.start_s, s.stop_s) for s in classified]
    out = []
    for index in np.flatnonzero(decisions.any(axis=0)):
        flags = decisions[:, index]
        out.append(
            {
                "label": labels[int(index)],
                "segments": int(flags.sum()),
                "share": float(flags.mean()),
                "seconds": float(sum(stop - start for (start, stop), flag in zip(spans, flags) if flag)),
                "episodes": [[start, stop] for start, stop in episodes(list(flags), spans)],
            }
        )
    return sorted(out, key=lambda item: -item["seconds"])


def clock(seconds: float) -> str:
    """Seconds from the start as ``h:mm:ss``.

    >>> clock(3725.4)
    '1:02:05'
    """
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


__all__ = [
    "LONG_RECORD_SECONDS",
    "MIN_SEGMENT_SECONDS",
    "SEGMENT_SECONDS",
    "Segment",
    "clock",
    "episodes",
    "segment_bounds",
    "summarise",
]
