"""Why a record got its labels, on one page: ECG paper with marks and attribution, classes, measurements.

The left of the page is the ECG paper of :mod:`ecgplot.ecg_paper` with the delineation marks and,
shaded in orange behind each trace, where the network's explained class drew its evidence
(:mod:`ecgreport.explain`). The right column lists the classes a reader needs to judge the call:
every predicted class, every class in the record's ``#Dx``, then the most probable others, each
with its probability, its decision threshold and whether the header lists it. Below it are the
measurements a clinician reads first (heart rate, PR, QRS, QT/QTc, frontal QRS axis), flagged
against the usual adult limits: HR 60-100 bpm, PR 120-200 ms, QRS < 120 ms, QTc at most 450 ms
(men) / 460 ms (women), axis -30 to +90 degrees. QTc is given by Bazett (what most machines
print) and by Fridericia, since Bazett overcorrects at fast rates and a tachycardia would
otherwise always read "long QT".
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ecgplot.ecg_paper import SHADING_RGB, draw_ecg_paper, paper_size_mm, save_figure
from ecgreport.explain import Explanation, shading
from ecgscore.classes import ABBREVIATIONS, labels_to_targets
from ecgsignal.features import FEATURE_NAMES

SIDE_MM = 95.0
#: How many classes the side panel lists at most.
MAX_CLASSES = 12


def _feature(explanation: Explanation, name: str) -> float:
    index = FEATURE_NAMES.index(name)
    present = bool(explanation.prepared.feature_present[index])
    return float(explanation.prepared.features[index]) if present else math.nan


def _flag(value: float, low: float | None, high: float | None, below: str, above: str) -> str:
    if math.isnan(value):
        return ""
    if low is not None and value < low:
        return f"  {below}"
    if high is not None and value > high:
        return f"  {above}"
    return ""


def measurements(explanation: Explanation, sex: str | None) -> list[tuple[str, str]]:
    """(label, value text) rows: HR, PR, QRS, QT/QTc, axis, P waves; missing values as an em dash."""
    hr = _feature(explanation, "heart_rate")
    pr = _feature(explanation, "pr_interval")
    qrs = _feature(explanation, "qrs_duration")
    qt = _feature(explanation, "qt_interval")
    qtc = _feature(explanation, "qtc_bazett")
    qtc_f = _feature(explanation, "qtc_fridericia")
    axis = _feature(explanation, "qrs_axis")
    p_presence = _feature(explanation, "p_presence")
    qtc_limit = 460.0 if sex == "Female" else 450.0

    def number(value: float, unit: str, signed: bool = False) -> str:
        if math.isnan(value):
            return "—"
        return f"{value:+.0f}{unit}" if signed else f"{value:.0f} {unit}"

    qt_text = "—" if math.isnan(qt) else f"{qt:.0f} / {number(qtc, 'ms')}"
    return [
        ("Heart rate", number(hr, "bpm") + _flag(hr, 60, 100, "(brady)", "(tachy)")),
        ("PR", number(pr, "ms") + _flag(pr, 120, 200, "(short)", "(long)")),
        ("QRS", number(qrs, "ms") + _flag(qrs, None, 119.5, "", "(wide)")),
        ("QT / QTc (Bazett)", qt_text + _flag(qtc, None, qtc_limit, "", "(long)")),
        ("QTc (Fridericia)", number(qtc_f, "ms") + _flag(qtc_f, None, qtc_limit, "", "(long)")),
        ("QRS axis", number(axis, "°", signed=True) + _flag(axis, -30, 90, "(left)", "(right)")),
        ("P waves", "—" if math.isnan(p_presence) else f"{100 * p_presence:.0f} % of beats"),
    ]


def listed_classes(explanation: Explanation, labels: tuple[str, ...]) -> list[int]:
    """Predicted classes, then the header's classes, then the most probable others (at most MAX_CLASSES)."""
    truth = np.flatnonzero(labels_to_targets(labels))
    order = list(np.argsort(-explanation.probabilities, kind="stable"))
    chosen: list[int] = []
    for k in [*explanation.predicted, *truth, *order]:
        if int(k) not in chosen:
            chosen.append(int(k))
    keep = max(MAX_CLASSES, len(set(explanation.predicted) | set(truth)))
    return chosen[:keep]


def _class_panel(ax: Any, explanation: Explanation, labels: tuple[str, ...]) -> None:
    rows = listed_classes(explanation, labels)
    truth = labels_to_targets(labels)
    y = np.arange(len(rows))[::-1]
    probabilities = explanation.probabilities[rows]
    predicted = probabilities >= explanation.thresholds[rows]
    colours = ["#1f5fd6" if p else "#b0b0b0" for p in predicted]
    ax.barh(y, probabilities, color=colours, height=0.7)
    for yi, k in zip(y, rows):
        ax.plot([explanation.thresholds[k]] * 2, [yi - 0.45, yi + 0.45], color="black", linewidth=1.4)
    names = [f"{ABBREVIATIONS[k]}{'  (Dx)' if truth[k] else ''}" for k in rows]
    ax.set_yticks(y, names, fontsize=7)
    for tick, k in zip(ax.get_yticklabels(), rows):
        if k == explanation.target and explanation.method != "attention":  # attention is not per class
            tick.set_bbox({"facecolor": SHADING_RGB, "alpha": 0.6, "edgecolor": "none", "pad": 1.0})
        if truth[k]:
            tick.set_fontweight("bold")
    for yi, p in zip(y, probabilities):
        ax.text(1.04, yi, f"{p:.2f}", va="center", fontsize=6.5)
    ax.set_xlim(0, 1.15)
    ax.set_xticks([0, 0.5, 1.0])
    ax.tick_params(axis="x", labelsize=6)
    ax.set_title(
        "Classes: bar = probability, | = threshold\nblue = predicted, (Dx) = in the header", fontsize=7, loc="left"
    )
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _text_panel(ax: Any, explanation: Explanation, record: Any, architecture: str) -> None:
    ax.set_axis_off()
    lines = [(label, value) for label, value in measurements(explanation, record.sex)]
    y = 1.0
    ax.text(0.0, y, "Measurements (wavelet delineation; adult limits)", fontsize=7.5, fontweight="bold", va="top")
    for label, value in lines:
        y -= 0.09
        ax.text(0.0, y, label, fontsize=7, va="top")
        ax.text(0.52, y, value, fontsize=7, va="top", fontweight="bold" if "(" in value else "normal")
    y -= 0.14
    target = ABBREVIATIONS[explanation.target]
    missing = [lead for lead in explanation.leads if lead not in record.leads]
    note = (
        f"Orange: |{explanation.method}| of the {target} logit\non the raw signal, "
        f"{len(explanation.leads)}-lead {architecture} network."
    )
    if explanation.method == "attention":
        note = (
            f"Orange: attention weights of the raw branch over time\n(the same for every lead and class), "
            f"{len(explanation.leads)}-lead {architecture}."
        )
    if not explanation.uses_signal:
        note = f"This {architecture} network does not use the raw\nsignal: no attribution to shade."
    if missing:
        note += f"\nLeads {', '.join(missing)} absent: fed as zero."
    unused = [lead for lead in record.leads if lead not in explanation.leads]
    if unused:
        note += f"\nLeads {', '.join(unused)} not used by this network."
    ax.text(0.0, y, note, fontsize=6.5, va="top", color="#444444")


def record_figure(
    explanation: Explanation,
    record: Any,
    delineation: Any = None,
    architecture: str = "",
    seconds: float = 10.0,
    dpi: int = 150,
) -> Figure:
    """The one-page explanation of ``record`` (an :class:`ecgio.Record`)."""
    paper_w, paper_h = paper_size_mm(seconds)
    width, height = paper_w + SIDE_MM, paper_h
    fig = Figure(figsize=(width / 25.4, height / 25.4), dpi=dpi)
    paper = fig.add_axes((0.0, 0.0, paper_w / width, 1.0))
    shade = shading(explanation, record.leads, record.signal.shape[1], float(record.fs))
    draw_ecg_paper(paper, record, delineation, seconds, shade if explanation.uses_signal else None)
    left = (paper_w + 22.0) / width
    classes = fig.add_axes((left, 0.42, (SIDE_MM - 28.0) / width, 0.5))
    _class_panel(classes, explanation, tuple(record.labels))
    text = fig.add_axes((left - 14.0 / width, 0.02, (SIDE_MM - 10.0) / width, 0.32))
    _text_panel(text, explanation, record, architecture)
    return fig


def explain_to_png(
    model_dir: str | Path,
    record_path: str | Path,
    output: str | Path | None = None,
    target: str | None = None,
    seconds: float = 10.0,
    dpi: int = 150,
    method: str = "integrated gradients",
) -> Figure:
    """Load the model for the record's leads, explain the record and draw it; save to ``output`` when given.

    ``target``: a class abbreviation (``AF``) or SNOMED CT code to explain instead of the top
    predicted class; ``method``: one of :data:`ecgreport.explain.METHODS`.
    """
    from ecgio import read_record
    from ecgreport.explain import explain_record
    from ecgserve.predictor import load_predictor
    from ecgsignal.records import delineate_record

    record = read_record(record_path)
    predictor = load_predictor(model_dir, record.leads)
    index = None if target is None else class_index(target, predictor.classes)
    explanation = explain_record(predictor, record, target=index, method=method)
    architecture = type(predictor.network).__name__
    fig = record_figure(explanation, record, delineate_record(record, predictor.config), architecture, seconds, dpi)
    if output is not None:
        save_figure(fig, output, dpi)
    return fig


def class_index(name: str, classes: tuple[str, ...]) -> int:
    """Index of a class given by abbreviation or code; ValueError listing the abbreviations otherwise."""
    from ecgscore.classes import scored_classes

    if name in ABBREVIATIONS:
        return ABBREVIATIONS.index(name)
    for index, members in enumerate(scored_classes()):
        if name in members:
            return index
    if name in classes:
        return classes.index(name)
    raise ValueError(f"unknown class {name!r}; use a code or one of {', '.join(ABBREVIATIONS)}")


__all__ = ["class_index", "explain_to_png", "listed_classes", "measurements", "record_figure"]
