"""Seed 003: IMLE-Net, attention at the beat, rhythm and channel (lead) level (likith012/IMLE-Net).

Each lead of a 10-s, 100 Hz record (1000 samples) is cut into 20 segments of 50 samples ("beats";
fixed 0.5-s segments, not delineated beats). A shared residual CNN encodes every segment, beat
attention pools it to one vector, a BiLSTM over the 20 segments with rhythm attention pools a
lead, and channel attention pools the leads; a linear layer gives the logits. Attention: tanh
energy with a per-position bias (as the seed's code has it, so the lengths are fixed: the input is
resampled to ``model_fs`` and cut or zero-padded to ``beats * beat_len``), dimension 64.

``last_attention`` holds the weights of the last call: ``beat`` (B, C, beats, positions),
``rhythm`` (B, C, beats), ``channel`` (B, C), the lead importance per record. With ``fiducial``
among ``branches`` the fiducial channels are extra "leads" with their own channel weight.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.attention import AdditiveAttention
from models.inputs import ALL_INPUTS, SignalInputs, TabularFusion, check_branches, fit_length
from models.registry import register


class SameConv1d(nn.Conv1d):
    """TensorFlow's ``padding="same"``: output length ceil(L / stride), extra padding on the right."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length, stride, kernel = x.shape[-1], self.stride[0], self.kernel_size[0]
        out = math.ceil(length / stride)
        total = max((out - 1) * stride + kernel - length, 0)
        return super().forward(F.pad(x, (total // 2, total - total // 2)))


class BeatResBlock(nn.Module):
    """conv(stride) -> ReLU -> BN -> conv, plus a 1x1 (strided) shortcut when the shape changes; add -> ReLU -> BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            SameConv1d(c_in, c_out, kernel, stride=stride),
            nn.ReLU(),
            nn.BatchNorm1d(c_out),
            SameConv1d(c_out, c_out, kernel),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = SameConv1d(c_in, c_out, 1, stride=stride)
        self.bn = nn.BatchNorm1d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(torch.relu(self.body(x) + self.shortcut(x)))


@register("imle_net")
class IMLENet(nn.Module):
    """IMLE-Net; ``forward`` returns logits (B, num_classes) and keeps the three attention maps."""

    def __init__(
        self,
        num_leads: int,
        num_fiducial: int,
        num_tabular: int,
        num_classes: int = 26,
        branches: Sequence[str] = ALL_INPUTS,
        beats: int = 20,
        beat_len: int = 50,
        filters: Sequence[int] = (32, 64, 128),
        blocks_per_stage: int = 2,
        kernel: int = 8,
        attention_dim: int = 64,
        lstm_units: int = 64,
        tabular_hidden: int = 64,
        input_fs: float = 250.0,
        model_fs: float = 100.0,
    ) -> None:
        super().__init__()
        self.branches = check_branches(branches, "imle_net")
        self.inputs = SignalInputs(num_leads, num_fiducial, self.branches, input_fs, model_fs)
        self.beats, self.beat_len = beats, beat_len
        layers: list[nn.Module] = [SameConv1d(1, filters[0], kernel), nn.ReLU()]
        c_in, positions = filters[0], beat_len
        for stage, width in enumerate(filters):
            for b in range(blocks_per_stage):
                stride = 2 if stage > 0 and b == 0 else 1
                layers.append(BeatResBlock(c_in, width, kernel, stride))
                c_in, positions = width, math.ceil(positions / stride)
        self.encoder = nn.Sequential(*layers)
        self.beat_attention = AdditiveAttention(c_in, attention_dim, positions)
        self.lstm = nn.LSTM(c_in, lstm_units, batch_first=True, bidirectional=True)
        self.rhythm_attention = AdditiveAttention(2 * lstm_units, attention_dim, beats)
        self.channel_attention = AdditiveAttention(2 * lstm_units, attention_dim, self.inputs.channels)
        self.fusion = TabularFusion(num_tabular, "tabular" in self.branches, tabular_hidden)
        self.classifier = nn.Linear(2 * lstm_units + self.fusion.width, num_classes)
        self.last_attention: dict[str, torch.Tensor] = {}

    def forward(self, signal: torch.Tensor, fiducials: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        x = fit_length(self.inputs(signal, fiducials), self.beats * self.beat_len)
        batch, channels = x.shape[:2]
        segments = x.reshape(batch * channels * self.beats, 1, self.beat_len)
        encoded = self.encoder(segments).transpose(1, 2)  # (B*C*beats, positions, D)
        beat_vectors, beat_weights = self.beat_attention(encoded)
        rhythm, _ = self.lstm(beat_vectors.reshape(batch * channels, self.beats, -1))
        lead_vectors, rhythm_weights = self.rhythm_attention(rhythm)
        record, channel_weights = self.channel_attention(lead_vectors.reshape(batch, channels, -1))
        self.last_attention = {
            "beat": beat_weights.detach().reshape(batch, channels, self.beats, -1),
            "rhythm": rhythm_weights.detach().reshape(batch, channels, self.beats),
            "channel": channel_weights.detach(),
        }
        return self.classifier(self.fusion(record, tabular))
