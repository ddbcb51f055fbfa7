"""Channel-wise distillation of feature maps (Shu et al., ICCV 2021)."""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS

from ..contract import DistillLoss
from .adapter import ChannelAdapterMixin
from .utils import (check_non_negative, check_positive, check_same_shape, detach_teacher, kl_div,
                    standardise_channels)

__all__ = ['CWDLoss']


@MODELS.register_module()
class CWDLoss(ChannelAdapterMixin, DistillLoss):
    r"""Channel-wise distillation: KL divergence between per-channel spatial distributions.

    Each channel of an (N, C, H, W) map becomes a distribution over its :math:`H W` locations,
    :math:`\phi(y)_i = \mathrm{softmax}(y/\tau)_i`, and

    .. math::
        L = \frac{w\,\tau^2}{N C} \sum_{n, c} \sum_{i=1}^{HW}
            \phi(T_{nc})_i \big(\log \phi(T_{nc})_i - \log \phi(S_{nc})_i\big).

    Spatial sizes must match; different widths take a 1x1 adapter without bias (see
    :class:`ChannelAdapterMixin`). The teacher map is detached.

    Args:
        tau (float): Temperature :math:`\tau`. Defaults to 1.0.
        loss_weight (float): :math:`w`. Defaults to 1.0.
        student_channels, teacher_channels, adapter: As for :class:`ChannelAdapterMixin`.
        standardise (bool): Standardise each channel of both maps over (N, H, W) (as
            ``PKDLoss``) before the softmax, as MMYOLO's RTMDet distillation does. Defaults to
            False (the paper's raw maps).
    """

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0,
                 student_channels: Optional[int] = None, teacher_channels: Optional[int] = None,
                 adapter: Optional[bool] = None, standardise: bool = False) -> None:
        super().__init__()
        self.init_adapter(student_channels, teacher_channels, adapter, bias=False)
        if not isinstance(standardise, bool):
            raise TypeError(f'standardise must be a bool, got {standardise!r}.')
        self.standardise = standardise
        self.tau = check_positive('tau', tau)
        self.loss_weight = check_non_negative('loss_weight', loss_weight)

    def forward(self, student_feat: Tensor, teacher_feat: Tensor) -> Tensor:
        """The scalar loss of (N, C, H, W) student and teacher maps."""
        self.check_maps(student_feat, teacher_feat)
        student_feat, teacher_feat = self.adapt(student_feat, teacher_feat)
        check_same_shape('student_feat', student_feat, 'teacher_feat', teacher_feat)
        n, c = student_feat.shape[:2]
        if student_feat.numel() == 0:
            raise ValueError(f'student_feat must be non-empty, got shape '
                             f'{tuple(student_feat.shape)}.')
        teacher_feat = detach_teacher(teacher_feat, student_feat)
        if self.standardise:
            student_feat = standardise_channels(student_feat)
            teacher_feat = standardise_channels(teacher_feat)
        log_p = F.log_softmax(student_feat.flatten(2) / self.tau, dim=2)
        log_q = F.log_softmax(teacher_feat.flatten(2) / self.tau, dim=2)
        kl = kl_div(log_q, log_p, dim=2).sum()
        return self.loss_weight * kl * self.tau**2 / (n * c)
