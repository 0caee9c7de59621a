"""Draw a record as a clinical ECG printout, with the delineation's fiducial points marked.

Why: the delineator is checked by eye on real records, and a cardiologist reads an ECG on
paper, not as a list of arrays. The picture follows the printout conventions so that
durations and amplitudes can be read off the grid:

* 25 mm/s and 10 mm/mV; a light line every 1 mm (40 ms, 0.1 mV) and a dark one every 5 mm
  (200 ms, 0.5 mV); a 1 mV, 200 ms calibration pulse at the start of every row;
* the standard 3 x 4 layout (rows I/aVR/V1/V4, II/aVL/V2/V5, III/aVF/V3/V6), each panel a
  quarter of the shown time (2.5 s of a 10-s record) taken at its own time, as the leads
  were recorded, plus a full-length lead-II rhythm strip (the first lead when II is absent);
* every trace (and its marks) is clipped to its own cell, so a high-voltage lead never runs
  into the next row; lead labels sit on top of the trace in a white box;
* leads a record lacks leave their panel blank with a grey label; a record without any of
  the twelve standard leads is drawn with its own leads in reading order;
* the title names the record, its rate, age, sex and diagnoses (scored classes by their
  abbreviation, other SNOMED CT codes as codes).

The trace is the record's own samples in mV with the baseline wander removed by a 0.5 Hz
zero-phase high-pass and powerline hum by 50/60 Hz notches (the baseline and AC filters of an
electrocardiograph), so rows do not drift out of their band and P waves stay visible.
Fiducial points are marked on the trace: P blue, QRS red, T green; onset ``>``, peak ``o``,
offset ``<``. An optional ``shading`` (per lead, per sample, 0..1) is drawn behind the trace:
what :mod:`ecgreport` uses to show where a network looked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from ecgio.files import atomic_write_with
from ecgio.leads import TWELVE_LEADS
from ecgscore.classes import ABBREVIATIONS, scored_classes
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
TITLE_MM = 12.0
LEGEND_MM = 7.0

#: Colour of each wave's marks (columns from ``ecgsignal.delineate.WAVES``).
WAVE_COLOURS: dict[str, str] = {"P": "#1f5fd6", "QRS": "#d62020", "T": "#129a3a"}
POINT_MARKERS = (">", "o", "<")
POINT_NAMES = ("onset", "peak", "offset")
MARK_SIZE = 5.0  # points: readable at 150 dpi
#: RGB of the attribution shading (orange: apart from the grid's red and the marks' colours).
SHADING_RGB = (1.0, 0.55, 0.0)
SHADING_MAX_ALPHA = 0.6
#: Powerline frequencies and their first harmonics, notched out of the drawn trace.
MAINS_HZ = (50.0, 60.0, 100.0, 120.0)


@dataclass(frozen=True)
class Cell:
    """One panel of the printout in mm: the lead, its box and the samples it shows."""

    lead: str | None
    row: int
    column: int
    x0: float
    y0: float
    width: float
    height: float
    start: int
    stop: int

    @property
    def baseline(self) -> float:
        return self.y0 + self.height / 2


def remove_baseline(signal: np.ndarray, fs: float, cutoff_hz: float = 0.5) -> np.ndarray:
    """Zero-phase high-pass per lead (baseline wander off, waveform timing unchanged)."""
    from scipy import signal as sps

    x = np.nan_to_num(np.asarray(signal, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if x.shape[-1] < 16 or cutoff_hz >= fs / 2:
        return x - np.median(x, axis=-1, keepdims=True)
    sos = sps.butter(2, cutoff_hz, btype="highpass", fs=fs, output="sos")
    padlen = min(x.shape[-1] - 1, int(3 * fs / cutoff_hz))
    return sps.sosfiltfilt(sos, x, axis=-1, padlen=padlen)


def remove_mains(signal: np.ndarray, fs: float, q: float = 10.0) -> np.ndarray:
    """Zero-phase notches at 50, 60, 100 and 120 Hz (those below Nyquist): an electrocardiograph's AC filter.

    Mains hum of a tenth of a millivolt turns a trace at 25 mm/s into a solid band that hides
    the P waves (JS20006 of the Challenge sample); the notches leave the waveform itself alone.
    ``q`` = 10 (5 Hz wide at 50 Hz) lets the notch settle within about 70 ms of the record's ends.
    """
    from scipy import signal as sps

    x = np.asarray(signal, dtype=np.float64)
    for freq in MAINS_HZ:
        if freq < 0.45 * fs and x.shape[-1] > 64:
            b, a = sps.iirnotch(freq, q, fs=fs)
            x = sps.filtfilt(b, a, x, axis=-1, padlen=min(x.shape[-1] - 1, int(fs)))  # 1 s: edges settle
    return x


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


def paper_size_mm(seconds: float) -> tuple[float, float]:
    """(width, height) of the printout in mm for ``seconds`` of rhythm strip."""
    return CAL_MM + seconds * MM_PER_SECOND + MARGIN_MM, 4 * ROW_MM + TITLE_MM + LEGEND_MM


def cells(leads: Sequence[str], fs: float, shown: int, seconds: float) -> list[Cell]:
    """Every panel of the 3 x 4 layout and the rhythm strip, with its box and sample range."""
    height_mm = paper_size_mm(seconds)[1]
    panel = seconds / 4.0
    rows = [list(row) for row in panel_layout(leads)] + [[rhythm_lead(leads)]]
    out = []
    for r, row in enumerate(rows):
        y0 = height_mm - TITLE_MM - (r + 1) * ROW_MM
        span = seconds if r == 3 else panel
        for c, lead in enumerate(row):
            start = int(round(c * panel * fs)) if r < 3 else 0
            stop = min(shown, int(round(start + span * fs)))
            x0 = CAL_MM + c * panel * MM_PER_SECOND
            out.append(Cell(lead, r, c, x0, y0, span * MM_PER_SECOND, ROW_MM, start, stop))
    return out


def diagnoses_text(labels: Sequence[str]) -> str:
    """``#Dx`` codes as a reader wants them: scored classes by abbreviation, other codes as codes."""
    names = []
    for code in labels:
        matches = [ABBREVIATIONS[j] for j, members in enumerate(scored_classes()) if code in members]
        name = matches[0] if matches else str(code)
        if name not in names:
            names.append(name)
    return ", ".join(names) if names else "none given"


def title_lines(record: Any) -> tuple[str, str]:
    """Record, rate, duration, age and sex; then the diagnoses and the paper settings."""
    age = record.age
    age_text = "age ?" if age is None or (isinstance(age, float) and math.isnan(age)) else f"age {age:g}"
    sex = record.sex or "sex ?"
    first = (
        f"{record.name}   {len(record.leads)} leads, {float(record.fs):g} Hz, "
        f"{record.signal.shape[1] / float(record.fs):.1f} s   {age_text}, {sex}"
    )
    second = f"Dx: {diagnoses_text(tuple(record.labels))}   ({MM_PER_SECOND:g} mm/s, {MM_PER_MV:g} mm/mV)"
    return first, second


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


def _clip_box(ax: Any, cell: Cell) -> Rectangle:
    return Rectangle((cell.x0, cell.y0), cell.width, cell.height, transform=ax.transData)


def _trace(ax: Any, x: np.ndarray, fs: float, cell: Cell) -> None:
    t = np.arange(cell.start, cell.stop) / fs
    (line,) = ax.plot(
        cell.x0 + (t - cell.start / fs) * MM_PER_SECOND,
        cell.baseline + x[cell.start : cell.stop] * MM_PER_MV,
        color="black",
        linewidth=0.7,
        zorder=3,
    )
    line.set_clip_path(_clip_box(ax, cell))
    line.set_gid(f"trace:{cell.lead}:{cell.row}:{cell.column}")


def _shade(ax: Any, values: np.ndarray, fs: float, cell: Cell) -> None:
    """Attribution 0..1 of one lead as an orange band filling the cell behind the trace."""
    strip = np.clip(np.nan_to_num(values[cell.start : cell.stop]), 0.0, 1.0)
    if strip.size == 0 or not np.any(strip > 0):
        return
    rgba = np.zeros((1, strip.size, 4))
    rgba[..., :3] = SHADING_RGB
    rgba[0, :, 3] = strip * SHADING_MAX_ALPHA
    width = strip.size / fs * MM_PER_SECOND
    image = ax.imshow(
        rgba,
        extent=(cell.x0, cell.x0 + width, cell.y0, cell.y0 + cell.height),
        aspect="auto",
        interpolation="nearest",
        zorder=1,
    )
    image.set_clip_path(_clip_box(ax, cell))
    image.set_gid(f"shade:{cell.lead}:{cell.row}:{cell.column}")


def _marks(ax: Any, x: np.ndarray, fs: float, points: np.ndarray, delineation_fs: float, cell: Cell) -> None:
    """Fiducial points of one lead (points: (B, 11) at delineation_fs) inside the cell's samples."""
    for wave in WAVES:
        colour = WAVE_COLOURS[wave.name]
        for column, marker in zip(wave.columns, POINT_MARKERS):
            p = points[:, column]
            p = p[p >= 0]
            samples = np.round(p * fs / delineation_fs).astype(np.int64)
            samples = samples[(samples >= cell.start) & (samples < cell.stop)]
            if samples.size == 0:
                continue
            (line,) = ax.plot(
                cell.x0 + (samples - cell.start) / fs * MM_PER_SECOND,
                cell.baseline + x[samples] * MM_PER_MV,
                linestyle="none",
                marker=marker,
                markersize=MARK_SIZE,
                markerfacecolor=colour if marker == "o" else "none",
                markeredgecolor=colour,
                markeredgewidth=1.2,
                zorder=4,
            )
            line.set_clip_path(_clip_box(ax, cell))


def _check_delineation(delineation: Any, leads: Sequence[str]) -> np.ndarray:
    points = np.asarray(delineation.points)
    if points.ndim != 3 or points.shape[1] != len(leads) or points.shape[2] != 11:
        raise ValueError(
            f"delineation points have shape {points.shape}; expected (beats, {len(leads)}, 11) "
            f"for the record's leads {tuple(leads)}"
        )
    return points


def _legend(ax: Any, y_mm: float, shaded: bool) -> None:
    handles = [Line2D([], [], color=WAVE_COLOURS[w.name], linewidth=2, label=w.name) for w in WAVES]
    handles += [
        Line2D(
            [],
            [],
            linestyle="none",
            marker=m,
            markersize=MARK_SIZE,
            color="black",
            markerfacecolor="none" if m != "o" else "black",
            label=n,
        )
        for m, n in zip(POINT_MARKERS, POINT_NAMES)
    ]
    if shaded:
        handles.append(
            Line2D(
                [],
                [],
                color=SHADING_RGB,
                alpha=SHADING_MAX_ALPHA,
                linewidth=6,
                label="attribution (where the network looked)",
            )
        )
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(0.0, y_mm),
        bbox_transform=ax.transData,
        ncol=len(handles),
        fontsize=7,
        frameon=False,
    )


def _check_shading(shading: Any, signal: np.ndarray) -> np.ndarray | None:
    if shading is None:
        return None
    shading = np.asarray(shading, dtype=np.float64)
    if shading.shape != signal.shape:
        raise ValueError(f"shading has shape {shading.shape}; expected the signal's {signal.shape}")
    return shading


def draw_ecg_paper(
    ax: Any,
    record: Any,
    delineation: Any = None,
    seconds: float = 10.0,
    shading: np.ndarray | None = None,
) -> list[Cell]:
    """Draw ``record`` into ``ax`` in mm coordinates (limits set here); returns the cells drawn.

    ``delineation`` (optional) must have one lead per record lead, in the record's lead order,
    and carries its own ``fs``: points are converted to the record's rate. ``shading``
    (optional, the signal's shape, 0..1) is drawn behind each trace.
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    leads = tuple(record.leads)
    fs = float(record.fs)
    signal = np.asarray(record.signal)
    if signal.ndim != 2 or signal.shape[0] != len(leads) or signal.shape[1] == 0:
        raise ValueError(f"record {record.name}: signal shape {signal.shape} does not match leads {leads}")
    points = None if delineation is None else _check_delineation(delineation, leads)
    shade = _check_shading(shading, signal)
    shown = min(signal.shape[1], int(round(seconds * fs)))
    x = remove_mains(remove_baseline(signal[:, :shown], fs), fs)
    width_mm, height_mm = paper_size_mm(seconds)
    ax.set_xlim(0.0, width_mm)
    ax.set_ylim(0.0, height_mm)
    ax.set_axis_off()
    _grid(ax, width_mm, height_mm - TITLE_MM)
    layout = cells(leads, fs, shown, seconds)
    for cell in layout:
        if cell.column == 0:
            _calibration(ax, cell.baseline)
        else:
            ax.plot([cell.x0, cell.x0], [cell.baseline - 3.0, cell.baseline + 3.0], color="black", lw=0.8, zorder=3)
        if cell.lead is not None:
            ax.text(
                cell.x0 + 1.0,
                cell.y0 + cell.height - 1.0,
                cell.lead,
                fontsize=8,
                fontweight="bold",
                color="black" if cell.lead in leads else "#999999",
                va="top",
                zorder=6,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0, "alpha": 0.9},
            )
        if cell.lead not in leads or cell.stop <= cell.start:
            continue
        k = leads.index(cell.lead)
        if shade is not None:
            _shade(ax, shade[k], fs, cell)
        _trace(ax, x[k], fs, cell)
        if points is not None:
            _marks(ax, x[k], fs, points[:, k, :], float(delineation.fs), cell)
    first, second = title_lines(record)
    ax.text(CAL_MM, height_mm - TITLE_MM * 0.3, first, fontsize=9, fontweight="bold", va="center")
    ax.text(CAL_MM, height_mm - TITLE_MM * 0.72, second, fontsize=9, va="center")
    if points is not None or shade is not None:
        _legend(ax, LEGEND_MM - 0.5, shade is not None)
    return layout


def save_figure(fig: Figure, path: str | Path, dpi: int) -> None:
    """Write a PNG atomically: a reader never sees half an image."""
    atomic_write_with(path, lambda stream: fig.savefig(stream, format="png", dpi=dpi))


def plot_ecg_paper(
    record: Any,
    delineation: Any = None,
    path: str | Path | None = None,
    seconds: float = 10.0,
    dpi: int = 150,
    shading: np.ndarray | None = None,
) -> Figure:
    """Draw ``record`` (an :class:`ecgio.Record`) as ECG paper; save a PNG to ``path`` when given.

    See :func:`draw_ecg_paper`; ``seconds`` is the shown duration (the rhythm strip's length;
    each panel shows a quarter of it).
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    width_mm, height_mm = paper_size_mm(seconds)
    fig = Figure(figsize=(width_mm / 25.4, height_mm / 25.4), dpi=dpi)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    draw_ecg_paper(ax, record, delineation, seconds, shading)
    if path is not None:
        save_figure(fig, path, dpi)
    return fig


__all__ = [
    "MM_PER_MV",
    "MM_PER_SECOND",
    "STANDARD_LAYOUT",
    "Cell",
    "cells",
    "diagnoses_text",
    "draw_ecg_paper",
    "panel_layout",
    "paper_size_mm",
    "plot_ecg_paper",
    "remove_baseline",
    "remove_mains",
    "save_figure",
]
