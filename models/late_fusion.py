"""Seed 002's late fusion: a small network over the class probabilities of a recurrent and an image model.

The seed trained its BiGRU and its AlexNet separately, froze them, and fitted Linear(8 -> 512),
ReLU, dropout, Linear(512 -> 4) on their concatenated sigmoid outputs. ``late_fusion`` holds both
members (any registered names, ``bigru_attn`` and ``image_alexnet`` by default) and that head.

Our one trainer fits one network in one stage, so by default the members learn together with the
head (end to end through the probabilities). The seed's two-stage recipe is ``freeze_members``
plus :meth:`LateFusion.load_members` with the members' trained weights before training the head;
frozen members stay in eval mode and get no gradient. With ``tabular`` on, the tabular embedding
joins the probabilities at the head; the members see the signal inputs of ``branches``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from models.inputs import ALL_INPUTS, TabularFusion, check_branches
from models.registry import build, register


@register("late_fusion")
class LateFusion(nn.Module):
    """Members' sigmoid outputs (concatenated) -> Linear(hidden) -> ReLU -> dropout -> Linear(classes)."""

    def __init__(
        self,
        num_leads: int,
        num_fiducial: int,
        num_tabular: int,
        num_classes: int = 26,
        branches: Sequence[str] = ALL_INPUTS,
        members: Mapping[str, Mapping[str, Any]] | None = None,
        hidden: int = 512,
        dropout: float = 0.5,
        freeze_members: bool = False,
        tabular_hidden: int = 64,
    ) -> None:
        super().__init__()
        self.branches = check_branches(branches, "late_fusion")
        members = dict(members or {"bigru_attn": {}, "image_alexnet": {}})
        if len(members) < 2 or "late_fusion" in members:
            raise ValueError(f"late_fusion: needs at least two member architectures, got {sorted(members)}")
        signal_branches = [b for b in self.branches if b != "tabular"]
        self.members = nn.ModuleDict(
            {
                name: build(
                    name,
                    num_leads=num_leads,
                    num_fiducial=num_fiducial,
                    num_tabular=num_tabular,
                    num_classes=num_classes,
                    branches=signal_branches,
                    **dict(kwargs),
                )
                for name, kwargs in members.items()
            }
        )
        self.freeze_members = freeze_members
        if freeze_members:
            self.members.requires_grad_(False)
        self.fusion = TabularFusion(num_tabular, "tabular" in self.branches, tabular_hidden)
        self.head = nn.Sequential(
            nn.Linear(len(members) * num_classes + self.fusion.width, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def train(self, mode: bool = True) -> LateFusion:
        """Frozen members stay in eval mode (fixed batch-norm statistics, no dropout), as the seed froze them."""
        super().train(mode)
        if self.freeze_members:
            self.members.eval()
        return self

    def load_members(self, states: Mapping[str, Mapping[str, torch.Tensor]]) -> None:
        """Load trained members' weights (name -> state dict), e.g. from their model folders, before fitting the head."""
        unknown = set(states) - set(self.members)
        if unknown:
            raise KeyError(f"late_fusion: no member named {sorted(unknown)}; members are {sorted(self.members)}")
        for name, state in states.items():
            self.members[name].load_state_dict(state)

    def forward(self, signal: torch.Tensor, fiducials: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        probabilities = [torch.sigmoid(member(signal, fiducials, tabular)) for member in self.members.values()]
        return self.head(self.fusion(torch.cat(probabilities, dim=1), tabular))
