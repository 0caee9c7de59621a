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
are trained by the same code. Two regularisers of the fused head (on small data the raw
branch, with the most weights and the fewest examples per class, drove the decisions):

* ``branch_dropout`` p: in training, each record's embedding of each branch is zeroed with
  probability p (never all of them), so the head cannot rely on any single branch;
* ``auxiliary_loss`` w: each branch also has its own linear classifier, whose loss (weight w, the
  trainer adds it through :attr:`DualBranchCRNN.auxiliary_logits`) makes every branch learn the
  classes on its own, not only what the others miss.
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
        branch_dropout: float = 0.0,
        auxiliary_loss: float = 0.0,
    ) -> None:
        super().__init__()
        unknown = set(branches) - set(ALL_BRANCHES)
        if unknown or not branches:
            raise ValueError(f"branches must be a non-empty subset of {ALL_BRANCHES}, got {tuple(branches)}")
        self.branches = tuple(b for b in ALL_BRANCHES if b in branches)
        if not 0.0 <= branch_dropout < 1.0:
            raise ValueError(f"branch_dropout must be in [0, 1), got {branch_dropout}")
        self.branch_dropout = float(branch_dropout)
        self.auxiliary_loss_weight = float(auxiliary_loss)
        self.auxiliary_logits: list[torch.Tensor] = []
        widths: list[int] = []
        width = 0
        if "raw" in self.branches:
            self.raw = ConvRecurrentBranch(num_leads, raw_widths, rnn_hidden=rnn_hidden)
            widths.append(self.raw.out_dim)
        if "fiducial" in self.branches:
            self.fiducial = ConvRecurrentBranch(num_fiducial, fiducial_widths, rnn_hidden=rnn_hidden // 2)
            widths.append(self.fiducial.out_dim)
        if "tabular" in self.branches:
            self.tabular = nn.Sequential(
                nn.Linear(num_tabular, tabular_hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(tabular_hidden, tabular_hidden),
                nn.ReLU(),
            )
            widths.append(tabular_hidden)
        width = sum(widths)
        self.auxiliary_heads = (
            nn.ModuleList([nn.Linear(w, num_classes) for w in widths]) if auxiliary_loss > 0 else None
        )
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
        if self.training and self.auxiliary_heads is not None:
            self.auxiliary_logits = [head(part) for head, part in zip(self.auxiliary_heads, parts, strict=True)]
        if self.training and self.branch_dropout > 0 and len(parts) > 1:
            parts = self._drop_branches(parts)
        return self.head(torch.cat(parts, dim=1))

    def _drop_branches(self, parts: list[torch.Tensor]) -> list[torch.Tensor]:
        """Zero each record's branch embeddings with probability ``branch_dropout``, keeping at least one."""
        batch, count = parts[0].shape[0], len(parts)
        keep = torch.rand(batch, count, device=parts[0].device) >= self.branch_dropout
        none_kept = ~keep.any(dim=1)
        rescue = torch.randint(count, (batch,), device=parts[0].device)
        keep[none_kept, rescue[none_kept]] = True
        return [part * keep[:, i : i + 1].to(part.dtype) for i, part in enumerate(parts)]
