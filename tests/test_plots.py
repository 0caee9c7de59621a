"""ECG-paper plots: PNG written at the paper size, 12- and 2-lead records, fiducial marks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from ecgio import Record, read_record
from ecgsignal.cli import delineate_record
from plots.ecg_paper import CAL_MM, MARGIN_MM, MM_PER_SECOND, STANDARD_LAYOUT, panel_layout, plot_ecg_paper


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
    assert image.shape[:2] == (round(height), round(width))
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
