"""How training went: loss, validation metric, chosen epoch and thresholds of every lead set of a model folder.

Everything comes from the folder's ``manifest.json`` (``models[<lead set>]`` holds ``history``,
one row per epoch with ``loss`` and the validation ``challenge_metric``/``auroc``/``f_measure``,
``best_epoch`` and the 26 tuned ``thresholds``), so the plot needs no weights and no data: it can
be drawn for any finished or interrupted run. Three panels: training loss per epoch, validation
Challenge metric per epoch with the chosen epoch ringed, and the thresholds per class.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ecgscore.classes import ABBREVIATIONS

MANIFEST = "manifest.json"
#: Largest manifest read (a manifest is a few hundred KB at most).
MAX_MANIFEST_BYTES = 50_000_000


def read_models(model_dir: str | Path) -> dict[str, dict[str, Any]]:
    """The ``models`` part of a model folder's manifest; ValueError naming the file when it is unusable."""
    from ecgio.errors import RecordError
    from ecgio.files import contained_file

    try:
        path = contained_file(model_dir, MANIFEST, max_bytes=MAX_MANIFEST_BYTES)
        manifest = json.loads(path.read_text())
    except RecordError as error:
        raise ValueError(str(error)) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{Path(model_dir) / MANIFEST}: cannot read the manifest ({error})") from None
    models = manifest.get("models") if isinstance(manifest, dict) else None
    if not isinstance(models, dict) or not models:
        raise ValueError(f"{Path(model_dir) / MANIFEST}: no trained lead sets under 'models'")
    return models


def _series(history: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [row for row in history if key in row and row[key] is not None]
    return np.array([row["epoch"] for row in rows], dtype=float), np.array([row[key] for row in rows], dtype=float)


def _member_histories(entry: dict[str, Any]) -> list[tuple[list[dict[str, Any]], Any]]:
    """(history, chosen epoch) of each network of a lead set: one for a single split, k for a k-fold
    ensemble (whose manifest keeps a list of histories and ``member_best_epochs``)."""
    history = entry.get("history") or []
    if history and isinstance(history[0], list):
        bests = entry.get("member_best_epochs") or [None] * len(history)
        return list(zip(history, bests))
    return [(history, entry.get("best_epoch"))]


def training_figure(models: dict[str, dict[str, Any]], title: str = "", dpi: int = 150) -> Figure:
    """Loss, validation Challenge metric (chosen epoch ringed) and thresholds, one colour per lead set."""
    fig = Figure(figsize=(11.0, 7.0), dpi=dpi, layout="constrained")
    grid = fig.add_gridspec(2, 2, height_ratios=(1.0, 0.9))
    loss_ax = fig.add_subplot(grid[0, 0])
    metric_ax = fig.add_subplot(grid[0, 1])
    threshold_ax = fig.add_subplot(grid[1, :])
    colours = [f"C{i}" for i in range(10)]
    x = np.arange(len(ABBREVIATIONS))
    offsets = np.linspace(-0.2, 0.2, len(models)) if len(models) > 1 else np.zeros(1)
    for index, (key, entry) in enumerate(models.items()):
        colour = colours[index % len(colours)]
        leads = list(entry.get("leads", []))
        label = f"{len(leads)} leads" + (f" ({key})" if len(leads) < 12 else "")
        for member, (history, best) in enumerate(_member_histories(entry)):
            member_label = label if member == 0 else None
            epochs, loss = _series(history, "loss")
            loss_ax.plot(epochs, loss, marker="o", markersize=3, color=colour, label=member_label)
            epochs, metric = _series(history, "challenge_metric")
            metric_ax.plot(epochs, metric, marker="o", markersize=3, color=colour, label=member_label)
            if isinstance(best, int) and best in epochs:
                value = float(metric[list(epochs).index(best)])
                metric_ax.plot(
                    [float(best)], [value], marker="o", markersize=11, markerfacecolor="none", color=colour, mew=1.6
                )
        thresholds = np.asarray(entry.get("thresholds", []), dtype=float)
        if thresholds.size == x.size:
            threshold_ax.scatter(x + offsets[index], thresholds, s=14, color=colour, label=label)
    loss_ax.set(xlabel="epoch", ylabel="training loss (weighted BCE)", title="Training loss")
    metric_ax.set(xlabel="epoch", ylabel="Challenge metric", title="Validation Challenge metric (ring = chosen epoch)")
    threshold_ax.set(ylabel="decision threshold", title="Tuned thresholds per class", ylim=(0, 1))
    threshold_ax.set_xticks(x, ABBREVIATIONS, rotation=60, ha="right", rotation_mode="anchor", fontsize=8)
    for edge in x[:-1] + 0.5:  # class boundaries, so each dot reads against its own class
        threshold_ax.axvline(edge, color="#dddddd", linewidth=0.6, zorder=0)
    threshold_ax.set_xlim(-0.6, len(ABBREVIATIONS) - 0.4)
    threshold_ax.axhline(0.5, color="#999999", linewidth=0.8, linestyle="--")
    for ax in (loss_ax, metric_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    threshold_ax.grid(alpha=0.3, axis="y")
    metric_ax.legend(fontsize=8)
    threshold_ax.legend(fontsize=8, loc="upper right")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def training_to_png(model_dir: str | Path, output: str | Path | None = None, dpi: int = 150) -> Figure:
    """Draw the training curves of a model folder; save a PNG to ``output`` when given."""
    from ecgplot.ecg_paper import save_figure

    models = read_models(model_dir)
    fig = training_figure(models, f"Training of {Path(model_dir).resolve().name}", dpi)
    if output is not None:
        save_figure(fig, output, dpi)
    return fig


__all__ = ["read_models", "training_figure", "training_to_png"]
