"""Loss for heavily imbalanced multi-label targets.

Scored classes range from ~30% of records (sinus rhythm) to well under 1% (e.g. Brady, PRWP), so
plain BCE learns to predict "absent" for the rare ones. Positive terms are up-weighted by the
square root of the negative/positive ratio (the square root tempers the weight of the very rarest
classes, whose few positives are also the noisiest labels), capped at ``max_pos_weight``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn


def positive_weights(targets: np.ndarray, max_weight: float = 10.0) -> np.ndarray:
    """(C,) weights sqrt(neg/pos) clipped to [1, max_weight]; 1 for classes without positives."""
    targets = np.asarray(targets, dtype=bool)
    positives = targets.sum(axis=0).astype(np.float64)
    negatives = len(targets) - positives
    ratio = np.where(positives > 0, np.sqrt(negatives / np.maximum(positives, 1)), 1.0)
    return np.clip(ratio, 1.0, max_weight).astype(np.float32)


def weighted_bce(targets: np.ndarray, max_weight: float = 10.0, device: str | torch.device = "cpu") -> nn.Module:
    """BCE-with-logits with :func:`positive_weights` computed on the training targets."""
    weight = torch.as_tensor(positive_weights(targets, max_weight), device=device)
    return nn.BCEWithLogitsLoss(pos_weight=weight)
