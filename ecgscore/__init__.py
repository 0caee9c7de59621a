"""The Challenge's scored classes, weights and metrics."""

from ecgscore.classes import (
    ABBREVIATIONS,
    NORMAL_CLASS,
    class_names,
    labels_to_targets,
    read_weights,
    representative_codes,
    scored_classes,
    scoring_weights,
)

__all__ = [
    "ABBREVIATIONS",
    "NORMAL_CLASS",
    "class_names",
    "labels_to_targets",
    "read_weights",
    "representative_codes",
    "scored_classes",
    "scoring_weights",
]
