"""Channel-wise distillation of feature maps (Shu et al., ICCV 2021)."""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS

from ..contract import DistillLoss
from .adapter import ChannelAdapterMixin
from .utils import (check_ndim, check_non_negative, check_positive, check_same_shape,
                    detach_teacher, kl_div, standardise_channels)

__all__ = ['CWDLoss']


@MODELS.register_module()
class CWDLoss(ChannelAdapterMixin, DistillLoss):
    r"""Channel-wise distillation: KL divergence between per-channel spatial distributions.

    From Shu, Liu, Gao, Yan, Shen, "Channel-wise Knowledge Distillation for Dense Prediction"
    (ICCV 2021, arXiv 2011.13256). Each channel of an (N, C, H, W) map is turned into a
    distribution over its :math:`H W` locations, :math:`\phi(y)_i = \mathrm{softmax}(y/\tau)_i`,
    and

    .. math::
        L = \frac{w\,\tau^2}{N C} \sum_{n, c} \sum_{i=1}^{HW}
            \phi(T_{nc})_i \big(\log \phi(T_{nc})_i - \log \phi(S_{nc})_i\big).

    Student and teacher maps must have the same spatial size. For maps of different widths
    (RTMDet-tiny's 96-channel neck against RTMDet-s's 128), ``student_channels`` /
    ``teacher_channels`` add a learnable 1x1 convolution (no bias: the spatial softmax of each
    channel ignores a constant) from the student's width to the teacher's, as MMYOLO's RTMDet
    distillation does; the adapter is saved apart from the student weights. The teacher map is
    detached.

    Args:
        tau (float): Temperature :math:`\tau`. Defaults to 1.0.
        loss_weight (float): :math:`w`. Defaults to 1.0.
        student_channels (int, optional): The student map's width. Defaults to None.
        teacher_channels (int, optional): The teacher map's width. Defaults to None.
        adapter (bool, optional): Force (True) or forbid (False) the 1x1 adapter; None creates
            it only when both widths are given and differ. Defaults to None.
        standardise (bool): Standardise each channel of both maps over (N, H, W) (zero mean,
            unit population std, as ``PKDLoss``) before the spatial softmax, as MMYOLO's
            RTMDet distillation does with its affine-free BatchNorm connectors. Defaults to
            False (the CWD paper's raw maps).
    """

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0,
                 student_channels: Optional[int] = None,
                 teacher_channels: Optional[int] = None,
                 adapter: Optional[bool] = None,
                 standardise: bool = False) -> None:
        super().__init__()
        self.init_adapter(student_channels, teacher_channels, adapter, bias=False)
        if not isinstance(standardise, bool):
            raise TypeError(f'standardise must be a bool, got {standardise!r}.')
        self.standardise = standardise
        self.tau = check_positive('tau', tau)
        self.loss_weight = check_non_negative('loss_weight', loss_weight)

    def forward(self, student_feat: Tensor, teacher_feat: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            student_feat (Tensor): Student map, shape (N, C, H, W).
            teacher_feat (Tensor): Teacher map, shape (N, C, H, W).

        Returns:
            Tensor: Scalar loss.
        """
        check_ndim('student_feat', student_feat, 4, '(N, C, H, W)')
        check_ndim('teacher_feat', teacher_feat, 4, '(N, C, H, W)')
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
