"""Draw a record as a clinical ECG printout, with the delineation's fiducial points marked.

Why: the delineator is checked by eye on real records, and a cardiologist reads an ECG on
paper, not as a list of arrays. The picture follows the printout conventions so that
durations and amplitudes can be read off the grid:

* 25 mm/s and 10 mm/mV; a light line every 1 mm (40 ms, 0.1 mV) and a dark one every 5 mm
  (200 ms, 0.5 mV); a 1 mV, 200 ms calibration pulse at the start of every row;
* the standard 3 x 4 layout (rows I/aVR/V1/V4, II/aVL/V2/V5, III/aVF/V3/V6), each panel a
  quarter of the shown time (2.5 s of a 10-s record) taken at its own time, as the leads
  were recorded, plus a full-length lead-II rhythm strip (the first lead when II is absent);
* leads a record lacks leave their panel blank with a grey label; a record without any of
  the twelve standard leads is drawn with its own leads in reading order.

The trace is the record's own samples in mV with the baseline wander removed by a 0.5 Hz
zero-phase high-pass (as electrocardiographs do), so rows do not drift out of their band.
Fiducial points are marked on the trace: P blue, QRS red, T green; onset ``>``, peak ``o``,
offset ``<``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ecgio.leads import TWELVE_LEADS
from ecgsignal.delineate import WAVES

#: Paper speed and gain of the printout.
MM_PER_SECOND = 25.0
MM_PER_MV = 10.0
#: The standard 3 x 4 arrangement, row by row.
STANDARD_LAYOUT: tuple[tuple[str, ...], ...] = (
    ("I", "aVR", "V1", "V4"),
    ("II", "aVL", "V2", "V5"),
    ("III", "aVF", "V3", "V6"),
)
ROW_MM = 35.0  # vertical room per row (3.5 mV)
CAL_MM = 10.0  # width of the calibration-pulse margin
MARGIN_MM = 5.0
TITLE_MM = 8.0
LEGEND_MM = 7.0

#: Colour of each wave's marks (columns from ``ecgsignal.delineate.WAVES``).
WAVE_COLOURS: dict[str, str] = {"P": "#1f5fd6", "QRS": "#d62020", "T": "#129a3a"}
POINT_MARKERS = (">", "o", "<")
POINT_NAMES = ("onset", "peak", "offset")


def remove_baseline(signal: np.ndarray, fs: float, cutoff_hz: float = 0.5) -> np.ndarray:
    """Zero-phase high-pass per lead (baseline wander off, waveform timing unchanged)."""
    from scipy import signal as sps

    x = np.nan_to_num(np.asarray(signal, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if x.shape[-1] < 16 or cutoff_hz >= fs / 2:
        return x - np.median(x, axis=-1, keepdims=True)
    sos = sps.butter(2, cutoff_hz, btype="highpass", fs=fs, output="sos")
    padlen = min(x.shape[-1] - 1, int(3 * fs / cutoff_hz))
    return sps.sosfiltfilt(sos, x, axis=-1, padlen=padlen)


def panel_layout(leads: Sequence[str]) -> tuple[tuple[str | None, ...], ...]:
    """The 3 x 4 panels: the standard one, or the record's own leads when it has none of the twelve."""
    if any(lead in TWELVE_LEADS for lead in leads):
        return STANDARD_LAYOUT
    cells: list[str | None] = [*list(leads)[:12]]
    cells += [None] * (12 - len(cells))
    return tuple(tuple(cells[row * 4 : row * 4 + 4]) for row in range(3))


def rhythm_lead(leads: Sequence[str]) -> str:
    """Lead II when present (best P waves), else the first lead."""
    return "II" if "II" in leads else leads[0]


def _grid(ax: Any, width_mm: float, height_mm: float) -> None:
    """mm grid: light every 1 mm, darker every 5 mm."""
    light: list[list[tuple[float, float]]] = []
    dark: list[list[tuple[float, float]]] = []
    for x in np.arange(0.0, width_mm + 1e-6, 1.0):
        (dark if round(x) % 5 == 0 else light).append([(x, 0.0), (x, height_mm)])
    for y in np.arange(0.0, height_mm + 1e-6, 1.0):
        (dark if round(y) % 5 == 0 else light).append([(0.0, y), (width_mm, y)])
    ax.add_collection(LineCollection(light, colors="#f6c3c3", linewidths=0.35, zorder=0))
    ax.add_collection(LineCollection(dark, colors="#e58f8f", linewidths=0.8, zorder=0))


def _calibration(ax: Any, baseline_mm: float) -> None:
    """1 mV x 200 ms pulse in the left margin of a row."""
    x0 = 2.0
    xs = [x0, x0 + 1.0, x0 + 1.0, x0 + 6.0, x0 + 6.0, x0 + 7.0]
    ys = [0.0, 0.0, MM_PER_MV, MM_PER_MV, 0.0, 0.0]
    ax.plot(xs, [baseline_mm + y for y in ys], color="black", linewidth=0.9, zorder=3)


def _trace(ax: Any, x: np.ndarray, fs: float, start: int, stop: int, baseline_mm: float, x0_mm: float) -> None:
    t = np.arange(start, stop) / fs
    ax.plot(
        x0_mm + (t - start / fs) * MM_PER_SECOND,
        baseline_mm + x[start:stop] * MM_PER_MV,
        color="black",
        linewidth=0.7,
        zorder=3,
    )


def _marks(
    ax: Any,
    x: np.ndarray,
    fs: float,
    points: np.ndarray,
    delineation_fs: float,
    start: int,
    stop: int,
    baseline_mm: float,
    x0_mm: float,
) -> None:
    """Fiducial points of one lead (points: (B, 11) at delineation_fs) inside samples [start, stop)."""
    for wave in WAVES:
        colour = WAVE_COLOURS[wave.name]
        for column, marker in zip(wave.columns, POINT_MARKERS):
            p = points[:, column]
            p = p[p >= 0]
            samples = np.round(p * fs / delineation_fs).astype(np.int64)
            samples = samples[(samples >= start) & (samples < stop)]
            if samples.size == 0:
                continue
            ax.plot(
                x0_mm + (samples - start) / fs * MM_PER_SECOND,
                baseline_mm + x[samples] * MM_PER_MV,
                linestyle="none",
                marker=marker,
                markersize=3.2,
                markerfacecolor=colour if marker == "o" else "none",
                markeredgecolor=colour,
                markeredgewidth=0.8,
                zorder=4,
            )


def _check_delineation(delineation: Any, leads: Sequence[str]) -> np.ndarray:
    points = np.asarray(delineation.points)
    if points.ndim != 3 or points.shape[1] != len(leads) or points.shape[2] != 11:
        raise ValueError(
            f"delineation points have shape {points.shape}; expected (beats, {len(leads)}, 11) "
            f"for the record's leads {tuple(leads)}"
        )
    return points


def _legend(ax: Any, y_mm: float) -> None:
    handles = [Line2D([], [], color=WAVE_COLOURS[w.name], linewidth=2, label=w.name) for w in WAVES]
    handles += [
        Line2D(
            [], [], linestyle="none", marker=m, color="black", markerfacecolor="none" if m != "o" else "black", label=n
        )
        for m, n in zip(POINT_MARKERS, POINT_NAMES)
    ]
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(0.0, y_mm),
        bbox_transform=ax.transData,
        ncol=len(handles),
        fontsize=7,
        frameon=False,
    )


def plot_ecg_paper(
    record: Any,
    delineation: Any = None,
    path: str | Path | None = None,
    seconds: float = 10.0,
    dpi: int = 150,
) -> Figure:
    """Draw ``record`` (an :class:`ecgio.Record`) as ECG paper; save a PNG to ``path`` when given.

    ``delineation`` (optional) must have one lead per record lead, in the record's lead order,
    and carries its own ``fs``: points are converted to the record's rate. ``seconds`` is the
    shown duration (the rhythm strip's length; each panel shows a quarter of it).
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    leads = tuple(record.leads)
    fs = float(record.fs)
    signal = np.asarray(record.signal)
    if signal.ndim != 2 or signal.shape[0] != len(leads) or signal.shape[1] == 0:
        raise ValueError(f"record {record.name}: signal shape {signal.shape} does not match leads {leads}")
    points = None if delineation is None else _check_delineation(delineation, leads)
    shown = min(signal.shape[1], int(round(seconds * fs)))
    x = remove_baseline(signal[:, :shown], fs)
    panel = seconds / 4.0
    width_mm = CAL_MM + seconds * MM_PER_SECOND + MARGIN_MM
    height_mm = 4 * ROW_MM + TITLE_MM + LEGEND_MM
    fig = Figure(figsize=(width_mm / 25.4, height_mm / 25.4), dpi=dpi)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0.0, width_mm)
    ax.set_ylim(0.0, height_mm)
    ax.set_axis_off()
    _grid(ax, width_mm, height_mm - TITLE_MM)
    rows = [list(row) for row in panel_layout(leads)] + [[rhythm_lead(leads)]]
    for r, row in enumerate(rows):
        baseline = height_mm - TITLE_MM - (r + 0.5) * ROW_MM
        _calibration(ax, baseline)
        span = seconds if r == 3 else panel
        for c, lead in enumerate(row):
            x0 = CAL_MM + c * panel * MM_PER_SECOND
            start = int(round(c * panel * fs)) if r < 3 else 0
            stop = min(shown, int(round(start + span * fs)))
            label_colour = "black" if lead in leads else "#999999"
            if lead is not None:
                ax.text(x0 + 1.0, baseline + 0.45 * ROW_MM, lead, fontsize=8, color=label_colour, va="top", zorder=5)
            if c > 0:
                ax.plot([x0, x0], [baseline - 3.0, baseline + 3.0], color="black", linewidth=0.8, zorder=3)
            if lead not in leads or stop <= start:
                continue
            k = leads.index(lead)
            _trace(ax, x[k], fs, start, stop, baseline, x0)
            if points is not None:
                _marks(ax, x[k], fs, points[:, k, :], float(delineation.fs), start, stop, baseline, x0)
    ax.text(
        CAL_MM,
        height_mm - TITLE_MM / 2,
        f"{record.name}   {len(leads)} leads, {fs:g} Hz, {signal.shape[1] / fs:.1f} s   "
        f"{MM_PER_SECOND:g} mm/s, {MM_PER_MV:g} mm/mV",
        fontsize=9,
        va="center",
    )
    if points is not None:
        _legend(ax, LEGEND_MM - 0.5)
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return fig


__all__ = ["MM_PER_MV", "MM_PER_SECOND", "STANDARD_LAYOUT", "panel_layout", "plot_ecg_paper", "remove_baseline"]
