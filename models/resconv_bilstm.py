"""Seed 004: residual Conv1D blocks, a BiLSTM, attention, and an age/sex metadata branch.

Only the seed's README survives (no code): two residual Conv1D blocks with 256 and 128 filters and
kernels 3 and 7, dropout 0.25, BiLSTM of 128 units, attention, dense 256; age and sex -> dense 16;
combined dense 128; sigmoid outputs; focal loss α = 0.434, γ = 2.135 with class weights, learning
rate 4.67e-4. What it leaves open is chosen here (docs/architectures.md lists it):

* input 100 Hz (the PTB-XL rate its results were reported at), 10 s -> 1000 samples;
* block: conv-BN-ReLU-dropout-conv-BN, 1x1-conv shortcut, ReLU, then max-pool 2 (so the BiLSTM
  runs over 250 steps, not 1000);
* attention: additive (tanh, softmax over time), its weights kept in ``last_attention["time"]``;
* metadata: the last four tabular columns (scaled age, age missing, male, female) -> dense 16,
  on whenever ``metadata`` is true, independent of ``branches``; ``"tabular"`` in ``branches``
  adds our full feature vector on top;
* loss: :class:`ecgtrain.losses.FocalLoss` with the seed's α and γ (``LOSS`` below), class
  weights :func:`ecgtrain.losses.positive_weights`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn as nn

from models.attention import AdditiveAttention
from models.inputs import ALL_INPUTS, DEMOGRAPHIC_WIDTH, SignalInputs, TabularFusion, check_branches
from models.registry import register


class ResidualConvBlock(nn.Module):
    """Two same-padded convolutions with BN and dropout, a 1x1 shortcut, ReLU and max-pool 2."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dropout: float, pool: int = 2) -> None:
        super().__init__()
        pad = kernel // 2
        self.body = nn.Sequential(
            nn.Conv1d(c_in, c_out, kernel, padding=pad, bias=False),
            nn.BatchNorm1d(c_out),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Conv1d(c_out, c_out, kernel, padding=pad, bias=False),
            nn.BatchNorm1d(c_out),
        )
        self.shortcut = nn.Sequential(nn.Conv1d(c_in, c_out, 1, bias=False), nn.BatchNorm1d(c_out))
        self.pool = nn.MaxPool1d(pool) if pool > 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.body(x)[..., : x.shape[-1]] + self.shortcut(x))
        return self.pool(out)


@register("resconv_bilstm_attn")
class ResConvBiLSTMAttention(nn.Module):
    """Seed 004's network; ``forward`` returns logits, the attention over time is kept for inspection."""

    #: The loss the seed trained with: the zoo benchmark trains this architecture with it (settings `loss`).
    LOSS: ClassVar[dict[str, Any]] = {"name": "focal", "alpha": 0.434, "gamma": 2.135}
    #: The seed's (tuner-derived) learning rate.
    LEARNING_RATE = 4.67e-4

    def __init__(
        self,
        num_leads: int,
        num_fiducial: int,
        num_tabular: int,
        num_classes: int = 26,
        branches: Sequence[str] = ALL_INPUTS,
        filters: Sequence[int] = (256, 128),
        kernels: Sequence[int] = (3, 7),
        dropout: float = 0.25,
        lstm_units: int = 128,
        attention_hidden: int = 64,
        dense: int = 256,
        metadata: bool = True,
        metadata_dense: int = 16,
        combined_dense: int = 128,
        tabular_hidden: int = 64,
        input_fs: float = 250.0,
        model_fs: float = 100.0,
    ) -> None:
        super().__init__()
        if len(filters) != len(kernels):
            raise ValueError(f"resconv_bilstm_attn: one kernel per block, got filters={filters}, kernels={kernels}")
        if metadata and num_tabular < DEMOGRAPHIC_WIDTH:
            raise ValueError(f"resconv_bilstm_attn: metadata needs the {DEMOGRAPHIC_WIDTH} age/sex tabular columns")
        self.branches = check_branches(branches, "resconv_bilstm_attn")
        self.inputs = SignalInputs(num_leads, num_fiducial, self.branches, input_fs, model_fs)
        blocks, c_in = [], self.inputs.channels
        for width, kernel in zip(filters, kernels):
            blocks.append(ResidualConvBlock(c_in, width, kernel, dropout))
            c_in = width
        self.blocks = nn.Sequential(*blocks)
        self.lstm = nn.LSTM(c_in, lstm_units, batch_first=True, bidirectional=True)
        self.attention = AdditiveAttention(2 * lstm_units, attention_hidden)
        self.dense = nn.Sequential(nn.Linear(2 * lstm_units, dense), nn.ReLU(), nn.Dropout(dropout))
        self.metadata: nn.Module | None = None
        width = dense
        if metadata:
            self.metadata = nn.Sequential(nn.Linear(DEMOGRAPHIC_WIDTH, metadata_dense), nn.ReLU())
            width += metadata_dense
        self.fusion = TabularFusion(num_tabular, "tabular" in self.branches, tabular_hidden)
        self.combined = nn.Sequential(
            nn.Linear(width + self.fusion.width, combined_dense), nn.ReLU(), nn.Dropout(dropout)
        )
        self.classifier = nn.Linear(combined_dense, num_classes)
        self.last_attention: dict[str, torch.Tensor] = {}

    def forward(self, signal: torch.Tensor, fiducials: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        features = self.blocks(self.inputs(signal, fiducials)).transpose(1, 2)  # (B, T', C)
        sequence, _ = self.lstm(features)
        pooled, weights = self.attention(sequence)
        self.last_attention = {"time": weights.detach()}
        parts = [self.dense(pooled)]
        if self.metadata is not None:
            parts.append(self.metadata(tabular[:, -DEMOGRAPHIC_WIDTH:].to(pooled.dtype)))
        combined = self.fusion(torch.cat(parts, dim=1), tabular)
        return self.classifier(self.combined(combined))
