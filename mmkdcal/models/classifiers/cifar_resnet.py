"""ResNets for 32x32 inputs, in the layout of the CIFAR-100 distillation benchmark.

He et al., CVPR 2016, Sec. 4.2, with the widths of CRD's ``models/resnet.py`` (reused by
mdistiller); see configs/classification/cifar100/README.md.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdet.registry import MODELS

from .cifar_base import CifarBackbone, named_arch

__all__ = ['CifarResNet', 'CIFAR_RESNET_ARCHS']

#: arch name -> (depth, (stem, stage1, stage2, stage3) widths)
CIFAR_RESNET_ARCHS: Dict[str, Tuple[int, Tuple[int, int, int, int]]] = {
    'resnet8': (8, (16, 16, 32, 64)),
    'resnet14': (14, (16, 16, 32, 64)),
    'resnet20': (20, (16, 16, 32, 64)),
    'resnet32': (32, (16, 16, 32, 64)),
    'resnet44': (44, (16, 16, 32, 64)),
    'resnet56': (56, (16, 16, 32, 64)),
    'resnet110': (110, (16, 16, 32, 64)),
    'resnet8x4': (8, (32, 64, 128, 256)),
    'resnet32x4': (32, (32, 64, 128, 256)),
}


class _BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers (the first with ``stride``) with an identity or 1x1-projection
    shortcut, ReLU after the sum."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: Optional[nn.Module] = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.shortcut is None else self.shortcut(x)
        return F.relu(out + identity)


@MODELS.register_module()
class CifarResNet(CifarBackbone):
    """CIFAR ResNet (6n+2 layers, basic blocks) returning class logits.

    Give either ``arch`` (a key of :data:`CIFAR_RESNET_ARCHS`, e.g. ``'resnet8x4'``) or both
    ``depth`` and ``widths``. :meth:`forward_features` returns the post-ReLU stem and stage maps.

    Args:
        arch (str, optional): Named benchmark architecture.
        depth (int, optional): Network depth, 6n + 2 (n >= 1).
        widths (Sequence[int], optional): Four channel widths (stem, stage 1, stage 2, stage 3).
        num_classes, in_channels (int): Classes of the classifier; input image channels.
    """

    def __init__(self, arch: Optional[str] = None, depth: Optional[int] = None,
                 widths: Optional[Sequence[int]] = None, num_classes: int = 100,
                 in_channels: int = 3) -> None:
        super().__init__('CifarResNet', num_classes)
        depth, widths = named_arch('CifarResNet', arch, CIFAR_RESNET_ARCHS,
                                   dict(depth=depth, widths=widths))
        if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6 != 0:
            raise ValueError(f'CifarResNet: depth must be 6n+2 with n >= 1 (8, 14, 20, 32, 56, '
                             f'110, ...), got depth={depth!r}.')
        widths = tuple(int(w) for w in widths)
        if len(widths) != 4 or min(widths) < 1:
            raise ValueError('CifarResNet: widths must be 4 positive ints (stem, stage1, stage2, '
                             f'stage3), got widths={widths!r}.')
        self.arch = arch
        self.depth = depth
        self.widths = widths
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.stages, self.feat_dim = self.make_stages(_BasicBlock, widths[0], widths[1:],
                                                      (1, 2, 2), (depth - 2) // 6)
        self.fc = nn.Linear(self.feat_dim, num_classes)
        self._init_weights()

    def stem_forward(self, x: torch.Tensor) -> torch.Tensor:
        """conv-BN-ReLU."""
        return F.relu(self.bn1(self.conv1(x)))

    def head_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's output as it is."""
        return x
