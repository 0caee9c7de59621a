"""What a zoo network sees: raw leads, PQRST fiducial channels, the tabular vector, at which rate.

The seed systems and the field's baselines each take one multi-channel signal. To make "seed X
plus our features" a one-setting experiment, every zoo network is built the same way:

* ``branches`` ("raw", "fiducial", "tabular") picks the inputs. Raw leads and fiducial channels
  are aligned sample by sample, so they are stacked as channels of the one signal the seed's
  network reads (early fusion); the tabular vector goes through a small MLP whose output is
  concatenated to the network's pooled features just before its classifier (late fusion).
  ``branches=["raw"]`` is the seed system as published.
* ``input_fs`` (the rate of the windows the trainer gives, 250 Hz by default) and ``model_fs``
  (the rate the source used) make the network see the signal at its source's rate, so kernel
  sizes keep their meaning in time; when they are equal nothing is resampled.

This module knows nothing about training: the tabular vector is ``ecgserve.tabular``'s layout,
whose last :data:`DEMOGRAPHIC_WIDTH` columns are age, age-missing, male, female.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

ALL_INPUTS = ("raw", "fiducial", "tabular")
#: Trailing columns of the tabular vector holding age and sex (see ``ecgserve.tabular.DEMOGRAPHIC_COLUMNS``).
DEMOGRAPHIC_WIDTH = 4


def check_branches(branches: Sequence[str], name: str, signal_required: bool = True) -> tuple[str, ...]:
    """Canonical order of the selected inputs; an unknown input, or no signal input where one is needed, is an error."""
    if isinstance(branches, str):
        branches = (branches,)
    unknown = set(branches) - set(ALL_INPUTS)
    if unknown or not branches:
        raise ValueError(f"{name}: branches must be a non-empty subset of {ALL_INPUTS}, got {tuple(branches)}")
    chosen = tuple(b for b in ALL_INPUTS if b in branches)
    if signal_required and not {"raw", "fiducial"} & set(chosen):
        raise ValueError(f"{name}: needs 'raw' or 'fiducial' among its branches, got {chosen}")
    return chosen


def resample(x: torch.Tensor, input_fs: float, model_fs: float) -> torch.Tensor:
    """(B, C, T) at ``input_fs`` -> (B, C, T') at ``model_fs``: area averaging down, linear interpolation up."""
    if input_fs <= 0 or model_fs <= 0:
        raise ValueError(f"sampling rates must be positive, got input_fs={input_fs}, model_fs={model_fs}")
    if input_fs == model_fs:
        return x
    size = max(round(x.shape[-1] * model_fs / input_fs), 1)
    if model_fs < input_fs:
        return F.adaptive_avg_pool1d(x, size)
    return F.interpolate(x, size=size, mode="linear", align_corners=False)


def fit_length(x: torch.Tensor, samples: int) -> torch.Tensor:
    """First ``samples`` samples, right zero-padded when shorter (seed 001's and 000's fixed input)."""
    if x.shape[-1] >= samples:
        return x[..., :samples]
    return F.pad(x, (0, samples - x.shape[-1]))


class SignalInputs(nn.Module):
    """Stacks the selected signal inputs as channels, at the model's rate; no parameters."""

    def __init__(
        self, num_leads: int, num_fiducial: int, branches: Sequence[str], input_fs: float, model_fs: float
    ) -> None:
        super().__init__()
        self.use_raw = "raw" in branches
        self.use_fiducial = "fiducial" in branches
        self.channels = num_leads * self.use_raw + num_fiducial * self.use_fiducial
        self.input_fs, self.model_fs = float(input_fs), float(model_fs)
        resample(torch.zeros(1, 1, 1), self.input_fs, self.model_fs)  # rejects bad rates at build time

    def forward(self, signal: torch.Tensor, fiducials: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.use_raw:
            parts.append(signal)
        if self.use_fiducial:
            parts.append(fiducials.to(signal.dtype) if self.use_raw else fiducials)
        return resample(torch.cat(parts, dim=1), self.input_fs, self.model_fs)


class TabularFusion(nn.Module):
    """Appends an MLP embedding of the tabular vector to pooled features; passes them through when off."""

    def __init__(self, num_tabular: int, enabled: bool, hidden: int = 64, dropout: float = 0.2) -> None:
        super().__init__()
        self.width = hidden if enabled else 0
        self.mlp: nn.Module | None = None
        if enabled:
            self.mlp = nn.Sequential(
                nn.Linear(num_tabular, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU()
            )

    def forward(self, features: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        if self.mlp is None:
            return features
        return torch.cat([features, self.mlp(tabular.to(features.dtype))], dim=1)


class ConcatPoolHead(nn.Module):
    """fastai's head as the PTB-XL benchmark used it: max ‖ mean pooling, then BN-dropout-linear layers.

    ``hidden=(128,)`` and ``dropout=0.5`` are the benchmark's settings (dropout halved before the
    hidden layer); the tabular embedding, when on, joins the pooled features.
    """

    def __init__(
        self,
        channels: int,
        num_classes: int,
        fusion: TabularFusion,
        hidden: Sequence[int] = (128,),
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.fusion = fusion
        widths = [2 * channels + fusion.width, *hidden, num_classes]
        drops = [dropout / 2] * len(hidden) + [dropout]
        layers: list[nn.Module] = []
        for k, (width_in, width_out) in enumerate(itertools.pairwise(widths)):
            layers += [nn.BatchNorm1d(width_in), nn.Dropout(drops[k]), nn.Linear(width_in, width_out)]
            if k < len(hidden):
                layers.append(nn.ReLU())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:  # x: (B, C, T)
        pooled = torch.cat([x.amax(dim=-1), x.mean(dim=-1)], dim=1)
        return self.layers(self.fusion(pooled, tabular))


def kaiming_init(module: nn.Module) -> None:
    """The benchmark's ``weight_init``: He-normal convolutions and linears, zero biases, unit batch norms."""
    for m in module.modules():
        if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Linear):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
