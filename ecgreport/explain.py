"""Where the network looked: integrated gradients of one class's logit on the raw-signal input.

Why integrated gradients: it needs nothing but the network's ``forward`` and autograd, so it works
for every architecture in the registry and every lead set, and its attributions add up to the
change of the logit between a baseline and the record (completeness), which a test can check.
The baseline is the zero signal: after the per-lead z-scoring of :func:`ecgsignal.pipeline.prepare`
zero is the isoelectric line, "no ECG". Fiducial channels and tabular features stay at the
record's values along the path, so the attribution tells what the *waveform* contributed on top
of the delineation features. A network without a raw branch gets all-zero attributions, which
:attr:`Explanation.uses_signal` reports instead of shading noise.

Attributions come per window (W, L, T) at the processing rate; they are put back on the record's
time line (overlapping windows averaged) so that they can be shaded under the trace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ecgsignal.pipeline import Prepared, prepare
from ecgsignal.preprocess import window_starts

#: Integration steps; 32 keeps the completeness error around a percent for our networks.
DEFAULT_STEPS = 32
#: Moving-average width of the shading (about one QRS complex), seconds.
SMOOTH_SECONDS = 0.04


@dataclass(frozen=True)
class Explanation:
    """One record through one predictor, and the attribution of one class.

    ``attribution`` float32 (len(leads), M): signed integrated gradients on the record's time
    line at ``fs`` (the processing rate), rows in ``leads`` order (the predictor's leads).
    ``probabilities``/``thresholds`` (num_classes,), ``target`` the explained class index,
    ``logit_change`` the target logit of the record minus that of the baseline (window mean), and
    ``attribution_total`` the sum of the attributions (equal to it up to the integration error).
    """

    leads: tuple[str, ...]
    fs: float
    attribution: np.ndarray
    probabilities: np.ndarray
    thresholds: np.ndarray
    classes: tuple[str, ...]
    target: int
    logit_change: float
    attribution_total: float
    prepared: Prepared
    method: str = "integrated gradients"

    @property
    def predicted(self) -> np.ndarray:
        """Indices of the classes at or above their threshold."""
        return np.flatnonzero(self.probabilities >= self.thresholds)

    @property
    def uses_signal(self) -> bool:
        """False when the network ignores the raw signal (no raw branch): nothing to shade."""
        return bool(np.any(self.attribution != 0))


def predictor_signal(predictor: Any, record: Any) -> np.ndarray:
    """The record's rows in the predictor's lead order; leads the record lacks are zero (as run_model does)."""
    rows = []
    for lead in predictor.leads:
        if lead in record.leads:
            rows.append(np.asarray(record.signal[record.leads.index(lead)], dtype=np.float32))
        else:
            rows.append(np.zeros(record.signal.shape[1], dtype=np.float32))
    return np.stack(rows)


def network_inputs(
    predictor: Any, prepared: Prepared, age: float, sex: str | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(signal (W, L, T), fiducials (W, C, T), tabular (W, D)) tensors as ``Predictor.probabilities`` builds them."""
    tabular = predictor.scaler.transform(
        prepared.features[None], prepared.feature_present[None], np.array([age]), [sex]
    )
    windows = len(prepared.windows)
    device = predictor.device
    return (
        torch.as_tensor(np.asarray(prepared.windows, np.float32), device=device),
        torch.as_tensor(np.asarray(prepared.fiducials, np.float32), device=device),
        torch.as_tensor(np.repeat(tabular.astype(np.float32), windows, axis=0), device=device),
    )


def _no_cudnn() -> contextlib.AbstractContextManager:
    """cuDNN's recurrent layers only run backward in training mode; the plain kernels do in eval."""
    return torch.backends.cudnn.flags(enabled=False)


def integrated_gradients(
    network: torch.nn.Module,
    signal: torch.Tensor,
    fiducials: torch.Tensor,
    tabular: torch.Tensor,
    target: int,
    steps: int = DEFAULT_STEPS,
) -> tuple[np.ndarray, float]:
    """Attributions (W, L, T) of logit ``target`` (mean over windows) to ``signal``, and the logit change.

    Midpoint Riemann sum of the gradient along the straight path from the zero signal.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    network.eval()
    windows = signal.shape[0]
    alphas = torch.as_tensor((np.arange(steps) + 0.5) / steps, dtype=signal.dtype, device=signal.device)
    with _no_cudnn():
        # every step in one batch: (steps * W, L, T), step-major
        path = (alphas[:, None, None, None] * signal[None]).reshape(steps * windows, *signal.shape[1:])
        path = path.detach().requires_grad_(True)
        repeat = (steps,) + (1,) * (fiducials.ndim - 1)
        logits = network(path, fiducials.repeat(*repeat), tabular.repeat(steps, 1))[:, target]
        gradient = None
        if logits.requires_grad:  # a network without a raw branch never touches ``path``
            (gradient,) = torch.autograd.grad(logits.sum() / windows, path, allow_unused=True)
        if gradient is None:
            total = torch.zeros_like(signal)
        else:
            total = gradient.reshape(steps, *signal.shape).sum(dim=0)
        with torch.no_grad():
            change = (
                network(signal, fiducials, tabular)[:, target].mean()
                - network(torch.zeros_like(signal), fiducials, tabular)[:, target].mean()
            )
    attribution = (signal * total / steps).detach().cpu().numpy()
    return attribution, float(change)


def attention_modules(network: torch.nn.Module) -> list[torch.nn.Module]:
    """The attention poolings over time of the raw-signal branch: one per network, or one per member
    of an ensemble (``members.<i>.raw...``, a stack's ``members.<i>.parts.<g>.raw...``)."""
    from models.blocks import AttentionPool

    found: list[torch.nn.Module] = []
    for name, module in network.named_modules():
        if isinstance(module, AttentionPool) and "raw" in name.split("."):
            found.append(module)
    return found


def attention_weights(network: torch.nn.Module, inputs: Sequence[torch.Tensor], length: int) -> np.ndarray:
    """The raw branch's attention over time per window (W, length), stretched to the window's samples.

    The pooling layer returns only its weighted mean, so a forward hook recomputes its weights
    from the sequence it received with its own ``project`` and ``score`` layers; an ensemble's
    members' weights are averaged. 1 = uniform attention. ValueError when the network has no such layer.
    """
    modules = attention_modules(network)
    if not modules:
        raise ValueError(f"{type(network).__name__} has no attention pooling over the raw signal")
    captured: list[torch.Tensor] = []

    def keep(layer: Any, args: tuple[torch.Tensor, ...], _output: torch.Tensor) -> None:
        scores = layer.score(torch.tanh(layer.project(args[0]))).squeeze(-1)
        captured.append(torch.softmax(scores, dim=1))

    handles = [module.register_forward_hook(keep) for module in modules]
    try:
        with torch.no_grad():
            network(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    weights = torch.stack(captured).mean(dim=0).float().cpu().numpy()  # (W, T')
    steps = weights.shape[1]
    index = np.minimum((np.arange(length) * steps) // length, steps - 1)
    return weights[:, index] * steps


def to_timeline(attribution: np.ndarray, num_samples: int, config: Any) -> np.ndarray:
    """(W, L, T) window attributions -> (L, num_samples) on the record's time line, overlaps averaged."""
    starts = window_starts(num_samples, config)
    length = attribution.shape[-1]
    out = np.zeros((attribution.shape[1], num_samples), dtype=np.float64)
    count = np.zeros(num_samples, dtype=np.float64)
    for window, start in zip(attribution, starts):
        stop = min(num_samples, int(start) + length)
        out[:, start:stop] += window[:, : stop - start]
        count[start:stop] += 1
    return (out / np.maximum(count, 1)).astype(np.float32)


def probabilities_of(network: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> np.ndarray:
    """Record probabilities (mean of the windows' sigmoids), as the predictor computes them."""
    with torch.no_grad():
        logits = network(*inputs).float()
    return torch.sigmoid(logits).mean(dim=0).cpu().numpy()


def default_target(probabilities: np.ndarray, thresholds: np.ndarray) -> int:
    """The most probable predicted class, or the most probable class when none is predicted."""
    predicted = np.flatnonzero(probabilities >= thresholds)
    pool = predicted if predicted.size else np.arange(probabilities.size)
    return int(pool[np.argmax(probabilities[pool])])


METHODS = ("integrated gradients", "attention")


def explain_record(
    predictor: Any, record: Any, target: int | None = None, steps: int = DEFAULT_STEPS, method: str = METHODS[0]
) -> Explanation:
    """Classify ``record`` (an :class:`ecgio.Record`) with ``predictor`` and attribute one class to the signal.

    The probabilities are the predictor's (a model with boosted trees mixes them in); the attribution is
    of the networks' logit, the only part that reads the signal samples (the trees read global features).

    ``method="attention"`` shades the raw branch's attention weights instead (the same for every
    lead and every class: where the pooling looked, not what it concluded).
    """
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; use one of {METHODS}")
    signal = predictor_signal(predictor, record)
    prepared = prepare(signal, float(record.fs), tuple(predictor.leads), predictor.config)
    inputs = network_inputs(predictor, prepared, record.age, record.sex)
    probabilities = np.clip(np.nan_to_num(probabilities_of(predictor.network, inputs)), 0.0, 1.0)
    if getattr(predictor, "features_member", None) is not None:  # mixed in as the predictor classifies
        from ecgserve.forest import gbm_inputs

        trees = gbm_inputs(
            prepared.features[None], prepared.feature_present[None], np.array([record.age]), [record.sex]
        )
        probabilities = predictor.with_trees(probabilities[None], trees)[0]
    thresholds = np.asarray(predictor.thresholds, dtype=np.float64)
    if target is None:
        target = default_target(probabilities, thresholds)
    if not 0 <= target < probabilities.size:
        raise ValueError(f"{record.name}: class index {target} is outside 0..{probabilities.size - 1}")
    signal_t, fiducials_t, tabular_t = inputs
    attribution, change = integrated_gradients(predictor.network, signal_t, fiducials_t, tabular_t, target, steps)
    total = float(attribution.sum())
    if method == "attention":
        weights = attention_weights(predictor.network, inputs, signal_t.shape[-1])
        attribution = np.repeat(weights[:, None, :], signal_t.shape[1], axis=1).astype(np.float32)
    num_samples = int(round(record.signal.shape[1] * predictor.config.fs / float(record.fs)))
    return Explanation(
        leads=tuple(predictor.leads),
        fs=float(predictor.config.fs),
        attribution=to_timeline(attribution, num_samples, predictor.config),
        probabilities=probabilities,
        thresholds=thresholds,
        classes=tuple(predictor.classes),
        target=target,
        logit_change=change,
        attribution_total=total,
        prepared=prepared,
        method=method,
    )


def shading(explanation: Explanation, leads: Sequence[str], num_samples: int, fs: float) -> np.ndarray:
    """(len(leads), num_samples) in 0..1 at the record's rate: smoothed |attribution|, one scale for all leads.

    Scaled by the 99th percentile over every lead, so a lead that mattered more is shaded more;
    leads the predictor did not use stay unshaded.
    """
    magnitude = np.abs(explanation.attribution.astype(np.float64))
    width = max(1, int(round(SMOOTH_SECONDS * explanation.fs)))
    kernel = np.ones(width) / width
    smooth = np.stack([np.convolve(row, kernel, mode="same") for row in magnitude]) if magnitude.size else magnitude
    scale = float(np.percentile(smooth, 99)) if smooth.size else 0.0
    out = np.zeros((len(leads), num_samples), dtype=np.float32)
    if scale <= 0:
        return out
    positions = np.clip(np.round(np.arange(num_samples) * explanation.fs / fs).astype(np.int64), 0, smooth.shape[1] - 1)
    for k, lead in enumerate(leads):
        if lead in explanation.leads:
            out[k] = np.clip(smooth[explanation.leads.index(lead), positions] / scale, 0.0, 1.0)
    return out


__all__ = [
    "METHODS",
    "Explanation",
    "attention_modules",
    "attention_weights",
    "default_target",
    "explain_record",
    "integrated_gradients",
    "predictor_signal",
    "shading",
    "to_timeline",
]
