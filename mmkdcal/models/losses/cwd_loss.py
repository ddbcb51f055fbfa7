"""Channel-wise distillation of feature maps (Shu et al., ICCV 2021)."""
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from ._utils import (check_ndim, check_non_negative, check_positive, check_same_shape,
                     detach_teacher, equal_widths, kl_div)
from .base import DistillLoss

__all__ = ['CWDLoss']


@MODELS.register_module()
class CWDLoss(DistillLoss):
    r"""Channel-wise distillation: KL divergence between per-channel spatial distributions.

    From Shu, Liu, Gao, Yan, Shen, "Channel-wise Knowledge Distillation for Dense Prediction"
    (ICCV 2021, arXiv 2011.13256). Each channel of an (N, C, H, W) map is turned into a
    distribution over its :math:`H W` locations, :math:`\phi(y)_i = \mathrm{softmax}(y/\tau)_i`,
    and

    .. math::
        L = \frac{w\,\tau^2}{N C} \sum_{n, c} \sum_{i=1}^{HW}
            \phi(T_{nc})_i \big(\log \phi(T_{nc})_i - \log \phi(S_{nc})_i\big).

    Student and teacher maps must have the same shape (align channels with an adapter before
    this loss if they differ). The teacher map is detached.

    Args:
        tau (float): Temperature :math:`\tau`. Defaults to 1.0.
        loss_weight (float): :math:`w`. Defaults to 1.0.
    """

    input_kinds = ('features', )

    def check_input(self, spec):
        """Also refuse feature maps of different widths (CWD has no adapter)."""
        return super().check_input(spec) or equal_widths('CWDLoss', spec)

    def __init__(self, tau: float = 1.0, loss_weight: float = 1.0) -> None:
        super().__init__()
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
        check_same_shape('student_feat', student_feat, 'teacher_feat', teacher_feat)
        n, c = student_feat.shape[:2]
        if student_feat.numel() == 0:
            raise ValueError(f'student_feat must be non-empty, got shape '
                             f'{tuple(student_feat.shape)}.')
        log_p = F.log_softmax(student_feat.flatten(2) / self.tau, dim=2)
        teacher_feat = detach_teacher(teacher_feat, student_feat)
        log_q = F.log_softmax(teacher_feat.flatten(2) / self.tau, dim=2)
        kl = kl_div(log_q, log_p, dim=2).sum()
        return self.loss_weight * kl * self.tau**2 / (n * c)
