"""Losses for heavily imbalanced multi-label targets, each with an optional per-element mask.

Scored classes range from ~30% of records (sinus rhythm) to well under 1% (e.g. Brady, PRWP), so
plain BCE learns to predict "absent" for the rare ones. Positive terms are up-weighted by the
square root of the negative/positive ratio (the square root tempers the weight of the very rarest
classes, whose few positives are also the noisiest labels), capped at ``max_pos_weight``.

Two alternatives attack the same imbalance from the other side, by shrinking the loss of the many
easy negatives: focal loss (Lin et al. 2017: every term scaled by (1 - p_t)^gamma) and the
asymmetric loss (Ridnik et al. 2021: a stronger focusing exponent for negatives and a probability
margin below which a negative costs nothing, which also forgives missing labels).

The ``challenge`` loss optimises the score itself instead (:class:`ChallengeLoss`): the
Challenge metric with sigmoid probabilities in place of binary outputs.

The mask (same shape as the targets, 1 = counts) lets a record leave out of its loss the classes
its source never annotates (:mod:`ecgtrain.labels`): there a 0 means "not looked for", not "absent".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ecgscore.classes import scoring_weights


def positive_weights(targets: np.ndarray, max_weight: float = 10.0) -> np.ndarray:
    """(C,) weights sqrt(neg/pos) clipped to [1, max_weight]; 1 for classes without positives."""
    targets = np.asarray(targets, dtype=bool)
    positives = targets.sum(axis=0).astype(np.float64)
    negatives = len(targets) - positives
    ratio = np.where(positives > 0, np.sqrt(negatives / np.maximum(positives, 1)), 1.0)
    return np.clip(ratio, 1.0, max_weight).astype(np.float32)


def _masked_mean(terms: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the elements that count (all when ``mask`` is None)."""
    if mask is None:
        return terms.mean()
    mask = mask.to(terms.dtype)
    return (terms * mask).sum() / mask.sum().clamp_min(1.0)


class MaskedBCE(nn.Module):
    """BCE-with-logits with per-class positive weights; masked elements do not count."""

    pos_weight: torch.Tensor

    def __init__(self, pos_weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        terms = F.binary_cross_entropy_with_logits(logits, target, pos_weight=self.pos_weight, reduction="none")
        return _masked_mean(terms, mask)


class FocalLoss(nn.Module):
    """Focal loss: BCE scaled by (1 - p_t)^gamma, so labels the network already gets right carry
    little gradient.

    ``alpha`` (None: 1) multiplies every term, as seed 004 states it (it trained with α = 0.434,
    γ = 2.135 and class weights: ``loss_kwargs`` ``{"alpha": 0.434, "gamma": 2.135}``, or
    :func:`focal_loss`); ``pos_weight`` (C,) multiplies the positive terms, as in BCE.
    """

    pos_weight: torch.Tensor

    def __init__(self, alpha: float | None = None, gamma: float = 2.0, pos_weight: torch.Tensor | None = None) -> None:
        super().__init__()
        if (alpha is not None and alpha <= 0) or gamma < 0:
            raise ValueError(f"focal loss needs alpha > 0 and gamma >= 0, got alpha={alpha}, gamma={gamma}")
        self.alpha, self.gamma = (1.0 if alpha is None else float(alpha)), float(gamma)
        self.register_buffer("pos_weight", pos_weight if pos_weight is not None else torch.ones(0))

    def forward(self, logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        target = target.to(logits.dtype)
        log_pt = target * F.logsigmoid(logits) + (1 - target) * F.logsigmoid(-logits)
        modulator = (1 - log_pt.exp()).clamp(min=0).pow(self.gamma)
        terms = -self.alpha * modulator * log_pt
        if self.pos_weight.numel():
            terms = terms * (1 + target * (self.pos_weight - 1))
        return _masked_mean(terms, mask)


class AsymmetricLoss(nn.Module):
    """Asymmetric loss (Ridnik et al. 2021; DSAIL_SNU, 2nd in CinC 2021, trained with a variant):
    positives focused with ``gamma_pos``, negatives with ``gamma_neg`` on a probability shifted down
    by ``clip`` (a negative predicted below ``clip`` costs nothing)."""

    def __init__(self, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05, eps: float = 1e-6) -> None:
        super().__init__()
        if gamma_pos < 0 or gamma_neg < 0 or not 0 <= clip < 1:
            raise ValueError(
                f"asymmetric loss needs gammas >= 0 and 0 <= clip < 1, got {gamma_pos}, {gamma_neg}, {clip}"
            )
        self.gamma_pos, self.gamma_neg, self.clip, self.eps = float(gamma_pos), float(gamma_neg), float(clip), eps

    def forward(self, logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        target = target.to(logits.dtype)
        p = torch.sigmoid(logits)
        p_neg = (p - self.clip).clamp_min(0.0) if self.clip > 0 else p
        positive = target * (1 - p).pow(self.gamma_pos) * torch.log(p.clamp_min(self.eps))
        negative = (1 - target) * p_neg.pow(self.gamma_neg) * torch.log((1 - p_neg).clamp_min(self.eps))
        return _masked_mean(-(positive + negative), mask)


def soft_challenge_score(
    probabilities: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """The Challenge metric's unnormalised score ``nansum(W * A)`` with probabilities as outputs.

    The metric adds, for each record i, ``W[j, k] / n_i`` for every label j and output k, where ``n_i``
    counts the classes positive in its labels or its outputs. With outputs p in [0, 1] the same sum is
    ``sum_i (y_i W p_i) / n_i`` and the union count becomes ``n_i = max(1, sum_j y_ij + p_ij - y_ij p_ij)``
    (the probabilistic "or"), so for 0/1 probabilities this is exactly the metric's score. Masked elements
    (``mask`` 0) count as neither label nor output of their record. ``weights``: (C, C), NaN read as 0.
    """
    target = target.to(probabilities.dtype)
    if mask is not None:
        keep = mask.to(probabilities.dtype)
        probabilities, target = probabilities * keep, target * keep
    union = (target + probabilities - target * probabilities).sum(dim=1).clamp_min(1.0)
    return ((target @ weights) * probabilities).sum(dim=1).div(union).sum()


class ChallengeLoss(nn.Module):
    """Minus the soft Challenge score per record (:func:`soft_challenge_score`), plus ``bce_weight`` times
    the weighted BCE.

    The 2021 winner is reported to have trained with such a surrogate; we had nothing more
    of theirs to go on, so this one is built from the metric's definition alone (``ecgscore.metric``):
    the normalised multi-label confusion matrix with sigmoid probabilities for the binary outputs,
    weighted by the Challenge weights. It is divided by the batch's record count rather than by the
    metric's (correct - inactive) difference, which depends on which records a batch happens to hold
    and would rescale each batch's gradient at random. Thresholds are still tuned afterwards: the
    surrogate rewards probabilities near 1 on the right classes, it does not fix the decision point.
    """

    weights: torch.Tensor

    def __init__(self, weights: torch.Tensor, bce: nn.Module | None = None, bce_weight: float = 0.0) -> None:
        super().__init__()
        if bce_weight < 0:
            raise ValueError(f"challenge loss needs bce_weight >= 0, got {bce_weight}")
        self.register_buffer("weights", torch.nan_to_num(weights.to(torch.float32), nan=0.0))
        self.bce = bce if bce_weight > 0 else None
        self.bce_weight = float(bce_weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        score = soft_challenge_score(torch.sigmoid(logits), target, self.weights.to(logits.dtype), mask)
        loss = -score / max(len(logits), 1)
        if self.bce is not None:
            loss = loss + self.bce_weight * self.bce(logits, target, mask)
        return loss


def _bce(targets: np.ndarray, max_weight: float, **kwargs: Any) -> nn.Module:
    return MaskedBCE(torch.as_tensor(positive_weights(targets, max_weight)), **kwargs)


def _focal(targets: np.ndarray, max_weight: float, **kwargs: Any) -> nn.Module:
    return FocalLoss(**kwargs)


def _asymmetric(targets: np.ndarray, max_weight: float, **kwargs: Any) -> nn.Module:
    return AsymmetricLoss(**kwargs)


def _challenge(targets: np.ndarray, max_weight: float, bce_weight: float = 0.0) -> nn.Module:
    weights = np.asarray(scoring_weights(), dtype=np.float32)
    if np.shape(targets)[1] != len(weights):
        raise ValueError(
            f"loss 'challenge' scores the {len(weights)} Challenge classes; this task has {np.shape(targets)[1]}"
        )
    return ChallengeLoss(torch.from_numpy(weights), _bce(targets, max_weight), bce_weight)


#: The ``loss`` setting -> builder(training targets, max_pos_weight, **loss_kwargs).
LOSSES: dict[str, Callable[..., nn.Module]] = {
    "bce": _bce,
    "focal": _focal,
    "asymmetric": _asymmetric,
    "challenge": _challenge,
}


def make_loss(
    name: str,
    targets: np.ndarray,
    max_weight: float = 10.0,
    device: str | torch.device = "cpu",
    kwargs: dict[str, Any] | None = None,
) -> nn.Module:
    """The loss called ``name``, fitted to the training targets where it needs them; bad ``kwargs`` are a
    ValueError naming the loss."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}")
    try:
        return LOSSES[name](targets, max_weight, **(kwargs or {})).to(device)
    except TypeError as error:
        raise ValueError(f"loss {name!r}: bad loss_kwargs ({error})") from None


def weighted_bce(targets: np.ndarray, max_weight: float = 10.0, device: str | torch.device = "cpu") -> nn.Module:
    """BCE-with-logits with :func:`positive_weights` computed on the training targets."""
    return make_loss("bce", targets, max_weight, device)


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
