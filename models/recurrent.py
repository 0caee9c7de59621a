"""GRU, LSTM and bidirectional GRU with attention: the recurrent route of HemaxiN/DL_ECG_Classification.

The seed feeds z-scored leads I, II and V2 at 100 Hz (1000 steps of 3 values) to a batch-first
recurrent network of 128 hidden units. Unidirectional: the last step's output; bidirectional:
forward-last ‖ backward-first; with attention: a linear score per step, softmax over time,
weighted sum of the outputs. Then one linear layer. Layer counts and dropouts are the seed's saved
best models: GRU 3 layers / dropout .3, BiGRU 2 layers / dropout .5; LSTM 2 layers / dropout .3
(its default). Here the leads are whatever the lead set holds; the seed's 3-lead choice is a
``lead_sets`` setting. Input resampled to ``model_fs`` (100 Hz): 1000 sequential steps per 10-s
window, which is slow on CPU; a smaller ``model_fs`` trades resolution for speed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from models.inputs import ALL_INPUTS, SignalInputs, TabularFusion, check_branches
from models.registry import register


class RecurrentClassifier(nn.Module):
    """One recurrent network over the signal's time steps, pooled (last step or attention), then linear.

    The registered variants below differ only in these class constants: the cell, the default layer
    count and dropout, and the pooling. ``layers`` and ``dropout`` given as keyword arguments override them.
    """

    NAME = "recurrent"
    CELL = "gru"
    LAYERS = 2
    DROPOUT = 0.3
    BIDIRECTIONAL = False
    ATTENTION = False

    def __init__(
        self,
        num_leads: int,
        num_fiducial: int,
        num_tabular: int,
        num_classes: int = 26,
        branches: Sequence[str] = ALL_INPUTS,
        hidden: int = 128,
        layers: int | None = None,
        dropout: float | None = None,
        tabular_hidden: int = 64,
        input_fs: float = 250.0,
        model_fs: float = 100.0,
    ) -> None:
        super().__init__()
        layers = self.LAYERS if layers is None else int(layers)
        dropout = self.DROPOUT if dropout is None else float(dropout)
        self.branches = check_branches(branches, self.NAME)
        self.inputs = SignalInputs(num_leads, num_fiducial, self.branches, input_fs, model_fs)
        rnn = nn.GRU if self.CELL == "gru" else nn.LSTM
        self.rnn = rnn(
            self.inputs.channels,
            hidden,
            num_layers=layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
            bidirectional=self.BIDIRECTIONAL,
        )
        self.hidden, self.bidirectional = hidden, self.BIDIRECTIONAL
        width = hidden * (2 if self.BIDIRECTIONAL else 1)
        self.score = nn.Linear(width, 1) if self.ATTENTION else None
        self.fusion = TabularFusion(num_tabular, "tabular" in self.branches, tabular_hidden)
        self.classifier = nn.Linear(width + self.fusion.width, num_classes)
        self.last_attention: dict[str, torch.Tensor] = {}

    def pool(self, outputs: torch.Tensor) -> torch.Tensor:
        """(B, T, H*d) -> (B, H*d): attention, or last forward step ‖ first backward step."""
        if self.score is not None:
            weights = torch.softmax(self.score(outputs).squeeze(-1), dim=1)
            self.last_attention = {"time": weights.detach()}
            return torch.einsum("bt,btd->bd", weights, outputs)
        if not self.bidirectional:
            return outputs[:, -1]
        return torch.cat([outputs[:, -1, : self.hidden], outputs[:, 0, self.hidden :]], dim=1)

    def forward(self, signal: torch.Tensor, fiducials: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        sequence = self.inputs(signal, fiducials).transpose(1, 2)  # (B, T, C)
        outputs, _ = self.rnn(sequence)
        return self.classifier(self.fusion(self.pool(outputs), tabular))


@register("gru")
class GRUClassifier(RecurrentClassifier):
    """The seed's best unidirectional GRU: 3 layers of 128, dropout .3, last step."""

    NAME, CELL, LAYERS = "gru", "gru", 3


@register("lstm")
class LSTMClassifier(RecurrentClassifier):
    """The seed's LSTM at its defaults: 2 layers of 128, dropout .3, last step."""

    NAME, CELL = "lstm", "lstm"


@register("bigru_attn")
class BiGRUAttention(RecurrentClassifier):
    """The seed's best bidirectional GRU (2 layers of 128, dropout .5) with attention pooling over time."""

    NAME, DROPOUT, BIDIRECTIONAL, ATTENTION = "bigru_attn", 0.5, True, True
