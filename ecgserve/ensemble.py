"""k networks of one lead set as one: the mean of their probabilities.

The k-fold networks of a lead set (``folds`` setting) each saw a different 1/k of the records as
validation; averaging their probabilities cancels much of what each one overfitted, and the
thresholds tuned on their out-of-fold predictions are tuned for exactly this average. The module
returns logits (log-odds of the mean probability) so that it drops in wherever one network did, and
its state dict (``members.<i>.<name>``) is saved as one weights file per lead set.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn

import models

#: Probabilities are kept inside [EPS, 1 - EPS] before the log-odds, so a unanimous 0 or 1 stays finite.
EPS = 1e-6


class MeanProbability(nn.Module):
    """Forward = logit(mean_i sigmoid(member_i(inputs)))."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one network")
        self.members = nn.ModuleList(members)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if len(self.members) == 1:
            return self.members[0](*inputs)
        probabilities = torch.stack([torch.sigmoid(member(*inputs).float()) for member in self.members])
        return torch.logit(probabilities.mean(dim=0).clamp(EPS, 1 - EPS))


def build_ensemble(architecture: str, model_kwargs: dict[str, Any], members: int) -> MeanProbability:
    """An untrained ensemble of ``members`` networks of one architecture (for loading saved weights)."""
    return MeanProbability([models.build(architecture, **model_kwargs) for _ in range(members)])


def merge_state_dicts(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The ensemble's state dict from its members' (the layout :class:`MeanProbability` loads)."""
    return {f"members.{i}.{name}": value for i, state in enumerate(states) for name, value in state.items()}
