"""ECG-paper plots: PNG written at the paper size, 12- and 2-lead records, fiducial marks."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from ecgio import Record, read_record
from ecgio.leads import TWELVE_LEADS
from ecgplot.ecg_paper import (
    CAL_MM,
    MARGIN_MM,
    MM_PER_SECOND,
    ROW_MM,
    STANDARD_LAYOUT,
    cells,
    diagnoses_text,
    panel_layout,
    plot_ecg_paper,
)
from ecgsignal.records import delineate_record


def _marker_lines(fig) -> list:
    """Lines drawn as markers only (the fiducial marks)."""
    return [line for ax in fig.axes for line in ax.get_lines() if line.get_linestyle() == "None"]


def _labels(fig) -> dict[str, str]:
    return {t.get_text(): t.get_color() for ax in fig.axes for t in ax.texts}


@pytest.fixture(scope="module")
def record(cinc_dir: Path) -> Record:
    return read_record(cinc_dir / "E07500")


def test_twelve_lead_png_with_marks(record: Record, tmp_path: Path) -> None:
    out = tmp_path / "ecg.png"
    delineation = delineate_record(record)
    fig = plot_ecg_paper(record, delineation, path=out, dpi=100)
    image = imread(out)
    width, height = fig.get_size_inches() * 100
    assert abs(image.shape[0] - height) < 1 and abs(image.shape[1] - width) < 1  # matplotlib truncates
    # 25 mm/s: 10 s of trace plus the calibration margin and the right margin
    assert fig.get_size_inches()[0] * 25.4 == pytest.approx(CAL_MM + 10 * MM_PER_SECOND + MARGIN_MM)
    marks = _marker_lines(fig)
    assert len(marks) >= 12  # every lead has at least its QRS marks
    shown = sum(len(line.get_xdata()) for line in marks)
    present = int((np.asarray(delineation.points)[:, :, [0, 1, 2, 3, 5, 7, 8, 9, 10]] >= 0).sum())
    assert 0 < shown <= present * 2  # rhythm strip repeats lead II; nothing invented
    labels = _labels(fig)
    assert all(lead in labels for row in STANDARD_LAYOUT for lead in row)
    assert float(np.std(image[..., :3])) > 0.05  # not a blank canvas


def test_two_lead_record_leaves_other_panels_blank(record: Record, tmp_path: Path) -> None:
    two = Record(name="two", signal=record.signal[:2], leads=record.leads[:2], fs=record.fs)
    assert two.leads == ("I", "II")
    out = tmp_path / "two.png"
    fig = plot_ecg_paper(two, delineate_record(two), path=out, dpi=60)
    assert out.stat().st_size > 10_000
    labels = _labels(fig)
    assert labels["V1"] == "#999999" and labels["I"] == "black"
    traces = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "-" and len(line.get_xdata()) > 50]
    assert len(traces) == 3  # I and II panels plus the lead-II rhythm strip


def test_without_marks_and_short_record(record: Record, tmp_path: Path) -> None:
    short = Record(name="short", signal=record.signal[:, : int(3 * record.fs)], leads=record.leads, fs=record.fs)
    fig = plot_ecg_paper(short, None, path=tmp_path / "short.png", seconds=10.0, dpi=60)
    assert _marker_lines(fig) == []
    assert (tmp_path / "short.png").exists()


def test_nonstandard_leads_get_their_own_layout() -> None:
    assert panel_layout(("ML2", "V5x"))[0] == ("ML2", "V5x", None, None)
    assert panel_layout(("II", "V5")) == STANDARD_LAYOUT
    t = np.arange(2000) / 250.0
    rec = Record(
        name="mit",
        signal=np.vstack([np.sin(2 * np.pi * t), np.cos(2 * np.pi * t)]).astype(np.float32),
        leads=("ML2", "V5x"),
        fs=250.0,
    )
    fig = plot_ecg_paper(rec, None, seconds=8.0, dpi=40)
    assert "ML2" in _labels(fig)


def test_delineation_of_other_leads_is_rejected(record: Record) -> None:
    delineation = delineate_record(record)
    two = Record(name="two", signal=record.signal[:2], leads=record.leads[:2], fs=record.fs)
    with pytest.raises(ValueError, match="leads"):
        plot_ecg_paper(two, delineation)
    with pytest.raises(ValueError, match="seconds"):
        plot_ecg_paper(two, None, seconds=0)


def _traces(fig) -> list:
    return [line for line in fig.axes[0].get_lines() if str(line.get_gid()).startswith("trace:")]


def _data_box(ax, artist) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) in mm of what an artist is clipped to (a rectangle becomes a clip box)."""
    path = artist.get_clip_path()
    box = path.get_fully_transformed_path().get_extents() if path is not None else artist.get_clip_box()
    (x0, y0), (x1, y1) = ax.transData.inverted().transform([[box.x0, box.y0], [box.x1, box.y1]])
    return x0, y0, x1, y1


def test_high_voltage_traces_stay_inside_their_cells(cinc_dir: Path, tmp_path: Path) -> None:
    """JS20006 (V3-V5 R/S waves beyond +-1.75 mV) drawn at twice its voltage: every trace is clipped to its cell."""
    original = read_record(cinc_dir / "JS20006")
    loud = Record(name="loud", signal=original.signal * 2, leads=original.leads, fs=original.fs)
    fig = plot_ecg_paper(loud, delineate_record(loud), path=tmp_path / "loud.png", dpi=60)
    ax = fig.axes[0]
    layout = {(c.lead, c.row, c.column): c for c in cells(loud.leads, loud.fs, loud.num_samples, 10.0)}
    traces = _traces(fig)
    assert len(traces) == 13  # 12 panels + rhythm strip
    overflowing = 0
    for line in traces:
        _, lead, row, column = line.get_gid().split(":")
        cell = layout[(lead, int(row), int(column))]
        x0, y0, x1, y1 = _data_box(ax, line)
        assert x0 == pytest.approx(cell.x0, abs=0.01) and x1 == pytest.approx(cell.x0 + cell.width, abs=0.01)
        assert y0 == pytest.approx(cell.y0, abs=0.01) and y1 == pytest.approx(cell.y0 + cell.height, abs=0.01)
        ys = np.asarray(line.get_ydata())
        overflowing += int(ys.max() > y1 or ys.min() < y0)
    assert overflowing >= 3  # the data does leave the cells: the clip is what keeps them apart
    # the cells of one row never overlap the next row's
    rows = sorted({(c.y0, c.y0 + c.height) for c in layout.values()})
    assert all(a[1] <= b[0] + 1e-9 for a, b in itertools.pairwise(rows))
    # every mark is clipped to a cell too (not just to the whole page)
    for line in _marker_lines(fig):
        x0, y0, x1, y1 = _data_box(ax, line)
        assert y1 - y0 == pytest.approx(ROW_MM, abs=0.01)


def test_labels_on_top_readable_marks_and_title(record: Record) -> None:
    fig = plot_ecg_paper(record, delineate_record(record), dpi=150)
    traces = _traces(fig)
    labels = [t for t in fig.axes[0].texts if t.get_text() in TWELVE_LEADS]
    assert len(labels) == 13
    for label in labels:
        assert label.zorder > max(line.zorder for line in traces)
        assert label.get_bbox_patch() is not None and label.get_bbox_patch().get_facecolor()[:3] == (1.0, 1.0, 1.0)
    for line in _marker_lines(fig):
        assert line.get_markersize() * 150 / 72 >= 10  # at least 10 px across at 150 dpi
    title = " ".join(t.get_text() for t in fig.axes[0].texts)
    assert record.name in title and "500 Hz" in title
    assert f"age {record.age:g}" in title and str(record.sex) in title
    assert record.labels and all(code not in title for code in record.labels if diagnoses_text([code]) != code)


def test_diagnoses_by_name() -> None:
    assert diagnoses_text(["164889003", "426783006"]) == "AF, NSR"
    assert diagnoses_text(["59118001", "713427006"]) == "RBBB"  # equivalent codes, one class
    assert diagnoses_text(["55827005"]) == "55827005"  # unscored code kept as a code
    assert diagnoses_text([]) == "none given"


def test_mains_hum_is_filtered_from_the_trace(record: Record) -> None:
    """0.3 mV of 50 or 60 Hz added to every lead is gone from the drawn rhythm strip; the QRS amplitude stays."""
    t = np.arange(record.num_samples) / record.fs

    def strip(rec: Record) -> np.ndarray:
        lines = [line for line in _traces(plot_ecg_paper(rec, None, dpi=40)) if line.get_gid() == "trace:II:3:0"]
        return np.asarray(lines[0].get_ydata()) / 10.0  # mm -> mV (offset cancels in differences)

    clean = strip(record)
    inner = slice(int(0.6 * record.fs), len(clean) - int(0.6 * record.fs))  # the filters' edge transients settle
    for mains in (50.0, 60.0):
        hum = 0.3 * np.sin(2 * np.pi * mains * t + 0.3)
        noisy = strip(
            Record(name="hum", signal=(record.signal + hum).astype(np.float32), leads=record.leads, fs=record.fs)
        )
        residual = np.abs(noisy - clean)
        assert residual[inner].max() < 0.03  # a tenth of the hum amplitude, over 8.8 of the 10 s
        assert residual.max() < 0.25  # near the ends (first and last 0.6 s), still less than the 0.3 mV hum
        assert np.ptp(noisy[inner]) == pytest.approx(np.ptp(clean[inner]), rel=0.05)
