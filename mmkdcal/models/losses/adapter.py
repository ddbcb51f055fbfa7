"""The optional learnable 1x1 adapter that maps a student feature map to the teacher's width.

Shared by the feature losses; a distiller keeps it out of the student's ``state_dict`` (see
docs/distillation_protocol.md, "Run-time state").
"""
from typing import Optional, Tuple

import torch.nn as nn
from torch import Tensor

from ..contract import DistillInput
from .utils import check_ndim

__all__ = ['ChannelAdapterMixin']


def _check_channels(name: str, value: Optional[int]) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{name} must be a positive int or None, got {value!r}.')
    return value


class ChannelAdapterMixin:
    """``student_channels`` / ``teacher_channels`` / ``adapter`` handling for a feature loss.

    ``student_channels`` / ``teacher_channels`` are the maps' widths (None: unknown). The 1x1
    adapter is created when both are given and differ, or with ``adapter=True``;
    ``adapter=False`` forbids it. Without one the two maps must have the same width.
    """

    input_kinds = ('features', )
    student_channels: Optional[int]
    teacher_channels: Optional[int]
    adapter: Optional[nn.Conv2d]

    def init_adapter(self, student_channels: Optional[int], teacher_channels: Optional[int],
                     adapter: Optional[bool], bias: bool = True) -> None:
        """Check the widths (None: unknown) and create the adapter (a 1x1 conv with ``bias``)
        if ``adapter`` asks for it (True) or, when None, the widths differ."""
        self.student_channels = _check_channels('student_channels', student_channels)
        self.teacher_channels = _check_channels('teacher_channels', teacher_channels)
        if adapter not in (None, True, False):
            raise TypeError(f'adapter must be None, True or False, got {adapter!r}.')
        both = student_channels is not None and teacher_channels is not None
        if adapter is None:
            adapter = both and student_channels != teacher_channels
        elif adapter and not both:
            raise ValueError('adapter=True needs student_channels and teacher_channels to '
                             'build the 1x1 convolution; set both.')
        elif not adapter and both and student_channels != teacher_channels:
            raise ValueError(f'student_channels={student_channels} and teacher_channels='
                             f'{teacher_channels} differ, so an adapter is needed; drop '
                             'adapter=False.')
        self.adapter = nn.Conv2d(student_channels, teacher_channels, 1, bias=bias) \
            if adapter else None

    def check_input(self, spec: DistillInput) -> Optional[str]:
        """The loss's own check, then whether the adapter (or its absence) fits ``spec``'s
        widths; a sentence naming the problem and the fix, or None."""
        problem = super().check_input(spec)
        name = type(self).__name__
        channels = getattr(spec, 'channels', None)
        if problem is not None or channels is None:
            return problem
        if self.adapter is None:
            if channels[0] != channels[1]:
                return (f'{name} has no adapter, but inputs={spec.name!r} has {channels[0]} '
                        f'student and {channels[1]} teacher channels; set '
                        f'student_channels={channels[0]}, teacher_channels={channels[1]} '
                        '(a learnable 1x1 adapter, saved apart from the student weights)')
            return None
        if (self.student_channels, self.teacher_channels) != tuple(channels):
            return (f'{name} has student_channels={self.student_channels}, '
                    f'teacher_channels={self.teacher_channels}, but inputs={spec.name!r} has '
                    f'{channels[0]} student and {channels[1]} teacher channels; set '
                    f'student_channels={channels[0]}, teacher_channels={channels[1]}')
        return None

    @staticmethod
    def check_maps(student_feat: Tensor, teacher_feat: Tensor, s_layout: str = '(N, C, H, W)',
                   t_layout: str = '(N, C, H, W)') -> Tuple[tuple, tuple]:
        """Check that both maps are 4-dim float tensors; return their shapes."""
        check_ndim('student_feat', student_feat, 4, s_layout)
        check_ndim('teacher_feat', teacher_feat, 4, t_layout)
        return tuple(student_feat.shape), tuple(teacher_feat.shape)

    def adapt(self, student_feat: Tensor, teacher_feat: Tensor) -> Tuple[Tensor, Tensor]:
        """Check both maps' widths against the configuration, then apply the adapter; return
        the (adapted) student map and the teacher map, of one width."""
        s_shape, t_shape = tuple(student_feat.shape), tuple(teacher_feat.shape)
        if self.student_channels is not None and s_shape[1] != self.student_channels:
            raise ValueError(f'student_feat has {s_shape[1]} channels (shape {s_shape}) but '
                             f'student_channels={self.student_channels}.')
        if self.teacher_channels is not None and t_shape[1] != self.teacher_channels:
            raise ValueError(f'teacher_feat has {t_shape[1]} channels (shape {t_shape}) but '
                             f'teacher_channels={self.teacher_channels}.')
        if self.adapter is not None:
            return self.adapter(student_feat), teacher_feat
        if s_shape[1] != t_shape[1]:
            raise ValueError(f'student_feat {s_shape} and teacher_feat {t_shape} have different '
                             'channel counts; set student_channels and teacher_channels to add '
                             'a 1x1 adapter.')
        return student_feat, teacher_feat
