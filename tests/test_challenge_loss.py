"""The ``challenge`` loss: a differentiable surrogate of the Challenge metric that equals the
metric's unnormalised score on 0/1 outputs (real labels and random ones), passes gradients, honours
masks the way the other losses do, mixes in BCE on request, and refuses tasks of other classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ecgio import read_header
from ecgscore.classes import labels_to_targets, scored_classes, scoring_weights
from ecgscore.metric import ChallengeMetric
from ecgtrain.losses import ChallengeLoss, MaskedBCE, make_loss, positive_weights, soft_challenge_score
from ecgtrain.settings import Settings

WEIGHTS = torch.from_numpy(np.nan_to_num(np.asarray(scoring_weights(), np.float64)))


@pytest.fixture(scope="module")
def real_labels(cinc_dir: Path) -> np.ndarray:
    """(25, 26) scored targets of the real Challenge records."""
    targets = np.array([labels_to_targets(read_header(h).labels) for h in sorted(cinc_dir.glob("*.hea"))])
    assert targets.any(axis=1).sum() >= 20 and (targets.sum(axis=1) >= 2).any()  # several multi-label records
    return targets


def _metric_score(labels: np.ndarray, outputs: np.ndarray) -> float:
    return ChallengeMetric(labels, scoring_weights(), scored_classes()).score(outputs)


def _soft(labels: np.ndarray, outputs: np.ndarray, mask: np.ndarray | None = None) -> float:
    m = None if mask is None else torch.from_numpy(mask)
    return float(
        soft_challenge_score(torch.from_numpy(outputs.astype(np.float64)), torch.from_numpy(labels), WEIGHTS, m)
    )


def test_soft_score_is_the_metric_score_on_binary_outputs(real_labels: np.ndarray):
    rng = np.random.default_rng(0)
    cases = [real_labels, np.zeros_like(real_labels), rng.random(real_labels.shape) < 0.1]
    flipped = real_labels ^ (rng.random(real_labels.shape) < 0.05)
    for outputs in [*cases, flipped]:
        assert _soft(real_labels, outputs) == pytest.approx(_metric_score(real_labels, outputs), rel=1e-12)
    labels = rng.random((200, 26)) < 0.08  # synthetic: records with 0 to 6 labels
    outputs = rng.random((200, 26)) < 0.1
    assert _soft(labels, outputs) == pytest.approx(_metric_score(labels, outputs), rel=1e-12)
    assert _soft(labels, labels) > _soft(labels, outputs)


def test_gradients_flow_and_point_to_the_labels(real_labels: np.ndarray):
    loss = make_loss("challenge", real_labels)
    logits = torch.zeros(real_labels.shape, requires_grad=True)
    value = loss(logits, torch.from_numpy(real_labels.astype(np.float32)))
    value.backward()
    grad = logits.grad.numpy()
    assert np.isfinite(value.item()) and np.all(np.isfinite(grad))
    assert np.all(grad[real_labels] < 0)  # raising a true class's logit lowers the loss
    # The whole gradient, by hand: d(s_i / n_i)/dp_k = ((yW)_k n_i - s_i (1 - y_k)) / n_i^2, times dp/dlogit = 1/4,
    # over -N. A false class close to a true one (large weight) earns partial credit, so its sign may be either.
    y = real_labels.astype(np.float64)
    yw = y @ WEIGHTS.numpy()
    n = (y + 0.5 - 0.5 * y).sum(axis=1, keepdims=True)
    s = (yw * 0.5).sum(axis=1, keepdims=True)
    expected = -0.25 * (yw * n - s * (1 - y)) / n**2 / len(y)
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-9)
    assert (grad > 0).sum() > 100  # most false classes are pushed down
    perfect = torch.from_numpy(np.where(real_labels, 30.0, -30.0).astype(np.float32))
    best = loss(perfect, torch.from_numpy(real_labels.astype(np.float32))).item()
    assert best == pytest.approx(-_metric_score(real_labels, real_labels) / len(real_labels), rel=1e-5)
    assert best < value.item()


def test_masked_elements_do_not_count():
    rng = np.random.default_rng(1)
    labels = (rng.random((16, 26)) < 0.15).astype(np.float32)
    mask = rng.random((16, 26)) < 0.7
    loss = make_loss("challenge", labels.astype(bool))
    logits = torch.from_numpy(rng.standard_normal((16, 26)).astype(np.float32)).requires_grad_(True)
    value = loss(logits, torch.from_numpy(labels), torch.from_numpy(mask))
    value.backward()
    assert np.all(logits.grad.numpy()[~mask] == 0) and np.any(logits.grad.numpy()[mask] != 0)
    changed = logits.detach().clone()
    changed[torch.from_numpy(~mask)] = 10.0  # anything at masked elements, labels flipped there too
    flipped = np.where(mask, labels, 1 - labels)
    again = loss(changed, torch.from_numpy(flipped), torch.from_numpy(mask))
    assert again.item() == pytest.approx(value.item(), rel=1e-6)
    binary = rng.random((16, 26)) < 0.2  # on 0/1 outputs: the metric of the records with masked classes removed
    expected = _metric_score(labels.astype(bool) & mask, binary & mask)
    assert _soft(labels.astype(bool), binary, mask) == pytest.approx(expected, rel=1e-12)


def test_bce_weight_adds_the_weighted_bce():
    rng = np.random.default_rng(2)
    labels = rng.random((12, 26)) < 0.2
    logits = torch.from_numpy(rng.standard_normal((12, 26)).astype(np.float32))
    target = torch.from_numpy(labels.astype(np.float32))
    pure = make_loss("challenge", labels)(logits, target)
    mixed = make_loss("challenge", labels, kwargs={"bce_weight": 0.5})(logits, target)
    bce = MaskedBCE(torch.from_numpy(positive_weights(labels)))(logits, target)
    assert mixed.item() == pytest.approx(pure.item() + 0.5 * bce.item(), rel=1e-6)
    with pytest.raises(ValueError, match="bce_weight"):
        ChallengeLoss(WEIGHTS, bce_weight=-1)
    with pytest.raises(ValueError, match="bad loss_kwargs"):
        make_loss("challenge", labels, kwargs={"gamma": 2})


def test_only_the_challenge_classes_and_the_setting_is_accepted():
    with pytest.raises(ValueError, match="26 Challenge classes"):
        make_loss("challenge", np.zeros((4, 5), bool))
    assert Settings.from_dict({"loss": "challenge", "loss_kwargs": {"bce_weight": 1.0}}).loss == "challenge"
