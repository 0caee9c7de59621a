"""Seed 000: ResU blocks, DenseNet blocks, multi-head self-attention, global max pooling (seorim0/ResU_Dense).

Input 12 x 4096 at 500 Hz (the seed z-scores, resamples to 500 Hz and crops/pads to 4096). Stem
conv k15 stride 2 to 256 channels; four ResU blocks (small U-Nets with residual connection, depths
6, 5, 4, 3), each halving the length (2048 -> 128); two DenseNet blocks of 16 bottleneck layers
(growth 12) with 1x1 transitions back to 256 channels; dropout 0.5; 8-head self-attention over
the 128 steps; global max pool; linear to the classes.

Done right where the seed is not: its random crop also ran at validation and test time; here the
network takes the first ``model_samples`` samples (the trainer already draws random windows while
training), or the whole window when ``model_samples`` is null. Its left-pad-by-one trick for
lengths not divisible by 4 is replaced by cropping each decoder output to its skip's length,
which works for any length. The attention weights (averaged over heads) are kept in
``last_attention["self"]`` (B, steps, steps).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from models.inputs import ALL_INPUTS, SignalInputs, TabularFusion, check_branches, fit_length
from models.registry import register


def _conv_bn_act(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm1d(c_out),
        nn.LeakyReLU(0.01),
    )


class ResUBlock(nn.Module):
    """A U-Net of ``depth`` strided encoders and transposed-conv decoders around a residual input
    convolution, then average-pool 2 and a 1x1 convolution."""

    def __init__(self, channels: int, mid: int, depth: int, kernel: int = 9) -> None:
        super().__init__()
        self.inlet = _conv_bn_act(channels, channels, kernel)
        self.encoders = nn.ModuleList(
            [_conv_bn_act(channels if i == 0 else mid, mid, kernel, stride=2) for i in range(depth)]
        )
        self.bottleneck = _conv_bn_act(mid, mid, kernel)
        self.decoders = nn.ModuleList(
            [
                nn.Sequential(
                    nn.ConvTranspose1d(
                        2 * mid,
                        channels if i == 0 else mid,
                        kernel,
                        stride=2,
                        padding=kernel // 2,
                        output_padding=1,
                        bias=False,
                    ),
                    nn.BatchNorm1d(channels if i == 0 else mid),
                    nn.LeakyReLU(0.01),
                )
                for i in range(depth)
            ]
        )
        self.outlet = nn.Sequential(nn.AvgPool1d(2), nn.Conv1d(channels, channels, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_in = self.inlet(x)
        skips, h = [], x_in
        for encoder in self.encoders:
            h = encoder(h)
            skips.append(h)
        h = self.bottleneck(h)
        for i in reversed(range(len(self.decoders))):
            target = skips[i - 1].shape[-1] if i > 0 else x_in.shape[-1]
            h = self.decoders[i](torch.cat([h, skips[i]], dim=1))[..., :target]
        return self.outlet(h + x_in)


class DenseBlock(nn.Module):
    """``layers`` bottleneck layers (BN-ReLU-1x1 to 4*growth, BN-ReLU-k3 to growth), each input the concat of all before."""

    def __init__(self, channels: int, layers: int, growth: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [
                nn.Sequential(
                    nn.BatchNorm1d(channels + i * growth),
                    nn.ReLU(),
                    nn.Conv1d(channels + i * growth, 4 * growth, 1, bias=False),
                    nn.BatchNorm1d(4 * growth),
                    nn.ReLU(),
                    nn.Conv1d(4 * growth, growth, 3, padding=1, bias=False),
                )
                for i in range(layers)
            ]
        )
        self.out_channels = channels + layers * growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)
        return x


def _transition(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm1d(c_in), nn.ReLU(), nn.Conv1d(c_in, c_out, 1, bias=False))


@register("resu_dense_mhsa")
class ResUDenseMHSA(nn.Module):
    """Seed 000's network (7.2 M parameters at its 12-lead, 26-class size)."""

    def __init__(
        self,
        num_leads: int,
        num_fiducial: int,
        num_tabular: int,
        num_classes: int = 26,
        branches: Sequence[str] = ALL_INPUTS,
        width: int = 256,
        mid: int = 64,
        depths: Sequence[int] = (6, 5, 4, 3),
        dense_layers: int = 16,
        growth: int = 12,
        heads: int = 8,
        dropout: float = 0.5,
        tabular_hidden: int = 64,
        input_fs: float = 250.0,
        model_fs: float = 500.0,
        model_samples: int | None = 4096,
    ) -> None:
        super().__init__()
        self.branches = check_branches(branches, "resu_dense_mhsa")
        self.inputs = SignalInputs(num_leads, num_fiducial, self.branches, input_fs, model_fs)
        self.model_samples = model_samples
        self.stem = nn.Sequential(
            nn.Conv1d(self.inputs.channels, width, 15, stride=2, padding=7, bias=False),
            nn.BatchNorm1d(width),
            nn.LeakyReLU(0.01),
        )
        self.resu = nn.Sequential(*[ResUBlock(width, mid, depth) for depth in depths])
        first = DenseBlock(width, dense_layers, growth)
        second = DenseBlock(first.out_channels // 2, dense_layers, growth)
        self.dense = nn.Sequential(
            first,
            _transition(first.out_channels, first.out_channels // 2),
            second,
            _transition(second.out_channels, width),
        )
        self.dropout = nn.Dropout(dropout)
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.fusion = TabularFusion(num_tabular, "tabular" in self.branches, tabular_hidden)
        self.classifier = nn.Linear(width + self.fusion.width, num_classes)
        self.last_attention: dict[str, torch.Tensor] = {}

    def forward(self, signal: torch.Tensor, fiducials: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        x = self.inputs(signal, fiducials)
        if self.model_samples is not None:
            x = fit_length(x, self.model_samples)
        steps = self.dropout(self.dense(self.resu(self.stem(x)))).transpose(1, 2)  # (B, T', width)
        attended, weights = self.attention(steps, steps, steps, need_weights=True)
        self.last_attention = {"self": weights.detach()}
        pooled = attended.amax(dim=1)
        return self.classifier(self.fusion(pooled, tabular))
