"""From probabilities to a saved model's answer: which classes a record has.

A class is on when its probability reaches the threshold tuned for it at training
(:mod:`ecgtrain.thresholds`). The rule is stored with the model, so a folder answers the same way
wherever it is served.
"""

from __future__ import annotations

import numpy as np

#: ``threshold``: a class is on when its probability reaches its threshold. ``top_if_empty``: the same, and a
#: record where no class passes gets the one closest to passing (highest probability / threshold): every
#: Challenge record has at least one diagnosis, and an empty answer scores nothing.
DECISION_RULES = ("threshold", "top_if_empty")


def decide(probabilities: np.ndarray, thresholds: np.ndarray, rule: str = "threshold") -> np.ndarray:
    """Binary decisions (bool, same shape as ``probabilities``: (C,) or (N, C)) by ``rule``."""
    if rule not in DECISION_RULES:
        raise ValueError(f"unknown decision rule {rule!r}; expected one of {DECISION_RULES}")
    probabilities = np.asarray(probabilities, dtype=np.float64)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    outputs = probabilities >= thresholds
    if rule == "top_if_empty" and probabilities.size:
        table = np.atleast_2d(outputs).copy()
        ratio = np.atleast_2d(probabilities) / np.maximum(thresholds, 1e-6)
        empty = ~table.any(axis=1) & (np.atleast_2d(probabilities) > 0).any(axis=1)
        table[np.flatnonzero(empty), np.argmax(ratio[empty], axis=1)] = True
        outputs = table.reshape(outputs.shape)
    return outputs
