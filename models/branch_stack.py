"""Separately trained networks combined by out-of-fold weights: the ``fusion: stacked`` model.

One head over the raw CRNN and the PQRST branches, trained end to end on a few hundred records,
lets the raw branch (many weights, few examples per class) drive decisions the PQRST branches alone
make better (the held-out evidence in docs/results/classification.md, "Fusion"). Stacking instead trains each branch
group as its own network and mixes their *probabilities* per class with weights fitted on
out-of-fold predictions (:mod:`ecgtrain.stacking`): a group that does not help a class gets
weight 0 for it, so the combination cannot be much worse than its best part on records like the
training ones. The weights are a buffer, saved with the parts' weights in one state dict, so the
stack loads, predicts and ensembles like any other registered architecture.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn

from models.inputs import ALL_INPUTS
from models.registry import build, register

#: Mixed probabilities are kept inside [EPS, 1 - EPS] before the log-odds.
EPS = 1e-6


@register("branch_stack")
class BranchStack(nn.Module):
    """Forward = logit(sum_g weights[g, c] * sigmoid(part_g(inputs))[c]); each part a whole network."""

    weights: torch.Tensor

    def __init__(
        self,
        num_leads: int,
        num_fiducial: int,
        num_tabular: int,
        num_classes: int = 26,
        branches: Sequence[str] = ALL_INPUTS,
        parts: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        """``parts``: ``{"architecture": name, "model_kwargs": {...}}`` per part (its own ``branches`` among
        them; default: the stack's ``branches``); default: ``dual_crnn`` on the raw signal and ``dual_crnn``
        on the PQRST branches. Built untrained with equal weights, which :mod:`ecgtrain.stacking` replaces."""
        super().__init__()
        parts = list(
            parts
            or [
                {"architecture": "dual_crnn", "model_kwargs": {"branches": ["raw"]}},
                {"architecture": "dual_crnn", "model_kwargs": {"branches": ["fiducial", "tabular"]}},
            ]
        )
        if len(parts) < 2:
            raise ValueError(f"branch_stack: needs at least two parts, got {len(parts)}")
        if any(part.get("architecture") == "branch_stack" for part in parts):
            raise ValueError("branch_stack: a part cannot itself be a branch_stack")
        shared = {"num_leads": num_leads, "num_fiducial": num_fiducial, "num_tabular": num_tabular}
        self.parts = nn.ModuleList(
            [
                build(
                    part["architecture"],
                    **{
                        **shared,
                        "num_classes": num_classes,
                        "branches": list(branches),
                        **part.get("model_kwargs", {}),
                    },
                )
                for part in parts
            ]
        )
        self.register_buffer("weights", torch.full((len(parts), num_classes), 1.0 / len(parts)))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        probabilities = torch.stack([torch.sigmoid(part(*inputs).float()) for part in self.parts])
        mixed = (self.weights.unsqueeze(1) * probabilities).sum(dim=0)
        return torch.logit(mixed.clamp(EPS, 1 - EPS))
