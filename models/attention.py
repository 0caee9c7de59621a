"""Additive attention pooling that returns its weights, for networks whose attention is inspected.

e_t = tanh(x_t W + b), score_t = e_t·v, α = softmax over t, output Σ α_t x_t. IMLE-Net's code
gives ``b`` one row per position (``positions`` set): the bias then knows *where* in the sequence
a step is, which only makes sense for a fixed length; without ``positions`` the bias is shared
and any length works.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class AdditiveAttention(nn.Module):
    """(B, T, D) -> pooled (B, D) and weights (B, T)."""

    def __init__(self, dim: int, hidden: int = 64, positions: int | None = None) -> None:
        super().__init__()
        self.project = nn.Linear(dim, hidden, bias=False)
        self.positions = positions
        self.bias = nn.Parameter(torch.zeros(positions or 1, hidden))
        self.score = nn.Linear(hidden, 1, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.positions is not None and x.shape[1] != self.positions:
            raise ValueError(f"attention built for {self.positions} positions got a sequence of {x.shape[1]}")
        energy = torch.tanh(self.project(x) + self.bias)
        weights = torch.softmax(self.score(energy).squeeze(-1), dim=1)
        return torch.einsum("bt,btd->bd", weights, x), weights
