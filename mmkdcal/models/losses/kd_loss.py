"""Softmax knowledge distillation loss (Hinton et al., 2015)."""
from typing import Optional, Union

import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS

from ..contract import DistillLoss
from .utils import (check_ndim, check_non_negative, check_positive, check_reduction,
                    check_same_shape, check_weight, detach_teacher, kl_div, weighted_reduce)

__all__ = ['KDLoss']


@MODELS.register_module()
class KDLoss(DistillLoss):
    r"""Softmax knowledge distillation with a temperature.

    From Hinton, Vinyals, Dean, "Distilling the Knowledge in a Neural Network" (arXiv 1503.02531,
    2015). For a sample with student logits :math:`s` and teacher logits :math:`t` over
    :math:`C` classes:

    .. math::
        \ell = \tau^2 \sum_{c=1}^{C} q_c (\log q_c - \log p_c), \quad
        q = \mathrm{softmax}(t / \tau), \; p = \mathrm{softmax}(s / \tau).

    The :math:`\tau^2` factor keeps the gradient magnitude independent of :math:`\tau`.
    The KL divergence is *summed* over classes (a true KL divergence); MMDetection's
    ``KnowledgeDistillationKLDivLoss`` averages over classes instead, so this loss equals
    :math:`C` times that one.

    ``tau`` is the classic KD softening temperature. The calibration temperature of
    mmkdcal is applied to the teacher logits by the distiller *before* this loss is called.
    The teacher logits are detached: the teacher never receives a gradient.

    Args:
        tau (float): Softening temperature :math:`\tau`. Defaults to 4.0.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'`` over samples. Defaults to
            ``'mean'``.
    """

    input_kinds = ('logits', )
    logit_activation = 'softmax'
    accepts_weight = True
    accepts_avg_factor = True

    def __init__(self, tau: float = 4.0, loss_weight: float = 1.0,
                 reduction: str = 'mean') -> None:
        super().__init__()
        self.tau = check_positive('tau', tau)
        self.loss_weight = check_non_negative('loss_weight', loss_weight)
        self.reduction = check_reduction(reduction)

    def forward(self,
                student_logits: Tensor,
                teacher_logits: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[Union[float, Tensor]] = None) -> Tensor:
        """Compute the loss.

        Args:
            student_logits (Tensor): Student logits, shape (M, C).
            teacher_logits (Tensor): Teacher logits, shape (M, C) (already divided by the
                calibration temperature, if any).
            weight (Tensor, optional): Per-sample weights, shape (M,). Defaults to None.
            avg_factor (float | Tensor, optional): With ``reduction='mean'``, the loss is
                ``sum / avg_factor`` instead of the mean over samples. Defaults to None.

        Returns:
            Tensor: Scalar loss (or shape (M,) with ``reduction='none'``).
        """
        check_ndim('student_logits', student_logits, 2, '(M, C)')
        check_same_shape('student_logits', student_logits, 'teacher_logits', teacher_logits)
        check_weight(weight, [student_logits.shape[:1]])
        log_q = F.log_softmax(detach_teacher(teacher_logits, student_logits) / self.tau, dim=1)
        log_p = F.log_softmax(student_logits / self.tau, dim=1)
        per_sample = kl_div(log_q, log_p, dim=1) * self.tau**2
        return self.loss_weight * weighted_reduce(per_sample, weight, self.reduction,
                                                  avg_factor)
