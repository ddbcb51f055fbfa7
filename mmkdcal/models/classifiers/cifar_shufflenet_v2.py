"""ShuffleNetV2 adapted to 32x32 inputs, as in the CIFAR-100 distillation benchmark.

Ma et al., ECCV 2018, as CRD's ``models/ShuffleNetv2.py`` (mdistiller's ``ShuffleV2``); see
configs/classification/cifar100/README.md.
"""
from typing import Dict, Tuple

import torch
import torch.nn as nn

from mmdet.registry import MODELS

from .cifar_base import CifarBackbone

__all__ = ['CifarShuffleNetV2', 'CIFAR_SHUFFLENETV2_SIZES']

#: net_size -> (stage widths + final width, basic units per stage)
CIFAR_SHUFFLENETV2_SIZES: Dict[float, Tuple[Tuple[int, int, int, int], Tuple[int, int, int]]] = {
    0.5: ((48, 96, 192, 1024), (3, 7, 3)),
    1.0: ((116, 232, 464, 1024), (3, 7, 3)),
    1.5: ((176, 352, 704, 1024), (3, 7, 3)),
    2.0: ((224, 488, 976, 2048), (3, 7, 3)),
}


def channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    """Interleave the channels of ``groups`` equal groups: output channel ``i*groups + j`` is
    input channel ``j*c + i``."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
             relu: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _BasicUnit(nn.Module):
    """Channel-split unit: identity on one half, 1x1 -> dw3x3 -> 1x1 on the other, shuffle."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.branch = nn.Sequential(
            _conv_bn(half, half, 1),
            _conv_bn(half, half, 3, groups=half, relu=False),
            _conv_bn(half, half, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[1] // 2
        kept, processed = x[:, :half], x[:, half:]
        return channel_shuffle(torch.cat([kept, self.branch(processed)], 1))


class _DownUnit(nn.Module):
    """Stride-2 unit: two branches on the full input, each giving half of ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = out_channels // 2
        self.left = nn.Sequential(
            _conv_bn(in_channels, in_channels, 3, 2, groups=in_channels, relu=False),
            _conv_bn(in_channels, mid, 1))
        self.right = nn.Sequential(
            _conv_bn(in_channels, mid, 1),
            _conv_bn(mid, mid, 3, 2, groups=mid, relu=False),
            _conv_bn(mid, mid, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(torch.cat([self.left(x), self.right(x)], 1))


@MODELS.register_module()
class CifarShuffleNetV2(CifarBackbone):
    """ShuffleNetV2 for 32x32 images returning class logits.

    :meth:`forward_features` returns the maps of the stem (32x32) and stages 1-3 (16x16, 8x8,
    4x4).

    Args:
        net_size (float): Width setting, one of 0.5, 1.0, 1.5, 2.0. Defaults to 1.0 (``ShuffleV2``
            of the distillation benchmark).
        num_classes, in_channels (int): Classes of the classifier; input image channels.
    """

    def __init__(self, net_size: float = 1.0, num_classes: int = 100, in_channels: int = 3) -> None:
        super().__init__('CifarShuffleNetV2', num_classes)
        if float(net_size) not in CIFAR_SHUFFLENETV2_SIZES:
            raise ValueError(f'CifarShuffleNetV2: net_size must be one of '
                             f'{sorted(CIFAR_SHUFFLENETV2_SIZES)}, got {net_size!r}.')
        widths, num_units = CIFAR_SHUFFLENETV2_SIZES[float(net_size)]
        self.net_size = float(net_size)
        self.stem = _conv_bn(in_channels, 24, 1)
        channels = 24
        stages = []
        for width, units in zip(widths[:3], num_units):
            stages.append(nn.Sequential(_DownUnit(channels, width),
                                        *[_BasicUnit(width) for _ in range(units)]))
            channels = width
        self.stages = nn.ModuleList(stages)
        self.conv_last = _conv_bn(channels, widths[3], 1)
        self.feat_dim = widths[3]
        self.fc = nn.Linear(widths[3], num_classes)
