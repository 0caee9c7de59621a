"""``ecg-classify --report DIR``: each record's figure as a PNG and one self-contained HTML page.

The figure is the one ``ecg-report record`` draws (ECG paper with the delineation, the predicted
classes and where the network looked, :func:`ecgreport.record.record_figure`); the page adds each
record's classes, measurements, notes and, for a long record, which segments carry which class.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ecgclassify.api import MEASUREMENTS, Classifier, Result
from ecgclassify.windows import clock
from ecgio.files import atomic_write
from ecgio.record import Record

log = logging.getLogger(__name__)
DPI = 100


def record_of(result: Result) -> Record:
    """The classified signal as a :class:`~ecgio.record.Record` of the leads the input had (zero-filled
    leads are left out, as the figure shows what was recorded)."""
    rows = [i for i, lead in enumerate(result.model_leads) if lead in result.input_leads]
    assert result.signal is not None
    return Record(
        name=result.record,
        signal=result.signal[rows],
        leads=tuple(result.model_leads[i] for i in rows),
        fs=result.fs,
        age=result.age,
        sex=result.sex,
    )


def record_figure(classifier: Classifier, result: Result) -> Any:
    """The explanation figure of a record classified whole."""
    from ecgreport.explain import explain_record
    from ecgreport.record import record_figure as draw
    from ecgsignal.cli import delineate_record

    record = record_of(result)
    predictor, _ = classifier.predictor(result.input_leads)
    explanation = explain_record(predictor, record)
    delineation = delineate_record(record, predictor.config)
    return draw(explanation, record, delineation, type(predictor.network).__name__, dpi=DPI)


def _section(classifier: Classifier, result: Result, folder: Path) -> str:
    from ecgplot.ecg_paper import save_figure
    from ecgreport.html import figure_html, table_html

    parts = [f"<h2>{html.escape(result.record)}</h2>"]
    parts.append(
        f"<p>{result.duration_s:.1f} s at {result.fs:g} Hz, leads {html.escape(' '.join(result.input_leads))};"
        f" the {html.escape('-'.join(result.model_leads))} network.</p>"
    )
    parts += [f"<p>Note: {html.escape(note)}</p>" for note in result.notes]
    if result.signal is not None:
        try:
            fig = record_figure(classifier, result)
            save_figure(fig, folder / f"{_safe(result.record)}.png", DPI)
            parts.append(figure_html(fig, f"{result.record}: ECG paper, delineation and predicted classes.", DPI))
        except Exception as error:  # a figure that cannot be drawn is reported, the page goes on
            log.error("%s: figure failed: %s", result.record, error)
            parts.append(f'<p class="error">{html.escape(f"{result.record}: figure failed: {error}")}</p>')
    rows = [[label, "n/a" if result.measurements.get(name) is None else f"{result.measurements[name]:.4g}", unit]
            for name, unit, label in MEASUREMENTS]  # fmt: skip
    parts.append(table_html(["measurement", "value", "unit"], rows))
    diagnoses = sorted(result.diagnoses, key=lambda d: -d.probability)
    parts.append(
        table_html(
            ["abbreviation", "name", "code", "probability", "threshold", "decision"],
            [
                [d.abbreviation, d.name, d.code, d.probability, d.threshold, "yes" if d.decision else ""]
                for d in diagnoses
            ],
        )
    )
    if result.summary:
        rows = [[s["label"], s["segments"], f"{s['share']:.0%}", ", ".join(f"{clock(a)}-{clock(b)}" for a, b in s["episodes"])]
                for s in result.summary]  # fmt: skip
        parts.append(table_html(["class", "segments", "share", "episodes (h:mm:ss)"], rows))
    return "\n".join(parts)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "record"


def write_report(classifier: Classifier, results: Sequence[Result], folder: str | Path) -> Path:
    """Write ``folder/<record>.png`` for each record classified whole and ``folder/index.html``; returns the page."""
    from ecgreport.html import SCRIPT, STYLE

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    title = f"ecg-classify: {len(results)} record(s), model {classifier.model_dir.name}"
    body = "\n".join(_section(classifier, result, folder) for result in results)
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body><h1>{html.escape(title)}</h1>\n"
        f'{body}\n<p id="figure-count"></p><script>{SCRIPT}</script></body></html>\n'
    )
    path = folder / "index.html"
    atomic_write(path, page.encode())
    return path


__all__ = ["record_figure", "record_of", "write_report"]
