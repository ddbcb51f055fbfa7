"""Feature distillation via the Pearson correlation coefficient (PKD, Cao et al., 2022)."""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS

from ..contract import DistillLoss
from .adapter import ChannelAdapterMixin
from .utils import check_non_negative, detach_teacher, standardise_channels

__all__ = ['PKDLoss']


@MODELS.register_module()
class PKDLoss(ChannelAdapterMixin, DistillLoss):
    r"""Pearson-correlation feature distillation.

    Each channel of both maps is standardised over its :math:`n = N H W` values (population
    std, :math:`\epsilon = 10^{-6}`), and

    .. math::
        L = \frac{w}{2}\, \frac{1}{C n} \sum_{c, i} (\hat F^s_{ci} - \hat F^t_{ci})^2
          = w\, \frac{1}{C} \sum_c (1 - r_c),

    :math:`r_c` the Pearson correlation of channel :math:`c`: invariant to a per-channel affine
    change of either map. Different widths take a 1x1 adapter without bias (see
    :class:`ChannelAdapterMixin`). Different spatial sizes: the student map is bilinearly
    resized to the teacher's (``resize_stu=True``) or the teacher's to the student's. The
    teacher features are detached.

    Args:
        loss_weight (float): :math:`w`.
        resize_stu (bool): Which map to resize when spatial sizes differ.
        student_channels, teacher_channels, adapter: As for :class:`ChannelAdapterMixin`.
    """

    eps = 1e-6

    def __init__(self, loss_weight: float = 1.0, resize_stu: bool = True,
                 student_channels: Optional[int] = None, teacher_channels: Optional[int] = None,
                 adapter: Optional[bool] = None) -> None:
        super().__init__()
        self.init_adapter(student_channels, teacher_channels, adapter, bias=False)
        self.loss_weight = check_non_negative('loss_weight', loss_weight)
        if not isinstance(resize_stu, bool):
            raise TypeError(f'resize_stu must be a bool, got {resize_stu!r}.')
        self.resize_stu = resize_stu

    def forward(self, student_feat: Tensor, teacher_feat: Tensor) -> Tensor:
        """The scalar loss of (N, Cs, Hs, Ws) student and (N, C, Ht, Wt) teacher maps."""
        s_shape, t_shape = self.check_maps(student_feat, teacher_feat)
        if s_shape[0] != t_shape[0]:
            raise ValueError(f'student_feat {s_shape} and teacher_feat {t_shape} must share the '
                             'batch size N.')
        student_feat, teacher_feat = self.adapt(student_feat, teacher_feat)
        teacher_feat = detach_teacher(teacher_feat, student_feat)
        if s_shape[2:] != t_shape[2:]:
            if self.resize_stu:
                student_feat = F.interpolate(
                    student_feat, size=t_shape[2:], mode='bilinear', align_corners=False)
            else:
                teacher_feat = F.interpolate(
                    teacher_feat, size=s_shape[2:], mode='bilinear', align_corners=False)
        norm_s = standardise_channels(student_feat, self.eps)
        norm_t = standardise_channels(teacher_feat, self.eps)
        return self.loss_weight * F.mse_loss(norm_s, norm_t) / 2
