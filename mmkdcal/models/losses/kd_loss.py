"""Softmax knowledge distillation loss (Hinton et al., 2015)."""
from typing import Optional, Union

import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS

from ..contract import DistillLoss
from .utils import (check_non_negative, check_pair, check_positive, check_reduction, check_weight,
                    detach_teacher, kl_div, weighted_reduce)

__all__ = ['KDLoss']


@MODELS.register_module()
class KDLoss(DistillLoss):
    r"""Softmax knowledge distillation with a temperature (Hinton, Vinyals, Dean, arXiv
    1503.02531). Per sample, with :math:`q = \mathrm{softmax}(t / \tau)`,
    :math:`p = \mathrm{softmax}(s / \tau)`:

    .. math::
        \ell = \tau^2 \sum_{c=1}^{C} q_c (\log q_c - \log p_c).

    The KL divergence is *summed* over classes, so this is :math:`C` times MMDetection's
    ``KnowledgeDistillationKLDivLoss`` (which averages). ``tau`` is the KD softening
    temperature; the calibration temperature is applied by the distiller before. The teacher
    logits are detached.

    Args:
        tau (float): Softening temperature :math:`\tau`. Defaults to 4.0.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'`` over samples.
    """

    input_kinds = ('logits', )
    logit_activation = 'softmax'
    accepts_weight = True
    accepts_avg_factor = True

    def __init__(self, tau: float = 4.0, loss_weight: float = 1.0, reduction: str = 'mean') -> None:
        super().__init__()
        self.tau = check_positive('tau', tau)
        self.loss_weight = check_non_negative('loss_weight', loss_weight)
        self.reduction = check_reduction(reduction)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[Union[float, Tensor]] = None) -> Tensor:
        """The loss of (M, C) logits; ``weight`` (M,); with ``avg_factor``, ``sum /
        avg_factor`` instead of the mean. Returns a scalar ((M,) with ``reduction='none'``)."""
        check_pair('logits', student_logits, teacher_logits, '(M, C)')
        check_weight(weight, [student_logits.shape[:1]])
        log_q = F.log_softmax(detach_teacher(teacher_logits, student_logits) / self.tau, dim=1)
        log_p = F.log_softmax(student_logits / self.tau, dim=1)
        per_sample = kl_div(log_q, log_p, dim=1) * self.tau**2
        return self.loss_weight * weighted_reduce(per_sample, weight, self.reduction, avg_factor)
