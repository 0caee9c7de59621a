"""The 26 scored Challenge classes and their scoring weights, read from ``weights.csv``.

``weights.csv`` beside the repository root is the single source of truth: class order, the
equivalence pairs (written ``a|b``) and the weight matrix all come from it, so targets built for
training and the scorer can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import numpy as np

#: The Challenge's weights.csv: the repository root's (``ecgscore/weights.csv`` links to it, and an installed
#: package carries a copy of it under that name).
WEIGHTS_FILE = Path(__file__).resolve().parent / "weights.csv"

#: The "normal" class of the Challenge metric (the inactive classifier predicts only this).
NORMAL_CLASS = "426783006"

#: Abbreviations of the 26 scored classes, in weights.csv order.
ABBREVIATIONS: tuple[str, ...] = (
    "AF",
    "AFL",
    "BBB",
    "Brady",
    "LBBB",
    "RBBB",
    "IAVB",
    "IRBBB",
    "LAD",
    "LAnFB",
    "LPR",
    "LQRSV",
    "LQT",
    "NSIVCB",
    "NSR",
    "PAC",
    "PR",
    "PRWP",
    "PVC",
    "QAb",
    "RAD",
    "SA",
    "SB",
    "STach",
    "TAb",
    "TInv",
)

#: The diagnoses the 26 scored classes stand for, in weights.csv order (for people; files keep the codes).
DIAGNOSES: tuple[str, ...] = (
    "atrial fibrillation",
    "atrial flutter",
    "bundle branch block",
    "bradycardia",
    "left bundle branch block",
    "right bundle branch block",
    "1st degree av block",
    "incomplete right bundle branch block",
    "left axis deviation",
    "left anterior fascicular block",
    "prolonged pr interval",
    "low qrs voltages",
    "prolonged qt interval",
    "nonspecific intraventricular conduction disorder",
    "sinus rhythm",
    "premature atrial contraction",
    "pacing rhythm",
    "poor R wave progression",
    "premature ventricular contractions",
    "Q wave abnormal",
    "right axis deviation",
    "sinus arrhythmia",
    "sinus bradycardia",
    "sinus tachycardia",
    "T wave abnormal",
    "T wave inversion",
)


def read_weights(path: str | Path = WEIGHTS_FILE) -> tuple[list[frozenset[str]], np.ndarray]:
    """Parse a Challenge weights file: (classes as sets of codes, weight matrix rows=labels, cols=outputs).

    Raises ValueError naming the file when the table is not square, not numeric or row and
    column names disagree.
    """
    path = Path(path)
    rows = [line.split(",") for line in path.read_text().splitlines() if line.strip()]
    if len(rows) < 2:
        raise ValueError(f"{path}: weights table is empty")
    column_names = [name.strip() for name in rows[0][1:]]
    row_names = [row[0].strip() for row in rows[1:]]
    if column_names != row_names:
        raise ValueError(f"{path}: row and column class names differ")
    try:
        weights = np.array([[float(value) for value in row[1:]] for row in rows[1:]], dtype=np.float64)
    except ValueError:
        raise ValueError(f"{path}: weights must be numbers") from None
    if weights.shape != (len(column_names), len(column_names)):
        raise ValueError(f"{path}: weights table is {weights.shape}, expected square")
    classes = [frozenset(code.strip() for code in name.split("|")) for name in column_names]
    return classes, weights


@lru_cache(maxsize=1)
def _default() -> tuple[tuple[frozenset[str], ...], np.ndarray]:
    classes, weights = read_weights(WEIGHTS_FILE)
    weights.setflags(write=False)
    return tuple(classes), weights


def scored_classes() -> tuple[frozenset[str], ...]:
    """The 26 scored classes (each a set of equivalent SNOMED CT codes), in weights.csv order."""
    return _default()[0]


def scoring_weights() -> np.ndarray:
    """The read-only 26 x 26 weight matrix of weights.csv."""
    return _default()[1]


def class_name(codes: Iterable[str]) -> str:
    """The name the scorer writes for a class: member codes sorted as strings, joined by ``|``."""
    return "|".join(sorted(codes))


def class_names() -> tuple[str, ...]:
    """Names of the scored classes as the scorer writes them (e.g. ``164909002|733534002``)."""
    return tuple(class_name(codes) for codes in scored_classes())


def representative_codes() -> tuple[str, ...]:
    """One code per scored class, the first one written in weights.csv: what a model outputs."""
    first = []
    for line_name in WEIGHTS_FILE.read_text().splitlines()[0].split(",")[1:]:
        first.append(line_name.split("|")[0].strip())
    return tuple(first)


def labels_to_targets(labels: Iterable[str]) -> np.ndarray:
    """A record's ``#Dx`` codes -> bool vector over the 26 scored classes (equivalent codes merged)."""
    codes = {str(code).strip() for code in labels}
    return np.array([bool(codes & members) for members in scored_classes()], dtype=bool)
