"""Wide residual networks for 32x32 inputs (WRN-d-k), as in the CIFAR-100 distillation benchmark.

Zagoruyko & Komodakis, BMVC 2016, as CRD's ``models/wrn.py`` and mdistiller; see
configs/classification/cifar100/README.md.
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdet.registry import MODELS

from .cifar_base import CifarBackbone, named_arch

__all__ = ['CifarWideResNet', 'CIFAR_WRN_ARCHS']

#: arch name -> (depth, widen_factor)
CIFAR_WRN_ARCHS: Dict[str, Tuple[int, int]] = {
    'wrn_16_1': (16, 1), 'wrn_16_2': (16, 2), 'wrn_40_1': (40, 1), 'wrn_40_2': (40, 2)}


class _PreActBlock(nn.Module):
    """Pre-activation basic block (BN-ReLU-conv3x3 with ``stride``, dropout ``drop_rate``,
    BN-ReLU-conv3x3); a projection shortcut reads the pre-activated input."""

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 drop_rate: float = 0.0) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.drop_rate = drop_rate
        self.shortcut: Optional[nn.Module] = None
        if in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        out = F.relu(self.bn2(self.conv1(pre)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        out = self.conv2(out)
        identity = x if self.shortcut is None else self.shortcut(pre)
        return out + identity


@MODELS.register_module()
class CifarWideResNet(CifarBackbone):
    """Wide ResNet WRN-depth-widen_factor for 32x32 images, returning class logits.

    Give either ``arch`` (``'wrn_40_2'``, ``'wrn_16_2'``, ...) or ``depth`` and ``widen_factor``.
    :meth:`forward_features` returns the stem and group outputs pre-activation, as the network is
    pre-activated; the final BN-ReLU is applied before pooling.

    Args:
        arch (str, optional): Named architecture, a key of :data:`CIFAR_WRN_ARCHS`.
        depth (int, optional): Depth 6n + 4 (n >= 1).
        widen_factor (int, optional): Width multiplier k.
        drop_rate (float): Dropout inside blocks (the benchmark's: 0).
        num_classes, in_channels (int): Classes of the classifier; input image channels.
    """

    def __init__(self, arch: Optional[str] = None, depth: Optional[int] = None,
                 widen_factor: Optional[int] = None, num_classes: int = 100, drop_rate: float = 0.0,
                 in_channels: int = 3) -> None:
        super().__init__('CifarWideResNet', num_classes)
        depth, widen_factor = named_arch('CifarWideResNet', arch, CIFAR_WRN_ARCHS,
                                         dict(depth=depth, widen_factor=widen_factor))
        if not isinstance(depth, int) or depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(f'CifarWideResNet: depth must be 6n+4 with n >= 1 (10, 16, 28, 40, '
                             f'...), got depth={depth!r}.')
        if not isinstance(widen_factor, int) or widen_factor < 1:
            raise ValueError('CifarWideResNet: widen_factor must be a positive int, got '
                             f'{widen_factor!r}.')
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f'CifarWideResNet: drop_rate must be in [0, 1), got {drop_rate!r}.')
        self.arch = arch
        self.depth = depth
        self.widen_factor = widen_factor
        widths = (16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        self.stages, self.feat_dim = self.make_stages(
            lambda cin, cout, stride: _PreActBlock(cin, cout, stride, drop_rate), 16, widths,
            (1, 2, 2), (depth - 4) // 6)
        self.bn_final = nn.BatchNorm2d(self.feat_dim)
        self.fc = nn.Linear(self.feat_dim, num_classes)
        self._init_weights(lambda fc: nn.init.zeros_(fc.bias))

    def stem_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The stem convolution (not activated)."""
        return self.conv1(x)

    def head_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The final BN-ReLU."""
        return F.relu(self.bn_final(x))
