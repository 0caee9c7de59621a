"""Seed 001 (heartMAASters) as its authors actually trained it: one plain CNN, no recurrence, no features.

The paper describes two CRNNs (raw ECG and wavelet PQRST features; that described system is our
``dual_crnn``), but ``setup_model`` builds and trains this: input 5000 samples (10 s at 500 Hz,
first 5000, right zero-padded), valid convolutions with ReLU and max-pool 2:
C32k5, C32k5, C64k5, C64k5, C128k5, dropout .3, C128k4, dropout .3, C128k4 -> flatten 71 x 128 =
9088 -> dense 256 -> dropout .3 -> dense 128 -> classes. Registered so that the gain of the
described system over the built one is measured by the same trainer, not claimed.

Keras' defaults are kept where they matter: Glorot-uniform weights, zero biases. The seed's own
training (BCE, Adam 1e-3, 10 epochs, batch 128, no validation, threshold 0.6) is not part of the
network; our trainer supplies its own. With ``fiducial``/``tabular`` on, the fiducial channels
join the leads and the tabular embedding joins the flattened features.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from models.inputs import ALL_INPUTS, SignalInputs, TabularFusion, check_branches, fit_length
from models.registry import register

#: (filters, kernel, dropout before the convolution) of the seven convolutions.
LAYERS = ((32, 5, 0.0), (32, 5, 0.0), (64, 5, 0.0), (64, 5, 0.0), (128, 5, 0.0), (128, 4, 0.3), (128, 4, 0.3))


def _flat_length(samples: int, layers: Sequence[Sequence[float]]) -> int:
    """Length after valid convolutions, each but the last followed by max-pool 2 (5000 -> 71)."""
    length = samples
    for k, (_, kernel, _) in enumerate(layers):
        length = length - int(kernel) + 1
        if k < len(layers) - 1:
            length //= 2
        if length < 1:
            raise ValueError(f"seed001_cnn: {samples} samples are too few for its {len(layers)} valid convolutions")
    return length


@register("seed001_cnn")
class Seed001CNN(nn.Module):
    """The trained seed-001 CNN; ``layers`` as (filters, kernel, dropout) triples shrinks it for tests."""

    def __init__(
        self,
        num_leads: int,
        num_fiducial: int,
        num_tabular: int,
        num_classes: int = 26,
        branches: Sequence[str] = ALL_INPUTS,
        layers: Sequence[Sequence[float]] = LAYERS,
        dense: Sequence[int] = (256, 128),
        dropout: float = 0.3,
        tabular_hidden: int = 64,
        input_fs: float = 250.0,
        model_fs: float = 500.0,
        model_samples: int = 5000,
    ) -> None:
        super().__init__()
        self.branches = check_branches(branches, "seed001_cnn")
        self.inputs = SignalInputs(num_leads, num_fiducial, self.branches, input_fs, model_fs)
        self.model_samples = model_samples
        modules: list[nn.Module] = []
        c_in = self.inputs.channels
        for k, (filters, kernel, drop) in enumerate(layers):
            if drop:
                modules.append(nn.Dropout(float(drop)))
            modules += [nn.Conv1d(c_in, int(filters), int(kernel)), nn.ReLU()]
            if k < len(layers) - 1:
                modules.append(nn.MaxPool1d(2))
            c_in = int(filters)
        self.features = nn.Sequential(*modules, nn.Flatten())
        self.fusion = TabularFusion(num_tabular, "tabular" in self.branches, tabular_hidden)
        flat = c_in * _flat_length(model_samples, layers) + self.fusion.width
        self.classifier = nn.Sequential(
            nn.Linear(flat, dense[0]),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(dense[0], dense[1]),
            nn.ReLU(),
            nn.Linear(dense[1], num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv1d | nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, signal: torch.Tensor, fiducials: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        x = fit_length(self.inputs(signal, fiducials), self.model_samples)
        return self.classifier(self.fusion(self.features(x), tabular))
