"""Building blocks shared by the networks: residual squeeze-excitation convolutions, a
convolutional-recurrent branch and attention pooling over time."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


class SqueezeExcite(nn.Module):
    """Channel gating from the time-averaged activation: lets a block weigh leads/filters per record."""

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=-1)))))
        return x * gate.unsqueeze(-1)


class ResidualBlock(nn.Module):
    """Two same-padded convolutions with batch norm, squeeze-excitation and a (strided) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 7, stride: int = 2, dropout: float = 0.1):
        super().__init__()
        pad = kernel // 2
        self.conv1 = nn.Conv1d(in_channels, out_channels, kernel, stride=stride, padding=pad, bias=False)
        self.bn1 = nn.BatchNorm1d(out_channels)
        self.conv2 = nn.Conv1d(out_channels, out_channels, kernel, padding=pad, bias=False)
        self.bn2 = nn.BatchNorm1d(out_channels)
        self.se = SqueezeExcite(out_channels)
        self.drop = nn.Dropout(dropout)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv1d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm1d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(self.drop(out))))
        return F.relu(out + self.shortcut(x))


class AttentionPool(nn.Module):
    """Weighted mean over time with learned weights: where in the record the evidence lies."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.project = nn.Linear(dim, max(dim // 2, 8))
        self.score = nn.Linear(max(dim // 2, 8), 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, T, D)
        weights = torch.softmax(self.score(torch.tanh(self.project(x))).squeeze(-1), dim=1)
        return torch.einsum("bt,btd->bd", weights, x)


class ConvRecurrentBranch(nn.Module):
    """Strided stem, residual SE stages, a bidirectional GRU and attention pooling.

    Convolutions shorten the sequence (by ``stem_stride * 2 ** len(widths)``) so the GRU, which is
    sequential and slow on CPU, runs over a few dozen steps per 10-s window.
    """

    def __init__(
        self,
        in_channels: int,
        widths: Sequence[int] = (32, 48, 64, 96),
        kernel: int = 7,
        stem_kernel: int = 11,
        stem_stride: int = 4,
        rnn_hidden: int = 64,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv1d(in_channels, widths[0], stem_kernel, stride=2, padding=stem_kernel // 2, bias=False),
            nn.BatchNorm1d(widths[0]),
            nn.ReLU(),
            nn.MaxPool1d(max(stem_stride // 2, 1)),
        )
        stages = []
        for previous, width in itertools.pairwise(widths):
            stages.append(ResidualBlock(previous, width, kernel=kernel, stride=2, dropout=dropout))
        self.stages = nn.Sequential(*stages)
        self.rnn = nn.GRU(widths[-1], rnn_hidden, batch_first=True, bidirectional=True)
        self.pool = AttentionPool(2 * rnn_hidden)
        self.out_dim = 2 * rnn_hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, T)
        features = self.stages(self.stem(x)).transpose(1, 2)  # (B, T', D)
        sequence, _ = self.rnn(features)
        return self.pool(sequence)
