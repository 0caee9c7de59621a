"""The PTB-XL benchmark's strongest 1-D networks (Strodthoff et al. 2021, helme/ecg_ptbxl_benchmarking).

``resnet1d_wang``, ``inception1d`` and ``xresnet1d101`` as that benchmark built and trained them:
fastai-style concat-pooling head with one hidden layer of 128 (``lin_ftrs_head=[128]``, dropout
0.5), He-normal initialisation (``weight_init``, which also resets every batch norm to 1/0), input
at 100 Hz in 2.5-s crops (250 samples): a random crop per training example, and at evaluation the
maximum over crops every 1.25 s (the benchmark's ``aggregate_fn="max"`` over sliding windows).
Here that happens inside the network (``crop_seconds``; null = the whole window), on the trainer's
windows resampled to ``model_fs``; the predictor then averages a record's windows. All three are
fully convolutional with global pooling, so any length works.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from models.inputs import ALL_INPUTS, ConcatPoolHead, SignalInputs, TabularFusion, check_branches, kaiming_init
from models.registry import register


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Conv1d:
    return nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False)


class _BaselineNetwork(nn.Module):
    """Inputs -> backbone (B, C, T') -> concat-pool head; subclasses set ``self.backbone`` and its width."""

    def _setup_inputs(
        self,
        name: str,
        num_leads: int,
        num_fiducial: int,
        branches: Sequence[str],
        input_fs: float,
        model_fs: float,
        crop_seconds: float | None,
    ) -> int:
        self.branches = check_branches(branches, name)
        self.inputs = SignalInputs(num_leads, num_fiducial, self.branches, input_fs, model_fs)
        self.crop = None if crop_seconds is None else max(round(crop_seconds * model_fs), 1)
        return self.inputs.channels

    def _setup_head(
        self,
        channels: int,
        num_tabular: int,
        num_classes: int,
        head_hidden: Sequence[int],
        head_dropout: float,
        tabular_hidden: int,
    ) -> None:
        fusion = TabularFusion(num_tabular, "tabular" in self.branches, tabular_hidden)
        self.head = ConcatPoolHead(channels, num_classes, fusion, head_hidden, head_dropout)
        kaiming_init(self)

    backbone: nn.Module

    def forward(self, signal: torch.Tensor, fiducials: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        x = self.inputs(signal, fiducials)
        if self.crop is None or x.shape[-1] <= self.crop:
            return self.head(self.backbone(x), tabular)
        if self.training:
            starts = torch.randint(0, x.shape[-1] - self.crop + 1, (x.shape[0], 1, 1), device=x.device)
            index = (starts + torch.arange(self.crop, device=x.device)).expand(-1, x.shape[1], -1)
            return self.head(self.backbone(x.gather(2, index)), tabular)  # one random crop per example
        return self._max_over_crops(x, tabular)

    def _max_over_crops(self, x: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        """Logits of crops every crop/2 samples (the last one flush with the end), maximum per class."""
        assert self.crop is not None
        length, stride = x.shape[-1], max(self.crop // 2, 1)
        starts = list(range(0, length - self.crop + 1, stride))
        if starts[-1] != length - self.crop:
            starts.append(length - self.crop)
        crops = torch.stack([x[..., s : s + self.crop] for s in starts], dim=1)  # (B, n, C, crop)
        batch, count = crops.shape[:2]
        logits = self.head(self.backbone(crops.flatten(0, 1)), tabular.repeat_interleave(count, dim=0))
        return logits.view(batch, count, -1).amax(dim=1)


class BasicBlock1d(nn.Module):
    """torchvision's basic block in 1-D with two kernel sizes (5 then 3 in Wang's ResNet)."""

    def __init__(self, c_in: int, c_out: int, kernels: Sequence[int], stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(c_in, c_out, kernels[0], stride),
            nn.BatchNorm1d(c_out),
            nn.ReLU(),
            _conv(c_out, c_out, kernels[1]),
            nn.BatchNorm1d(c_out),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


@register("resnet1d_wang")
class ResNet1dWang(_BaselineNetwork):
    """Wang et al.'s 3-block time-series ResNet as the benchmark sized it (best on PTB-XL superdiagnostic, AUC .930).

    Stem conv k7 stride 1 to 128 channels, no pooling; three basic blocks of 128 channels with
    kernels (5, 3), the 2nd and 3rd strided by 2 (``fix_feature_dim``).
    """

    def __init__(
        self,
        num_leads: int,
        num_fiducial: int,
        num_tabular: int,
        num_classes: int = 26,
        branches: Sequence[str] = ALL_INPUTS,
        width: int = 128,
        kernels: Sequence[int] = (5, 3),
        stem_kernel: int = 7,
        blocks: int = 3,
        head_hidden: Sequence[int] = (128,),
        head_dropout: float = 0.5,
        tabular_hidden: int = 64,
        input_fs: float = 250.0,
        model_fs: float = 100.0,
        crop_seconds: float | None = 2.5,
    ) -> None:
        super().__init__()
        channels = self._setup_inputs(
            "resnet1d_wang", num_leads, num_fiducial, branches, input_fs, model_fs, crop_seconds
        )
        layers: list[nn.Module] = [_conv(channels, width, stem_kernel), nn.BatchNorm1d(width), nn.ReLU()]
        layers += [BasicBlock1d(width, width, kernels, 1 if i == 0 else 2) for i in range(blocks)]
        self.backbone = nn.Sequential(*layers)
        self._setup_head(width, num_tabular, num_classes, head_hidden, head_dropout, tabular_hidden)


class InceptionBlock1d(nn.Module):
    """Bottleneck, three long convolutions and a max-pool path, concatenated, then BN-ReLU (InceptionTime)."""

    def __init__(self, c_in: int, filters: int, kernels: Sequence[int], bottleneck: int) -> None:
        super().__init__()
        self.bottleneck: nn.Module = _conv(c_in, bottleneck, 1) if bottleneck > 0 else nn.Identity()
        width = bottleneck if bottleneck > 0 else c_in
        self.convs = nn.ModuleList([_conv(width, filters, k) for k in kernels])
        self.pool_path = nn.Sequential(nn.MaxPool1d(3, 1, padding=1), _conv(c_in, filters, 1))
        self.bn_relu = nn.Sequential(nn.BatchNorm1d((len(kernels) + 1) * filters), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bottled = self.bottleneck(x)
        return self.bn_relu(torch.cat([conv(bottled) for conv in self.convs] + [self.pool_path(x)], dim=1))


class InceptionBackbone(nn.Module):
    """``depth`` inception blocks with a 1x1-conv + BN residual shortcut around every three."""

    def __init__(
        self, c_in: int, filters: int, kernels: Sequence[int], bottleneck: int, depth: int, residual: bool
    ) -> None:
        super().__init__()
        if depth % 3:
            raise ValueError(f"inception1d: depth must be a multiple of 3, got {depth}")
        width = (len(kernels) + 1) * filters
        self.residual = residual
        self.blocks = nn.ModuleList(
            [InceptionBlock1d(c_in if d == 0 else width, filters, kernels, bottleneck) for d in range(depth)]
        )
        self.shortcuts = nn.ModuleList(
            [
                nn.Sequential(_conv(c_in if s == 0 else width, width, 1), nn.BatchNorm1d(width))
                for s in range(depth // 3)
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = x
        for d, block in enumerate(self.blocks):
            x = block(x)
            if self.residual and d % 3 == 2:
                x = torch.relu(x + self.shortcuts[d // 3](res))
                res = x
        return x


@register("inception1d")
class Inception1d(_BaselineNetwork):
    """InceptionTime in 1-D (best overall on PTB-XL "all statements", AUC .925).

    Benchmark call: ``kernel_size = 8 * 5 = 40`` -> kernels (39, 19, 9), depth 6, bottleneck 32,
    32 filters per path (128 channels), residual shortcuts every 3 blocks.
    """

    def __init__(
        self,
        num_leads: int,
        num_fiducial: int,
        num_tabular: int,
        num_classes: int = 26,
        branches: Sequence[str] = ALL_INPUTS,
        kernel_size: int = 40,
        depth: int = 6,
        bottleneck: int = 32,
        filters: int = 32,
        residual: bool = True,
        head_hidden: Sequence[int] = (128,),
        head_dropout: float = 0.5,
        tabular_hidden: int = 64,
        input_fs: float = 250.0,
        model_fs: float = 100.0,
        crop_seconds: float | None = 2.5,
    ) -> None:
        super().__init__()
        channels = self._setup_inputs(
            "inception1d", num_leads, num_fiducial, branches, input_fs, model_fs, crop_seconds
        )
        kernels = [k - 1 if k % 2 == 0 else k for k in (kernel_size, kernel_size // 2, kernel_size // 4)]
        self.backbone = InceptionBackbone(channels, filters, kernels, bottleneck, depth, residual)
        self._setup_head(4 * filters, num_tabular, num_classes, head_hidden, head_dropout, tabular_hidden)


class XResBlock(nn.Module):
    """fastai's xresnet bottleneck: 1x1 -> k (strided) -> 1x1; shortcut avg-pool then 1x1 conv when shapes change."""

    def __init__(self, c_in: int, mid: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()

        def conv_bn(a: int, b: int, k: int, s: int = 1, act: bool = True) -> list[nn.Module]:
            return [_conv(a, b, k, s), nn.BatchNorm1d(b)] + ([nn.ReLU()] if act else [])

        self.convs = nn.Sequential(
            *conv_bn(c_in, mid, 1), *conv_bn(mid, mid, kernel, stride), *conv_bn(mid, c_out, 1, act=False)
        )
        shortcut: list[nn.Module] = []
        if stride != 1:
            shortcut.append(nn.AvgPool1d(2, ceil_mode=True))
        if c_in != c_out:
            shortcut += conv_bn(c_in, c_out, 1, act=False)
        self.shortcut = nn.Sequential(*shortcut)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.convs(x) + self.shortcut(x))


@register("xresnet1d101")
class XResNet1d101(_BaselineNetwork):
    """fastai's xresnet101 in 1-D (PTB-XL "all" AUC .925, best on ICBEB2018).

    Stem: three k5 convolutions (32, 32, 64; the first strided 2) and max-pool 3/2. Stages of
    bottleneck blocks [3, 4, 23, 3], stage widths 64 (the benchmark's code keeps all four at 64,
    not torchvision's 64-512), expansion 4 -> 256 channels, kernel 5, stages 2-4 strided 2.
    """

    def __init__(
        self,
        num_leads: int,
        num_fiducial: int,
        num_tabular: int,
        num_classes: int = 26,
        branches: Sequence[str] = ALL_INPUTS,
        layers: Sequence[int] = (3, 4, 23, 3),
        widths: Sequence[int] = (64, 64, 64, 64),
        stem_widths: Sequence[int] = (32, 32, 64),
        expansion: int = 4,
        kernel_size: int = 5,
        head_hidden: Sequence[int] = (128,),
        head_dropout: float = 0.5,
        tabular_hidden: int = 64,
        input_fs: float = 250.0,
        model_fs: float = 100.0,
        crop_seconds: float | None = 2.5,
    ) -> None:
        super().__init__()
        if len(layers) != len(widths):
            raise ValueError(f"xresnet1d101: one width per stage needed, got layers={layers}, widths={widths}")
        channels = self._setup_inputs(
            "xresnet1d101", num_leads, num_fiducial, branches, input_fs, model_fs, crop_seconds
        )
        modules: list[nn.Module] = []
        for i, width in enumerate(stem_widths):
            previous = channels if i == 0 else stem_widths[i - 1]
            modules += [_conv(previous, width, kernel_size, 2 if i == 0 else 1), nn.BatchNorm1d(width), nn.ReLU()]
        modules.append(nn.MaxPool1d(3, 2, padding=1))
        c_in = stem_widths[-1]
        for stage, (count, width) in enumerate(zip(layers, widths)):
            for b in range(count):
                stride = 2 if stage > 0 and b == 0 else 1
                modules.append(XResBlock(c_in, width, width * expansion, kernel_size, stride))
                c_in = width * expansion
        self.backbone = nn.Sequential(*modules)
        self._setup_head(c_in, num_tabular, num_classes, head_hidden, head_dropout, tabular_hidden)
