"""The project's main network: raw-signal CRNN + PQRST fiducial CRNN + tabular MLP (seed 001, as described).

Seed 001 (heartMAASters) described two convolutional-recurrent networks, one on the raw ECG and one
on wavelet PQRST features, concatenated before fully connected layers and a sigmoid, but trained a
plain CNN without either. This is the described system:

* branch ``raw``: a CRNN over the preprocessed signal windows (B, leads, T);
* branch ``fiducial``: a smaller CRNN over the per-sample P/QRS/T channels of the wavelet
  delineation (B, C, T), aligned with the raw window;
* branch ``tabular``: an MLP over the record's global PQRST features (standardised, missing
  values zeroed), their presence mask, and age and sex.

``branches`` selects which are used, which is how the ablations (raw only, features only, both)
are trained by the same code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from models.blocks import ConvRecurrentBranch
from models.registry import register

ALL_BRANCHES = ("raw", "fiducial", "tabular")


@register("dual_crnn")
class DualBranchCRNN(nn.Module):
    """Multi-label classifier; ``forward`` returns logits (B, num_classes)."""

    def __init__(
        self,
        num_leads: int,
        num_fiducial: int,
        num_tabular: int,
        num_classes: int = 26,
        branches: Sequence[str] = ALL_BRANCHES,
        raw_widths: Sequence[int] = (32, 48, 64, 96),
        fiducial_widths: Sequence[int] = (16, 24, 32),
        rnn_hidden: int = 64,
        tabular_hidden: int = 64,
        head_hidden: int = 128,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        unknown = set(branches) - set(ALL_BRANCHES)
        if unknown or not branches:
            raise ValueError(f"branches must be a non-empty subset of {ALL_BRANCHES}, got {tuple(branches)}")
        self.branches = tuple(b for b in ALL_BRANCHES if b in branches)
        width = 0
        if "raw" in self.branches:
            self.raw = ConvRecurrentBranch(num_leads, raw_widths, rnn_hidden=rnn_hidden)
            width += self.raw.out_dim
        if "fiducial" in self.branches:
            self.fiducial = ConvRecurrentBranch(num_fiducial, fiducial_widths, rnn_hidden=rnn_hidden // 2)
            width += self.fiducial.out_dim
        if "tabular" in self.branches:
            self.tabular = nn.Sequential(
                nn.Linear(num_tabular, tabular_hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(tabular_hidden, tabular_hidden),
                nn.ReLU(),
            )
            width += tabular_hidden
        self.head = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(width, head_hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(head_hidden, num_classes),
        )

    def forward(self, signal: torch.Tensor, fiducials: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        parts = []
        if "raw" in self.branches:
            parts.append(self.raw(signal))
        if "fiducial" in self.branches:
            parts.append(self.fiducial(fiducials))
        if "tabular" in self.branches:
            parts.append(self.tabular(tabular))
        return self.head(torch.cat(parts, dim=1))
