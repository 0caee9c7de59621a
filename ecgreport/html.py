"""One self-contained HTML page for a model folder and, optionally, an evaluation run and some records.

Why one file with the images inside (base64 PNG): it is mailed, attached to an issue or opened
from a laptop's downloads without a server or the folders it came from. No external script, font
or style sheet is referenced. A few lines of inline script count the figures the browser
actually decoded and write the count into the page (``data-figures-shown`` on ``<body>`` and a
line at the bottom), so a headless browser can check the page shows its figures.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ecgio.files import atomic_write

log = logging.getLogger(__name__)

STYLE = """
body { font-family: sans-serif; max-width: 1200px; margin: 1em auto; padding: 0 1em; color: #222; }
figure { margin: 1.5em 0; } img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #555; } table { border-collapse: collapse; font-size: 0.9em; }
td, th { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; } th { background: #f3f3f3; }
td:first-child, th:first-child { text-align: left; } .error { color: #b00020; }
"""
SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.querySelectorAll("figure img"));
  var shown = images.filter(function (img) { return img.complete && img.naturalWidth > 0; }).length;
  document.body.setAttribute("data-figures-shown", String(shown));
  document.getElementById("figure-count").textContent = shown + " of " + images.length + " figures shown";
});
"""


def png_base64(fig: Figure, dpi: int) -> str:
    """The figure as base64 PNG text (for a ``data:`` URI)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def figure_html(fig: Figure, caption: str, dpi: int) -> str:
    alt = html.escape(caption, quote=True)
    return (
        f'<figure><img alt="{alt}" src="data:image/png;base64,{png_base64(fig, dpi)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def table_html(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "n/a" if math.isnan(value) else f"{value:.3f}"
        return html.escape(str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def training_section(model_dir: str | Path, dpi: int) -> str:
    from ecgreport.training import read_models, training_figure

    models = read_models(model_dir)
    rows = []
    for key, entry in models.items():
        validation = entry.get("validation", {})
        rows.append(
            [
                f"{len(entry.get('leads', []))} ({key})",
                entry.get("best_epoch", ""),
                len(entry.get("history", [])),
                *(float(validation.get(name, math.nan)) for name in ("challenge_metric", "auroc", "f_measure")),
            ]
        )
    table = table_html(["leads", "chosen epoch", "epochs run", "val. Challenge", "val. AUROC", "val. F"], rows)
    caption = (
        "Training loss and validation Challenge metric per epoch (ring: chosen epoch); tuned thresholds per class."
    )
    return f"<h2>Training</h2>{table}{figure_html(training_figure(models), caption, dpi)}"


def evaluation_section(label_folder: str | Path, output_folder: str | Path, dpi: int) -> str:
    from ecgreport.evaluation import figures, load_evaluation, sources
    from ecgscore.classes import WEIGHTS_FILE, read_weights
    from ecgscore.files import score_arrays

    data = load_evaluation(label_folder, output_folder)
    classes, weights = read_weights(WEIGHTS_FILE)
    groups = {"all": np.arange(len(data.names)), **sources(data.names)}
    rows = []
    for name, indices in groups.items():
        subset = data.subset(indices)
        s = score_arrays(subset.labels, subset.binary, subset.scalar, weights, classes)
        rows.append([name, len(indices), s.auroc, s.auprc, s.accuracy, s.f_measure, s.challenge_metric])
    table = table_html(["records", "n", "AUROC", "AUPRC", "Accuracy", "F-measure", "Challenge metric"], rows)
    captions = {
        "class_scores.png": "AUROC, AUPRC and F-measure per class; n/a where the class has no positives.",
        "curves.png": "ROC and precision-recall curves of the most frequent classes.",
        "confusion_counts.png": "True positives, false negatives and false positives per class.",
        "challenge_matrix.png": "The Challenge's normalised confusion matrix (rows: labels, columns: outputs).",
    }
    parts = [figure_html(fig, captions[name], dpi) for name, fig in figures(data, "", dpi).items()]
    where = html.escape(f"{label_folder} scored against {output_folder}")
    return f"<h2>Evaluation</h2><p>{where}</p>{table}{''.join(parts)}"


def records_section(model_dir: str | Path, records: Sequence[str | Path], dpi: int) -> str:
    """One explanation figure per record; a record that fails is reported in the page, not fatal."""
    from ecgreport.record import explain_to_png

    parts = []
    for record in records:
        try:
            fig = explain_to_png(model_dir, record)
        except (ValueError, OSError, RuntimeError) as error:
            log.error("%s: %s", record, error)
            parts.append(f'<p class="error">{html.escape(f"{record}: {error}")}</p>')
            continue
        caption = f"{Path(record).name}: ECG paper with delineation, predicted classes and where the network looked."
        parts.append(figure_html(fig, caption, dpi))
    return "<h2>Records</h2>" + "".join(parts)


def build_report(
    model_dir: str | Path,
    label_folder: str | Path | None = None,
    output_folder: str | Path | None = None,
    records: Sequence[str | Path] = (),
    dpi: int = 100,
) -> str:
    """The page as text: training always, evaluation when both folders are given, then the records."""
    if (label_folder is None) != (output_folder is None):
        raise ValueError("give both the label folder and the output folder for the evaluation, or neither")
    title = f"ecg-leads report: {Path(model_dir).resolve().name}"
    sections = [training_section(model_dir, dpi)]
    if label_folder is not None and output_folder is not None:
        sections.append(evaluation_section(label_folder, output_folder, dpi))
    if records:
        sections.append(records_section(model_dir, records, dpi))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body><h1>{html.escape(title)}</h1>\n" + "\n".join(sections) + "\n"
        f'<p id="figure-count"></p><script>{SCRIPT}</script></body></html>\n'
    )


def write_report(path: str | Path, model_dir: str | Path, **options: Any) -> Path:
    """Build the page (see :func:`build_report`) and write it atomically; returns the path."""
    atomic_write(path, build_report(model_dir, **options))
    log.info("wrote %s", path)
    return Path(path)


__all__ = ["build_report", "figure_html", "png_base64", "write_report"]
