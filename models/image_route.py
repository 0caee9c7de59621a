"""Seed 002's image route: every lead as GAF, MTF and recurrence-plot images, read by a 2-D CNN.

The network takes the trainer's signal windows like every other, resamples them to ``model_fs``
(the seed's 100 Hz) and turns them into uint8 images with :mod:`ecgsignal.images` (numpy,
vectorised, cached per window content: validation windows are converted once), then /255 as the
seed loaded them. Images carry no gradient, so they are computed outside autograd.

* ``image_alexnet``: the seed's AlexNet (``nb`` base filters, the README's best nb = 16, no
  dropout): C nb k11 s4, max-pool 3/2, C 2nb k5, max-pool, C 4nb k3, C 8nb k3, C 256 k3, max-pool,
  average-pool to 6 x 6 -> FC 9216 -> 4096 -> 2048 -> classes.
* ``image_resnet``: the seed's ResNet-50 in 2-D: stem C16 k7 s2 + max-pool, bottleneck stages
  [3, 4, 6, 3] of widths 16/32/64/128 (x4), global average pool, linear.

The seed used leads I, II, V2 (9 channels); here 3 channels per lead of whatever lead set is
trained (and per fiducial channel, when ``fiducial`` is among ``branches``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from ecgsignal.images import ImageCache
from models.inputs import ALL_INPUTS, SignalInputs, TabularFusion, check_branches
from models.registry import register


class LeadImages(nn.Module):
    """(B, C, T) float -> (B, 3C, S, S) float in [0, 1], through a per-window cache; no parameters."""

    def __init__(self, size: int, cache_windows: int) -> None:
        super().__init__()
        self.size = size
        self.cache = ImageCache(cache_windows)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = self.cache.images(x.detach().float().cpu().numpy(), self.size)
        return torch.from_numpy(images).to(x.device, torch.float32) / 255.0


class _ImageNetwork(nn.Module):
    """Inputs -> images -> ``self.cnn`` features (B, D) -> tabular fusion -> ``self.classifier``."""

    cnn: nn.Module
    fusion: TabularFusion
    classifier: nn.Module

    def _setup_inputs(
        self,
        name: str,
        num_leads: int,
        num_fiducial: int,
        branches: Sequence[str],
        input_fs: float,
        model_fs: float,
        image_size: int,
        cache_windows: int,
    ) -> int:
        self.branches = check_branches(branches, name)
        self.inputs = SignalInputs(num_leads, num_fiducial, self.branches, input_fs, model_fs)
        self.images = LeadImages(image_size, cache_windows)
        return 3 * self.inputs.channels

    def forward(self, signal: torch.Tensor, fiducials: torch.Tensor, tabular: torch.Tensor) -> torch.Tensor:
        features = self.cnn(self.images(self.inputs(signal, fiducials)))
        return self.classifier(self.fusion(features, tabular))


@register("image_alexnet")
class ImageAlexNet(_ImageNetwork):
    """Seed 002's AlexNet on the lead images."""

    def __init__(
        self,
        num_leads: int,
        num_fiducial: int,
        num_tabular: int,
        num_classes: int = 26,
        branches: Sequence[str] = ALL_INPUTS,
        nb: int = 16,
        fc: Sequence[int] = (4096, 2048),
        dropout: float = 0.0,
        image_size: int = 256,
        cache_windows: int = 128,
        tabular_hidden: int = 64,
        input_fs: float = 250.0,
        model_fs: float = 100.0,
    ) -> None:
        super().__init__()
        channels = self._setup_inputs(
            "image_alexnet", num_leads, num_fiducial, branches, input_fs, model_fs, image_size, cache_windows
        )
        self.cnn = nn.Sequential(
            nn.Conv2d(channels, nb, 11, stride=4, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Dropout2d(dropout),
            nn.Conv2d(nb, 2 * nb, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.Dropout2d(dropout),
            nn.Conv2d(2 * nb, 4 * nb, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(4 * nb, 8 * nb, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8 * nb, 256, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(3, 2),
            nn.AdaptiveAvgPool2d(6),
            nn.Flatten(),
        )
        self.fusion = TabularFusion(num_tabular, "tabular" in self.branches, tabular_hidden)
        self.classifier = nn.Sequential(
            nn.Linear(256 * 36 + self.fusion.width, fc[0]),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(fc[0], fc[1]),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(fc[1], num_classes),
        )


class Bottleneck2d(nn.Module):
    """torchvision's ResNet bottleneck: 1x1, 3x3 (strided), 1x1 to 4x width, projection shortcut when needed."""

    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__()
        c_out = 4 * width
        self.body = nn.Sequential(
            nn.Conv2d(c_in, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


@register("image_resnet")
class ImageResNet(_ImageNetwork):
    """Seed 002's narrow ResNet-50 on the lead images."""

    def __init__(
        self,
        num_leads: int,
        num_fiducial: int,
        num_tabular: int,
        num_classes: int = 26,
        branches: Sequence[str] = ALL_INPUTS,
        stem: int = 16,
        layers: Sequence[int] = (3, 4, 6, 3),
        widths: Sequence[int] = (16, 32, 64, 128),
        image_size: int = 256,
        cache_windows: int = 128,
        tabular_hidden: int = 64,
        input_fs: float = 250.0,
        model_fs: float = 100.0,
    ) -> None:
        super().__init__()
        if len(layers) != len(widths):
            raise ValueError(f"image_resnet: one width per stage needed, got layers={layers}, widths={widths}")
        channels = self._setup_inputs(
            "image_resnet", num_leads, num_fiducial, branches, input_fs, model_fs, image_size, cache_windows
        )
        modules: list[nn.Module] = [
            nn.Conv2d(channels, stem, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(stem),
            nn.ReLU(),
            nn.MaxPool2d(3, 2, padding=1),
        ]
        c_in = stem
        for stage, (count, width) in enumerate(zip(layers, widths)):
            for b in range(count):
                modules.append(Bottleneck2d(c_in, width, 2 if stage > 0 and b == 0 else 1))
                c_in = 4 * width
        self.cnn = nn.Sequential(*modules, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fusion = TabularFusion(num_tabular, "tabular" in self.branches, tabular_hidden)
        self.classifier = nn.Linear(c_in + self.fusion.width, num_classes)


@register("image_vgg")
class ImageVGG(_ImageNetwork):
    """Seed 002's VGG16-like network: 2 x C16, MP, 2 x C32, MP, 3 x C64, MP -> FC 65536 -> 4096 -> 4096 -> classes.

    The seed's dropouts (.3 after the convolution stages, .5 in the classifier) were functional
    calls left active at evaluation; here they are modules, off in eval mode. ``pool`` is the
    side of the feature map fed to the classifier (32 at 256² images, as the seed's 65536 = 64·32²);
    at the seed's size the classifier alone has 285 M parameters.
    """

    def __init__(
        self,
        num_leads: int,
        num_fiducial: int,
        num_tabular: int,
        num_classes: int = 26,
        branches: Sequence[str] = ALL_INPUTS,
        stages: Sequence[Sequence[int]] = ((16, 16), (32, 32), (64, 64, 64)),
        fc: Sequence[int] = (4096, 4096),
        pool: int = 32,
        conv_dropout: float = 0.3,
        fc_dropout: float = 0.5,
        image_size: int = 256,
        cache_windows: int = 128,
        tabular_hidden: int = 64,
        input_fs: float = 250.0,
        model_fs: float = 100.0,
    ) -> None:
        super().__init__()
        c_in = self._setup_inputs(
            "image_vgg", num_leads, num_fiducial, branches, input_fs, model_fs, image_size, cache_windows
        )
        modules: list[nn.Module] = []
        for widths in stages:
            for width in widths:
                modules += [nn.Conv2d(c_in, width, 3, padding=1), nn.ReLU()]
                c_in = width
            modules.append(nn.MaxPool2d(2))
        modules += [nn.Dropout(conv_dropout), nn.AdaptiveAvgPool2d(pool), nn.Flatten()]
        self.cnn = nn.Sequential(*modules)
        self.fusion = TabularFusion(num_tabular, "tabular" in self.branches, tabular_hidden)
        self.classifier = nn.Sequential(
            nn.Linear(c_in * pool * pool + self.fusion.width, fc[0]),
            nn.ReLU(),
            nn.Dropout(fc_dropout),
            nn.Linear(fc[0], fc[1]),
            nn.ReLU(),
            nn.Dropout(fc_dropout),
            nn.Linear(fc[1], num_classes),
        )
