"""What the CIFAR backbones share: argument checks, stage building, weight init, pooled logits."""
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ['CifarBackbone', 'named_arch']


def named_arch(owner: str, arch: Optional[str], archs: Dict[str, tuple],
               given: Dict[str, Any]) -> tuple:
    """``archs[arch]``, or the values of ``given`` (the arguments a name stands for, in order);
    ValueError naming ``owner`` for both, an unknown name, or neither."""
    names = ' and '.join(f'`{k}`' for k in given)
    if arch is not None:
        if any(v is not None for v in given.values()):
            shown = ', '.join(f'{k}={v!r}' for k, v in given.items())
            raise ValueError(f'{owner}: give either `arch` or ({names}), not both (got '
                             f'arch={arch!r}, {shown}).')
        if arch not in archs:
            raise ValueError(f'{owner}: unknown arch={arch!r}; choose one of {sorted(archs)} or '
                             f'give {names}.')
        return archs[arch]
    if any(v is None for v in given.values()):
        raise ValueError(f'{owner}: give `arch` (e.g. arch={next(iter(archs))!r}) or both '
                         f'{names}.')
    return tuple(given.values())


class CifarBackbone(nn.Module):
    """A CIFAR backbone: ``stem``, the stages, ``conv_last`` before pooling, ``fc``.

    Subclasses build those modules (and ``feat_dim``) and override :meth:`stem_forward` /
    :meth:`head_forward` where theirs differ; ``stages_name`` names the stages attribute,
    ``feature_stages`` the stages :meth:`forward_features` returns (None: all).

    Args:
        owner: The class name, for the messages.
        num_classes: Number of classes of the linear classifier.
    """

    stages_name = 'stages'
    feature_stages: Optional[Sequence[int]] = None

    def __init__(self, owner: str, num_classes: int) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f'{owner}: num_classes must be a positive int, got {num_classes!r}.')
        self.num_classes = num_classes

    @staticmethod
    def make_stages(block: Callable[[int, int, int], nn.Module], channels: int,
                    widths: Sequence[int], strides: Sequence[int],
                    blocks: int) -> Tuple[nn.ModuleList, int]:
        """One stage per ``widths``/``strides`` item, of ``blocks`` ``block(in, out, stride)``
        each (the first with the stride); returns them and their output channels."""
        stages = []
        for width, stride in zip(widths, strides):
            layers = []
            for j in range(blocks):
                layers.append(block(channels, width, stride if j == 0 else 1))
                channels = width
            stages.append(nn.Sequential(*layers))
        return nn.ModuleList(stages), channels

    def _init_weights(self, linear: Optional[Callable[[nn.Linear], None]] = None) -> None:
        """Kaiming-normal convs (fan out), unit BN; ``linear`` initialises the classifier."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear) and linear is not None:
                linear(m)

    def stem_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The stem's output."""
        return self.stem(x)

    def head_forward(self, x: torch.Tensor) -> torch.Tensor:
        """What the last stage's output becomes before pooling."""
        return self.conv_last(x)

    def forward_features(self, x: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """The pooled feature (N, feat_dim) the classifier reads, and the stem's and feature
        stages' maps, of (N, 3, 32, 32) normalised images."""
        out = self.stem_forward(x)
        feats = [out]
        for i, stage in enumerate(getattr(self, self.stages_name)):
            out = stage(out)
            if self.feature_stages is None or i in self.feature_stages:
                feats.append(out)
        return torch.flatten(F.adaptive_avg_pool2d(self.head_forward(out), 1), 1), feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return (N, num_classes) class logits for (N, 3, 32, 32) images."""
        return self.fc(self.forward_features(x)[0])
