"""How each class scores: per-class bars, ROC and PR curves, confusion counts and the Challenge matrix.

The official scorer prints five numbers and three rows of 26; with 26 classes of very different
prevalence a reader needs to see which classes carry the score. Figures, all from the same
arrays the scorer uses (:mod:`ecgscore.metric`, so they agree with ``scores.csv`` to the digit):

* ``class_scores.png``: AUROC, AUPRC and F-measure per class (number of positives on the axis);
* ``curves.png``: ROC and precision-recall curves of the classes that have positives;
* ``confusion_counts.png``: TP, FN, FP per class (TN left out: it dwarfs the rest);
* ``challenge_matrix.png``: the Challenge's normalised confusion matrix A (rows = labels,
  columns = outputs, each recording spread as 1/n over its labels and outputs) as a heat map.

With records from more than one known source (:func:`ecgdata.index.source_of`), the per-class
scores and confusion counts are written again per source under ``by_source/<source>/`` (which
classes a source's records carry, and how they fare there; curves and the 26 x 26 matrix of a
few records per source add little and cost the most drawing time).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ecgscore.classes import ABBREVIATIONS

log = logging.getLogger(__name__)

FIGURES = ("class_scores.png", "curves.png", "confusion_counts.png", "challenge_matrix.png")
#: The figures drawn again for each source.
SOURCE_FIGURES = ("class_scores.png", "confusion_counts.png")


@dataclass(frozen=True)
class EvaluationData:
    """Labels and outputs of N recordings over the 26 scored classes, as the scorer reads them."""

    names: tuple[str, ...]
    labels: np.ndarray  # (N, C) bool
    binary: np.ndarray  # (N, C) bool
    scalar: np.ndarray  # (N, C) float

    def subset(self, rows: np.ndarray) -> EvaluationData:
        return EvaluationData(
            tuple(self.names[i] for i in rows), self.labels[rows], self.binary[rows], self.scalar[rows]
        )


def load_evaluation(label_folder: str | Path, output_folder: str | Path) -> EvaluationData:
    """Read headers and output files exactly as :func:`ecgscore.files.evaluate` does."""
    from ecgscore.classes import WEIGHTS_FILE, read_weights
    from ecgscore.files import find_label_and_output_files, load_labels, read_output_table

    classes, _ = read_weights(WEIGHTS_FILE)
    label_files, output_files = find_label_and_output_files(label_folder, output_folder)
    labels = load_labels(label_files, classes)
    binary, scalar = read_output_table(output_files, classes)
    names = tuple(Path(path).stem for path in label_files)
    return EvaluationData(names, labels, binary, scalar)


def _suffix(label: str) -> str:
    return f", {label}" if label else ""


def per_class_scores(data: EvaluationData) -> dict[str, np.ndarray]:
    """AUROC, AUPRC, F-measure per class and the positive counts (NaN where undefined)."""
    from ecgscore.metric import auc, f_measure

    _, _, auroc, auprc = auc(data.labels, data.scalar)
    _, f_classes = f_measure(data.labels, data.binary)
    return {"AUROC": auroc, "AUPRC": auprc, "F-measure": f_classes, "positives": data.labels.sum(axis=0)}


def class_scores_figure(data: EvaluationData, label: str = "", dpi: int = 150) -> Figure:
    """Three bar panels (AUROC, AUPRC, F-measure) over the 26 classes; undefined values marked n/a."""
    scores = per_class_scores(data)
    fig = Figure(figsize=(12.0, 8.0), dpi=dpi, layout="constrained")
    axes = fig.subplots(3, 1, sharex=True)
    x = np.arange(len(ABBREVIATIONS))
    colours = {"AUROC": "#1f5fd6", "AUPRC": "#7b3fbf", "F-measure": "#129a3a"}
    for ax, key in zip(axes, ("AUROC", "AUPRC", "F-measure")):
        values = scores[key]
        defined = np.isfinite(values)
        ax.bar(x[defined], values[defined], color=colours[key], width=0.7)
        for xi in x[~defined]:
            ax.text(xi, 0.02, "n/a", ha="center", va="bottom", fontsize=7, color="#888888", rotation=90)
        for xi in x[defined & (values == 0)]:  # a score of 0 is a result, not a missing bar
            ax.text(xi, 0.02, "0", ha="center", va="bottom", fontsize=7, color=colours[key])
        macro = float(np.nanmean(values)) if defined.any() else float("nan")
        ax.axhline(macro, color="black", linewidth=0.9, linestyle="--")
        ax.set(ylim=(0, 1.05), ylabel=key)
        ax.set_title(f"{key} per class (dashed: macro mean {macro:.3f})", fontsize=10, loc="left")
        ax.grid(alpha=0.3, axis="y")
    labels = [f"{name}\n{int(n)}" for name, n in zip(ABBREVIATIONS, scores["positives"])]
    axes[-1].set_xticks(x, labels, fontsize=7.5)
    axes[-1].set_xlabel("class (number of positive recordings)")
    fig.suptitle(f"Per-class scores, {len(data.names)} recordings{_suffix(label)}", fontsize=11)
    return fig


def _roc_pr(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, ...]:
    """(FPR, TPR, recall, precision) with the scorer's thresholds: distinct scores, ties moving together."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    hits = labels[order].astype(float)
    last = np.r_[np.flatnonzero(np.diff(sorted_scores) != 0), len(scores) - 1]
    tp = np.r_[0.0, np.cumsum(hits)[last]]
    fp = np.r_[0.0, np.cumsum(1 - hits)[last]]
    positives, negatives = tp[-1], fp[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1e-12), 1.0)
    return fp / max(negatives, 1.0), tp / max(positives, 1.0), tp / max(positives, 1.0), precision


def curves_figure(data: EvaluationData, label: str = "", dpi: int = 150, max_classes: int = 10) -> Figure:
    """ROC and PR curves of the classes with positives and negatives (the ``max_classes`` most frequent)."""
    counts = data.labels.sum(axis=0)
    usable = [k for k in np.argsort(-counts, kind="stable") if 0 < counts[k] < len(data.names)]
    shown = usable[:max_classes]
    fig = Figure(figsize=(12.0, 5.5), dpi=dpi, layout="constrained")
    roc_ax, pr_ax = fig.subplots(1, 2)
    for i, k in enumerate(shown):
        fpr, tpr, recall, precision = _roc_pr(data.labels[:, k], data.scalar[:, k])
        colour = f"C{i % 10}"
        name = f"{ABBREVIATIONS[k]} (n={int(counts[k])})"
        roc_ax.plot(fpr, tpr, color=colour, label=name, linewidth=1.3)  # straight segments: the trapezoid AUROC
        # precision of each recall step drawn over the step, as the scorer's AUPRC sums it
        pr_ax.step(np.r_[0.0, recall[1:]], np.r_[precision[1], precision[1:]], color=colour, label=name, where="pre")
    roc_ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", linewidth=0.8)
    roc_ax.set(xlabel="false positive rate (1 - specificity)", ylabel="sensitivity", title="ROC", aspect="equal")
    pr_ax.set(xlabel="recall (sensitivity)", ylabel="precision (PPV)", title="Precision-recall", aspect="equal")
    for ax in (roc_ax, pr_ax):
        ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
    pr_ax.legend(fontsize=7.5, loc="center left", bbox_to_anchor=(1.02, 0.5))
    left_out = len(usable) - len(shown)
    note = f" ({left_out} rarer classes not drawn)" if left_out > 0 else ""
    fig.suptitle(f"Curves of the {len(shown)} most frequent classes{note}{_suffix(label)}", fontsize=11)
    return fig


def confusion_counts(data: EvaluationData) -> dict[str, np.ndarray]:
    """TP, FN, FP, TN per class."""
    labels, outputs = data.labels, data.binary
    return {
        "TP": (labels & outputs).sum(axis=0),
        "FN": (labels & ~outputs).sum(axis=0),
        "FP": (~labels & outputs).sum(axis=0),
        "TN": (~labels & ~outputs).sum(axis=0),
    }


def confusion_counts_figure(data: EvaluationData, label: str = "", dpi: int = 150) -> Figure:
    """Grouped bars of TP, FN and FP per class, with each bar's count written on it."""
    counts = confusion_counts(data)
    fig = Figure(figsize=(12.0, 4.8), dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(ABBREVIATIONS))
    colours = {"TP": "#129a3a", "FN": "#e07b00", "FP": "#d62020"}
    for i, key in enumerate(("TP", "FN", "FP")):
        bars = ax.bar(x + (i - 1) * 0.27, counts[key], width=0.27, color=colours[key], label=key)
        ax.bar_label(bars, [str(int(v)) if v else "" for v in counts[key]], fontsize=6)
    ax.set_xticks(x, ABBREVIATIONS, rotation=60, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set_ylabel("recordings")
    ax.legend(fontsize=8, title="TN not drawn", title_fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    ax.set_title(f"Confusion counts per class, {len(data.names)} recordings{_suffix(label)}", fontsize=11)
    return fig


def challenge_matrix_figure(data: EvaluationData, label: str = "", dpi: int = 150) -> Figure:
    """The Challenge's normalised confusion matrix A (labels x outputs) as an annotated heat map."""
    from ecgscore.classes import scoring_weights
    from ecgscore.metric import modified_confusion_matrix

    matrix = modified_confusion_matrix(data.labels, data.binary)
    weights = scoring_weights()
    fig = Figure(figsize=(10.5, 9.5), dpi=dpi, layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues", vmin=0.0, vmax=max(float(matrix.max()), 1e-9))
    n = len(ABBREVIATIONS)
    for j in range(n):
        for k in range(n):
            if matrix[j, k] > 0:
                dark = matrix[j, k] > 0.6 * matrix.max()
                ax.text(
                    k,
                    j,
                    f"{matrix[j, k]:.2f}" if matrix[j, k] < 1 else f"{matrix[j, k]:.1f}",
                    ha="center",
                    va="center",
                    fontsize=5,
                    color="white" if dark else "black",
                )
    for j in range(n):  # outline the diagonal: where an output matches a label
        ax.add_patch(Rectangle((j - 0.5, j - 0.5), 1, 1, fill=False, edgecolor="#d62020", linewidth=0.7))
    ax.set_xticks(np.arange(n), ABBREVIATIONS, rotation=90, fontsize=7.5)
    ax.set_yticks(np.arange(n), ABBREVIATIONS, fontsize=7.5)
    ax.set_xlabel("model output (red outline: output = label)")
    ax.set_ylabel("label (header #Dx)")
    fig.colorbar(image, ax=ax, shrink=0.8, label="recordings (each spread as 1/n over its labels and outputs)")
    score = float(np.nansum(weights * matrix))
    ax.set_title(
        f"Challenge confusion matrix A, {len(data.names)} recordings{_suffix(label)}, reward sum(W*A) = {score:.1f}",
        fontsize=11,
    )
    return fig


def sources(names: Sequence[str]) -> dict[str, np.ndarray]:
    """Row indices per known source (``unknown`` left out)."""
    from ecgdata.index import source_of

    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(source_of(name), []).append(i)
    return {source: np.array(rows) for source, rows in groups.items() if source != "unknown"}


def figures(
    data: EvaluationData, label: str = "", dpi: int = 150, names: tuple[str, ...] = FIGURES
) -> dict[str, Figure]:
    """The evaluation figures by file name (``names`` of :data:`FIGURES`); ``label`` goes into every title."""
    draw = {
        "class_scores.png": class_scores_figure,
        "curves.png": curves_figure,
        "confusion_counts.png": confusion_counts_figure,
        "challenge_matrix.png": challenge_matrix_figure,
    }
    return {name: draw[name](data, label, dpi) for name in names}


def write_evaluation_plots(
    label_folder: str | Path, output_folder: str | Path, plot_dir: str | Path, dpi: int = 120
) -> list[Path]:
    """Write the figures for the whole set (and per source when there are several); returns the files."""
    from ecgplot.ecg_paper import save_figure

    data = load_evaluation(label_folder, output_folder)
    plot_dir = Path(plot_dir)
    written = []
    groups = sources(data.names)
    sets: list[tuple[Path, EvaluationData, str, tuple[str, ...]]] = [(plot_dir, data, "", FIGURES)]
    if len(groups) > 1:
        sets += [
            (plot_dir / "by_source" / source, data.subset(rows), source, SOURCE_FIGURES)
            for source, rows in groups.items()
        ]
    for folder, subset, label, names in sets:
        for name, fig in figures(subset, label, dpi, names).items():
            save_figure(fig, folder / name, dpi)
            written.append(folder / name)
    log.info("wrote %d evaluation plots to %s", len(written), plot_dir)
    return written


__all__ = [
    "FIGURES",
    "SOURCE_FIGURES",
    "EvaluationData",
    "challenge_matrix_figure",
    "class_scores_figure",
    "confusion_counts",
    "confusion_counts_figure",
    "curves_figure",
    "figures",
    "load_evaluation",
    "per_class_scores",
    "sources",
    "write_evaluation_plots",
]
