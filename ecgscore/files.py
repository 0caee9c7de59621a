"""Reading the Challenge's label and output files, and the whole evaluation: the official scorer's numbers.

The numbers come from the array metrics of :mod:`ecgscore.metric`, added in the official order, so
the printed digits agree with the official scorer (evaluation-2021 ``evaluate_model.py``).

Differences from the official scorer, all outside what it can read: labels written ``# Dx:``
(with a space) are read, ``weights.csv`` is found beside this package, unreadable output files
raise an error naming the file, and labels and outputs in subfolders are matched by relative path
(as ``test_model.py`` writes them).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecgscore.classes import NORMAL_CLASS, WEIGHTS_FILE, class_name, read_weights
from ecgscore.metric import accuracy, auc, challenge_metric, f_measure

_DX_RE = re.compile(r"^#\s*Dx\s*:(.*)$", re.IGNORECASE)
_TRUE_STRINGS = frozenset({"True", "true", "T", "t"})


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
    "Scores",
    "evaluate",
    "find_label_and_output_files",
    "load_labels",
    "read_labels",
    "read_output_table",
    "score_arrays",
    "unmatched_outputs",
]
