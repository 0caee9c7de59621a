"""Losses for heavily imbalanced multi-label targets.

Scored classes range from ~30% of records (sinus rhythm) to well under 1% (e.g. Brady, PRWP), so
plain BCE learns to predict "absent" for the rare ones. Positive terms are up-weighted by the
square root of the negative/positive ratio (the square root tempers the weight of the very rarest
classes, whose few positives are also the noisiest labels), capped at ``max_pos_weight``.
Focal loss (seed 004) and asymmetric loss (DSAIL_SNU, 2nd in CinC 2021) are the alternatives the
seeds and the field trained with.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


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


class FocalLoss(nn.Module):
    """Binary focal loss per label, −α·w·(1−p_t)^γ·log p_t, averaged over labels and records.

    Seed 004 trained with it (α = 0.434, γ = 2.135, plus class weights): the (1−p_t)^γ factor
    shrinks the loss of labels the network already gets right, so the rare positives and the hard
    negatives carry the gradient. α here multiplies every term, as the seed states it (not
    RetinaNet's α for positives / 1−α for negatives); ``pos_weight`` (C,) multiplies the positive
    terms, as in :func:`weighted_bce`.
    """

    def __init__(self, alpha: float = 0.434, gamma: float = 2.135, pos_weight: torch.Tensor | None = None) -> None:
        super().__init__()
        if alpha <= 0 or gamma < 0:
            raise ValueError(f"focal loss needs alpha > 0 and gamma >= 0, got alpha={alpha}, gamma={gamma}")
        self.alpha, self.gamma = float(alpha), float(gamma)
        self.pos_weight: torch.Tensor
        self.register_buffer("pos_weight", pos_weight if pos_weight is not None else torch.ones(0))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = targets.to(logits.dtype)
        log_p = F.logsigmoid(logits)
        log_not_p = F.logsigmoid(-logits)
        log_pt = targets * log_p + (1 - targets) * log_not_p
        modulator = (1 - log_pt.exp()).clamp(min=0).pow(self.gamma)
        weight = 1 + targets * (self.pos_weight - 1) if self.pos_weight.numel() else torch.ones_like(targets)
        return -(self.alpha * weight * modulator * log_pt).mean()


class AsymmetricLoss(nn.Module):
    """Asymmetric loss (Ridnik et al. 2021), the variant DSAIL_SNU (2nd in CinC 2021) trained with.

    Positives: −(1−p)^γ+·log p; negatives: −p_m^γ−·log(1−p_m) with p_m = max(p − margin, 0).
    Easy negatives, which dominate 26 mostly-absent labels, are down-weighted (γ− > γ+) and those
    below the margin are dropped, without touching the positives' gradient.
    """

    def __init__(self, gamma_pos: float = 0.0, gamma_neg: float = 4.0, margin: float = 0.05) -> None:
        super().__init__()
        if gamma_pos < 0 or gamma_neg < 0 or not 0 <= margin < 1:
            raise ValueError(
                f"asymmetric loss needs gammas >= 0 and 0 <= margin < 1, got {gamma_pos}, {gamma_neg}, {margin}"
            )
        self.gamma_pos, self.gamma_neg, self.margin = float(gamma_pos), float(gamma_neg), float(margin)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = targets.to(logits.dtype)
        p = torch.sigmoid(logits)
        shifted = (p - self.margin).clamp(min=0)
        positive = (1 - p).pow(self.gamma_pos) * F.logsigmoid(logits)
        negative = shifted.pow(self.gamma_neg) * torch.log((1 - shifted).clamp(min=1e-8))
        return -(targets * positive + (1 - targets) * negative).mean()


def focal_loss(
    targets: np.ndarray,
    alpha: float = 0.434,
    gamma: float = 2.135,
    max_weight: float = 10.0,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """:class:`FocalLoss` with seed 004's α and γ and :func:`positive_weights` as its class weights."""
    weight = torch.as_tensor(positive_weights(targets, max_weight), device=device)
    return FocalLoss(alpha, gamma, weight).to(device)
