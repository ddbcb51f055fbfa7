"""MobileNetV2 adapted to 32x32 inputs, as in the CIFAR-100 distillation benchmark.

Sandler et al., CVPR 2018, as CRD's ``mobile_half`` (mdistiller's ``MobileNetV2``); see
configs/classification/cifar100/README.md.
"""
from typing import Sequence, Tuple

import torch
import torch.nn as nn

from mmdet.registry import MODELS

from .cifar_base import CifarBackbone

__all__ = ['CifarMobileNetV2']

#: (expansion placeholder flag, channels, repeats, first stride); an expansion of None means T.
_SETTINGS: Sequence[Tuple[object, int, int, int]] = (
    (1, 16, 1, 1),
    (None, 24, 2, 1),
    (None, 32, 3, 2),
    (None, 64, 4, 2),
    (None, 96, 3, 1),
    (None, 160, 3, 2),
    (None, 320, 1, 1),
)


class _InvertedResidual(nn.Module):
    """Expand (1x1, ``expand_ratio``) -> depth-wise (3x3, ``stride``) -> project (1x1,
    linear), residual if shapes match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        self.use_residual = stride == 1 and in_channels == out_channels
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


@MODELS.register_module()
class CifarMobileNetV2(CifarBackbone):
    """MobileNetV2 for 32x32 images returning class logits.

    :meth:`forward_features` returns the pooled feature (N, 1280) and the maps of the stem (16x16)
    and of block groups 1 (16x16), 2 (8x8), 4 (4x4) and 6 (2x2).

    Args:
        expand_ratio (int): Expansion factor T of the blocks (except the first). Defaults to 6.
        width_mult (float): Width multiplier of every block and of the stem. Defaults to 0.5.
        num_classes, in_channels (int): Classes of the classifier; input image channels.
    """

    stages_name = 'groups'
    feature_stages = (1, 2, 4, 6)

    def __init__(self, expand_ratio: int = 6, width_mult: float = 0.5, num_classes: int = 100,
                 in_channels: int = 3) -> None:
        super().__init__('CifarMobileNetV2', num_classes)
        if not isinstance(expand_ratio, int) or expand_ratio < 1:
            raise ValueError('CifarMobileNetV2: expand_ratio must be a positive int, got '
                             f'{expand_ratio!r}.')
        if not width_mult > 0:
            raise ValueError(f'CifarMobileNetV2: width_mult must be > 0, got {width_mult!r}.')
        channels = int(32 * width_mult)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, 2, 1, bias=False), nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True))
        groups = []
        for t, c, n, s in _SETTINGS:
            t = expand_ratio if t is None else t
            group, channels = self.make_stages(
                lambda cin, cout, stride: _InvertedResidual(cin, cout, stride, t), channels,
                [int(c * width_mult)], [s], n)
            groups.append(group[0])
        self.groups = nn.ModuleList(groups)
        last = int(1280 * width_mult) if width_mult > 1.0 else 1280
        self.conv_last = nn.Sequential(
            nn.Conv2d(channels, last, 1, bias=False), nn.BatchNorm2d(last), nn.ReLU(inplace=True))
        self.feat_dim = last
        self.fc = nn.Linear(last, num_classes)
        self._init_weights(lambda fc: (nn.init.normal_(fc.weight, 0, 0.01),
                                       nn.init.zeros_(fc.bias)))
