"""The Challenge 2021 scorer: AUROC, AUPRC, accuracy, F-measure and the Challenge metric.

The numbers are the official scorer's (evaluation-2021 ``evaluate_model.py``) to the last bit
wherever its result does not depend on summation order, and where it does (the Challenge
metric's confusion matrix, the AUC sums) :func:`evaluate` adds in the official order, so the
printed digits always agree. The array-level functions are vectorised for training-time use:
:func:`challenge_metric` has a fast matrix-product path (``exact=False``, the default) for
threshold tuning, where the last bit does not matter.

Differences from the official scorer, all outside what it can read: labels written ``# Dx:``
(with a space) are read, ``weights.csv`` is found beside this package, and unreadable output
files raise an error naming the file.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scoring.classes import NORMAL_CLASS, WEIGHTS_FILE, class_name, read_weights

_DX_RE = re.compile(r"^#\s*Dx\s*:(.*)$", re.IGNORECASE)
_TRUE_STRINGS = frozenset({"True", "true", "T", "t"})


# ---------------------------------------------------------------------------------------------
# Array-level metrics
# ---------------------------------------------------------------------------------------------
def _nanmean_or_nan(values: np.ndarray) -> float:
    """``np.nanmean`` without its warning: NaN when no value is finite (as the official scorer)."""
    return float(np.nanmean(values)) if np.any(np.isfinite(values)) else float("nan")


def _sequential_sum(terms: np.ndarray) -> float:
    """Left-to-right sum starting from 0.0, the order of the official ``+=`` loop."""
    return float(np.cumsum(np.concatenate(([0.0], terms)))[-1])


def class_auc(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(AUROC, AUPRC) of one class with the official tie handling.

    Thresholds are the distinct scores, highest first, plus one above the maximum; at each,
    every recording scoring at least the threshold counts as positive (ties move together).
    AUROC is the trapezoid area of TNR over TPR, AUPRC the step area of PPV over TPR. No
    positives -> both NaN; no negatives -> AUROC NaN.
    """
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    num_positive = float(np.count_nonzero(labels))
    num_negative = float(labels.size - np.count_nonzero(labels))
    # Distinct values in descending order and, for each, how many positives/negatives score it.
    values, inverse = np.unique(scores, return_inverse=True)
    positives_at = np.bincount(inverse, weights=labels, minlength=values.size)[::-1]
    counts_at = np.bincount(inverse, minlength=values.size)[::-1].astype(np.float64)
    tp = np.concatenate(([0.0], np.cumsum(positives_at)))
    fp = np.concatenate(([0.0], np.cumsum(counts_at - positives_at)))
    fn = num_positive - tp
    tn = num_negative - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = tp / (tp + fn) if num_positive else np.full(tp.shape, np.nan)
        tnr = tn / (tn + fp) if num_negative else np.full(tp.shape, np.nan)
        ppv = np.where(tp + fp > 0, tp / np.where(tp + fp > 0, tp + fp, 1.0), np.nan)
    auroc = _sequential_sum(0.5 * (tpr[1:] - tpr[:-1]) * (tnr[1:] + tnr[:-1]))
    auprc = _sequential_sum((tpr[1:] - tpr[:-1]) * ppv[1:])
    return auroc, auprc


def auc(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Macro AUROC, macro AUPRC and their per-class arrays for (N, C) bool labels and float scores."""
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    _check_shapes(labels, scores)
    per_class = np.array([class_auc(labels[:, k], scores[:, k]) for k in range(labels.shape[1])], dtype=np.float64)
    per_class = per_class.reshape(labels.shape[1], 2)
    auroc, auprc = per_class[:, 0].copy(), per_class[:, 1].copy()
    return _nanmean_or_nan(auroc), _nanmean_or_nan(auprc), auroc, auprc


def accuracy(labels: np.ndarray, outputs: np.ndarray) -> float:
    """Fraction of recordings whose binary outputs equal their labels on every class."""
    labels = np.asarray(labels, dtype=bool)
    outputs = np.asarray(outputs, dtype=bool)
    _check_shapes(labels, outputs)
    if labels.shape[0] == 0:
        raise ValueError("accuracy of zero recordings is undefined")
    return float(np.count_nonzero(np.all(labels == outputs, axis=1))) / float(labels.shape[0])


def f_measure(labels: np.ndarray, outputs: np.ndarray) -> tuple[float, np.ndarray]:
    """Macro F-measure and per-class 2TP/(2TP+FP+FN) (NaN where the denominator is 0)."""
    labels = np.asarray(labels, dtype=bool)
    outputs = np.asarray(outputs, dtype=bool)
    _check_shapes(labels, outputs)
    tp = np.count_nonzero(labels & outputs, axis=0).astype(np.float64)
    fp = np.count_nonzero(~labels & outputs, axis=0).astype(np.float64)
    fn = np.count_nonzero(labels & ~outputs, axis=0).astype(np.float64)
    denominator = 2 * tp + fp + fn
    with np.errstate(divide="ignore", invalid="ignore"):
        per_class = np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1.0), np.nan)
    return _nanmean_or_nan(per_class), per_class


def modified_confusion_matrix(labels: np.ndarray, outputs: np.ndarray, exact: bool = True) -> np.ndarray:
    """The Challenge's (C, C) matrix: A[j, k] += 1/n for each label j and output k of a recording.

    ``n`` is the number of classes positive in the labels or the outputs of that recording (at
    least 1). ``exact=True`` adds recording by recording in file order, like the official loop,
    so the float result is bit-identical; ``exact=False`` is one matrix product.
    """
    labels = np.asarray(labels, dtype=bool)
    outputs = np.asarray(outputs, dtype=bool)
    _check_shapes(labels, outputs)
    normalization = np.maximum(np.count_nonzero(labels | outputs, axis=1), 1).astype(np.float64)
    weighted_outputs = outputs / normalization[:, None]
    if not exact:
        return labels.T.astype(np.float64) @ weighted_outputs
    matrix = np.zeros((labels.shape[1], labels.shape[1]))
    for j in range(labels.shape[1]):
        rows = np.flatnonzero(labels[:, j])
        if rows.size:  # cumsum adds strictly in recording order, as the official += loop
            matrix[j] = np.cumsum(weighted_outputs[rows], axis=0)[-1]
    return matrix


class ChallengeMetric:
    """The Challenge metric for fixed labels, fast for many output matrices (threshold tuning).

    ``nansum(W * A)`` with ``A = labels.T @ (outputs / n)`` equals
    ``sum_i rowsum((labels @ W0) * outputs)_i / n_i`` (``W0`` = weights with NaN as 0), so
    ``labels @ W0`` and the correct and inactive scores are computed once; each call is then a
    few (N, C) element-wise operations. Equal to the official value up to float rounding
    (|difference| ~ 1e-15); use :func:`challenge_metric` with ``exact=True`` for the bit-exact one.
    """

    def __init__(
        self,
        labels: np.ndarray,
        weights: np.ndarray,
        classes: Sequence[frozenset[str] | set[str] | str],
        normal_class: str = NORMAL_CLASS,
    ) -> None:
        self.labels = np.asarray(labels, dtype=bool)
        weights = np.asarray(weights, dtype=np.float64)
        if self.labels.ndim != 2 or weights.shape != (self.labels.shape[1],) * 2:
            raise ValueError(f"labels {self.labels.shape} and weights {weights.shape} do not fit")
        self.normal_index = _class_index(classes, normal_class)
        self._label_weights = self.labels.astype(np.float64) @ np.where(np.isnan(weights), 0.0, weights)
        inactive_outputs = np.zeros_like(self.labels)
        inactive_outputs[:, self.normal_index] = True
        self.correct = self.score(self.labels)
        self.inactive = self.score(inactive_outputs)

    def score(self, outputs: np.ndarray) -> float:
        """The unnormalised score ``nansum(W * A)`` of (N, C) bool outputs."""
        outputs = np.asarray(outputs, dtype=bool)
        _check_shapes(self.labels, outputs)
        normalization = np.maximum(np.count_nonzero(self.labels | outputs, axis=1), 1)
        return float(np.sum((self._label_weights * outputs).sum(axis=1) / normalization))

    def __call__(self, outputs: np.ndarray) -> float:
        """The normalised Challenge metric of (N, C) bool outputs."""
        if self.correct == self.inactive:
            return 0.0
        return (self.score(outputs) - self.inactive) / (self.correct - self.inactive)


def challenge_metric(
    labels: np.ndarray,
    outputs: np.ndarray,
    weights: np.ndarray,
    classes: Sequence[frozenset[str] | set[str] | str],
    normal_class: str = NORMAL_CLASS,
    exact: bool = False,
) -> float:
    """The normalised Challenge metric of (N, C) bool labels and outputs.

    (observed - inactive) / (correct - inactive), where each score is ``nansum(weights * A)``,
    "correct" outputs the labels and "inactive" outputs only the normal class; 0 when correct
    equals inactive. Raises ValueError when ``normal_class`` is not among ``classes``.
    ``exact=True`` reproduces the official float result bit for bit (slower); the default
    is the fast :class:`ChallengeMetric` formulation. For many output matrices with the same
    labels, build one :class:`ChallengeMetric` and call it.
    """
    if not exact:
        return ChallengeMetric(labels, weights, classes, normal_class)(outputs)
    labels = np.asarray(labels, dtype=bool)
    outputs = np.asarray(outputs, dtype=bool)
    weights = np.asarray(weights, dtype=np.float64)
    normal_index = _class_index(classes, normal_class)
    inactive_outputs = np.zeros_like(labels)
    inactive_outputs[:, normal_index] = True
    observed = np.nansum(weights * modified_confusion_matrix(labels, outputs))
    correct = np.nansum(weights * modified_confusion_matrix(labels, labels))
    inactive = np.nansum(weights * modified_confusion_matrix(labels, inactive_outputs))
    if correct == inactive:
        return 0.0
    return float(observed - inactive) / float(correct - inactive)


def _class_index(classes: Sequence[frozenset[str] | set[str] | str], code: str) -> int:
    for index, members in enumerate(classes):
        if (code == members) if isinstance(members, str) else (code in members):
            return index
    raise ValueError(f"the normal class {code} is not among the scored classes")


def _check_shapes(labels: np.ndarray, other: np.ndarray) -> None:
    if labels.ndim != 2 or labels.shape != other.shape:
        raise ValueError(f"labels {labels.shape} and outputs {other.shape} must be equal (N, C) arrays")


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------
def _files_under(folder: str | Path, suffix: str) -> list[str]:
    """Relative paths of the regular ``*suffix`` files under ``folder``, subfolders included (hidden files and
    folders skipped, as test_model skips them), sorted by their parts: flat folders sort by name, as the
    official scorer does."""
    found = []
    for root, folders, names in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in names:
            path = os.path.join(root, name)
            if name.lower().endswith(suffix) and not name.startswith(".") and os.path.isfile(path):
                found.append(os.path.relpath(path, folder))
    return sorted(found, key=lambda relative: Path(relative).parts)


def find_label_and_output_files(label_folder: str | Path, output_folder: str | Path) -> tuple[list[str], list[str]]:
    """Pairs (``D/X.hea`` under the label folder, ``D/X.csv`` under the output folder), matched by relative
    path, as test_model writes them for a data folder with subfolders; sorted by that path.

    Raises FileNotFoundError (an IOError) naming the missing output file, or when there are no
    label files at all, as the official scorer does.
    """
    label_files, output_files = [], []
    for relative in _files_under(label_folder, ".hea"):
        path = os.path.join(label_folder, relative)
        output_path = os.path.join(output_folder, os.path.splitext(relative)[0] + ".csv")
        if not os.path.isfile(output_path):
            raise FileNotFoundError(f"{output_path}: output file not found (for label file {path})")
        label_files.append(path)
        output_files.append(output_path)
    if not label_files:
        raise FileNotFoundError(f"No label or output files found (label folder {label_folder}).")
    return label_files, output_files


def unmatched_outputs(label_folder: str | Path, output_folder: str | Path) -> list[str]:
    """Output files (``D/X.csv``) with no label file ``D/X.hea``: not scored (as by the official scorer), but
    worth naming, since they usually mean a misplaced or stale output."""
    labels = {os.path.splitext(relative)[0] for relative in _files_under(label_folder, ".hea")}
    return [
        os.path.join(output_folder, relative)
        for relative in _files_under(output_folder, ".csv")
        if os.path.splitext(relative)[0] not in labels
    ]


def read_labels(header_text: str) -> set[str]:
    """The ``#Dx`` / ``# Dx`` codes of a header."""
    codes: set[str] = set()
    for line in header_text.splitlines():
        match = _DX_RE.match(line.strip())
        if match:
            codes.update(code.strip() for code in match.group(1).split(","))
    codes.discard("")
    return codes


def load_labels(label_files: Sequence[str], classes: Sequence[frozenset[str]]) -> np.ndarray:
    """(N, C) bool: label j of recording i is positive when its codes meet class j's codes."""
    code_to_classes: dict[str, list[int]] = {}
    for j, members in enumerate(classes):
        for code in members:
            code_to_classes.setdefault(code, []).append(j)
    labels = np.zeros((len(label_files), len(classes)), dtype=bool)
    for i, path in enumerate(label_files):
        with open(path, encoding="utf-8", errors="replace") as file:
            codes = read_labels(file.read())
        for code in codes:
            labels[i, code_to_classes.get(code, [])] = True
    return labels


def _parse_output_file(path: str) -> tuple[tuple[str, ...], list[str], list[str]]:
    """(class strings, binary strings, probability strings) of an output file, stripped."""
    try:
        with open(path, encoding="utf-8") as file:
            lines = file.readlines()
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: output file is not UTF-8 text (byte {error.start}: {error.reason})") from None
    if len(lines) < 4:
        raise ValueError(
            f"{path}: output file has {len(lines)} lines, expected at least 4 (#id, classes, labels, probabilities)"
        )
    entries = [[entry.strip() for entry in lines[i].split(",")] for i in (1, 2, 3)]
    return tuple(entries[0]), entries[1], entries[2]


def _binary_values(entries: list[str]) -> np.ndarray:
    """1.0 where an entry is a number equal to 1 or one of True/true/T/t, else 0.0."""
    try:  # the usual file: every entry a number
        return (np.array([float(entry) for entry in entries]) == 1).astype(np.float64)
    except ValueError:
        pass
    values = np.zeros(len(entries))
    for i, entry in enumerate(entries):
        if entry in _TRUE_STRINGS:
            values[i] = 1.0
        else:
            try:
                values[i] = 1.0 if float(entry) == 1 else 0.0
            except ValueError:
                values[i] = 0.0
    return values


def _scalar_values(entries: list[str]) -> np.ndarray:
    try:
        values = np.array([float(entry) for entry in entries], dtype=np.float64)
    except ValueError:
        values = np.array([_float_or_nan(entry) for entry in entries], dtype=np.float64)
    values[~np.isfinite(values)] = 0.0
    return values


def _float_or_nan(entry: str) -> float:
    try:
        return float(entry)
    except ValueError:
        return math.nan


@dataclass
class _ColumnMap:
    """How one output header (its class strings) maps onto the scored classes."""

    indicator: np.ndarray  # (num_columns, C) 1.0 where column k belongs to class j
    counts: np.ndarray  # (C,) matching columns per class
    needed: int  # highest column index that some class reads, + 1


def _column_map(output_classes: tuple[str, ...], classes: Sequence[frozenset[str]]) -> _ColumnMap:
    column_sets = [set(entry.split("|")) for entry in output_classes]
    indicator = np.array([[1.0 if members & column else 0.0 for members in classes] for column in column_sets])
    indicator = indicator.reshape(len(column_sets), len(classes))
    used = np.flatnonzero(indicator.any(axis=1))
    return _ColumnMap(indicator, indicator.sum(axis=0), int(used[-1]) + 1 if used.size else 0)


def read_output_table(output_files: Sequence[str], classes: Sequence[frozenset[str]]) -> tuple[np.ndarray, np.ndarray]:
    """(N, C) binary and scalar output arrays of many output files, mapped onto the scored classes.

    Named for what it returns, unlike ``helper_code.load_outputs`` (one file, the official tuple).
    Mapping as the official scorer does it:

    A class matched by several output columns (equivalent codes, ``a|b`` names, repeats) is
    positive if any of them is and scores the mean of their probabilities; unmatched classes
    are 0; extra columns are ignored.
    """
    num_classes = len(classes)
    binary = np.zeros((len(output_files), num_classes), dtype=bool)
    scalar = np.zeros((len(output_files), num_classes), dtype=np.float64)
    maps: dict[tuple[str, ...], _ColumnMap] = {}
    for i, path in enumerate(output_files):
        output_classes, binary_text, scalar_text = _parse_output_file(path)
        column_map = maps.get(output_classes)
        if column_map is None:
            column_map = maps[output_classes] = _column_map(output_classes, classes)
        if column_map.needed == 0:
            continue
        if len(binary_text) < column_map.needed or len(scalar_text) < column_map.needed:
            raise ValueError(
                f"{path}: {len(output_classes)} classes but {len(binary_text)} labels and "
                f"{len(scalar_text)} probabilities"
            )
        needed = column_map.needed
        indicator = column_map.indicator[:needed]
        binary[i] = _binary_values(binary_text[:needed]) @ indicator > 0
        scalar[i] = _mean_per_class(_scalar_values(scalar_text[:needed]), indicator, column_map.counts)
    return binary, scalar


def _mean_per_class(values: np.ndarray, indicator: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean of the matching columns per class, bit-identical to ``np.mean`` of those values."""
    result = np.zeros(indicator.shape[1])
    simple = (counts > 0) & (counts <= 2)  # one or two terms: any summation order rounds alike
    if np.any(simple):
        result[simple] = (values @ indicator[:, simple]) / counts[simple]
    for j in np.flatnonzero(counts > 2):
        result[j] = np.mean(values[indicator[:, j] > 0])
    return result


# ---------------------------------------------------------------------------------------------
# The whole evaluation
# ---------------------------------------------------------------------------------------------
@dataclass
class Scores:
    """Everything the official scorer reports; per-class arrays follow ``classes`` (weights.csv order)."""

    auroc: float
    auprc: float
    accuracy: float
    f_measure: float
    challenge_metric: float
    auroc_classes: np.ndarray
    auprc_classes: np.ndarray
    f_measure_classes: np.ndarray
    classes: list[str] = field(default_factory=list)

    def score_text(self) -> str:
        """The two-line text the official scorer prints or writes to ``scores.csv``."""
        values = (self.auroc, self.auprc, self.accuracy, self.f_measure, self.challenge_metric)
        return "AUROC,AUPRC,Accuracy,F-measure,Challenge metric\n" + ",".join(f"{v:.3f}" for v in values)

    def class_text(self) -> str:
        """The four-line text the official scorer writes to ``class_scores.csv``."""
        rows = [
            "Classes," + ",".join(self.classes),
            "AUROC," + ",".join(f"{v:.3f}" for v in self.auroc_classes),
            "AUPRC," + ",".join(f"{v:.3f}" for v in self.auprc_classes),
            "F-measure," + ",".join(f"{v:.3f}" for v in self.f_measure_classes),
        ]
        return "\n".join(rows)


def score_arrays(
    labels: np.ndarray,
    binary_outputs: np.ndarray,
    scalar_outputs: np.ndarray,
    weights: np.ndarray,
    classes: Sequence[frozenset[str]],
    normal_class: str = NORMAL_CLASS,
    progress: Callable[[str], None] | None = None,
) -> Scores:
    """All metrics of (N, C) labels and outputs, computed in the official order (bit-exact)."""
    say = progress or (lambda _message: None)
    say("Evaluating model...")
    say("- AUROC and AUPRC...")
    macro_auroc, macro_auprc, auroc_classes, auprc_classes = auc(labels, scalar_outputs)
    say("- Accuracy...")
    accuracy_value = accuracy(labels, binary_outputs)
    say("- F-measure...")
    macro_f, f_classes = f_measure(labels, binary_outputs)
    say("- Challenge metric...")
    metric = challenge_metric(labels, binary_outputs, weights, classes, normal_class, exact=True)
    say("Done.")
    return Scores(
        macro_auroc,
        macro_auprc,
        accuracy_value,
        macro_f,
        metric,
        auroc_classes,
        auprc_classes,
        f_classes,
        [class_name(members) for members in classes],
    )


def evaluate(
    label_folder: str | Path,
    output_folder: str | Path,
    weights_file: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Scores:
    """Score the output files in ``output_folder`` against the headers in ``label_folder``.

    ``weights_file`` defaults to the repository's ``weights.csv``. ``progress`` receives the
    official scorer's progress lines (the CLI passes ``print``).
    """
    say = progress or (lambda _message: None)
    say("Loading weights...")
    classes, weights = read_weights(weights_file or WEIGHTS_FILE)
    say("Loading label and output files...")
    label_files, output_files = find_label_and_output_files(label_folder, output_folder)
    labels = load_labels(label_files, classes)
    binary_outputs, scalar_outputs = read_output_table(output_files, classes)
    return score_arrays(labels, binary_outputs, scalar_outputs, weights, classes, progress=progress)


__all__ = [
    "ChallengeMetric",
    "Scores",
    "accuracy",
    "auc",
    "challenge_metric",
    "class_auc",
    "evaluate",
    "f_measure",
    "find_label_and_output_files",
    "load_labels",
    "modified_confusion_matrix",
    "read_labels",
    "read_output_table",
    "score_arrays",
    "unmatched_outputs",
]
