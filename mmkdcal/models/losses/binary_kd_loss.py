"""Per-class sigmoid (binary) knowledge distillation for dense detectors."""
from typing import Optional, Union

import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS

from ..contract import DistillLoss
from .utils import (check_non_negative, check_pair, check_positive, check_reduction, check_weight,
                    detach_teacher, weighted_reduce)

__all__ = ['BinaryKDLoss']


@MODELS.register_module()
class BinaryKDLoss(DistillLoss):
    r"""Binary (per-class sigmoid) knowledge distillation with an optional focal modulation.

    With :math:`q_{ik} = \sigma(t_{ik}/\tau)`, :math:`p_{ik} = \sigma(s_{ik}/\tau)`:

    .. math::
        \ell_{ik} = \mathrm{BCE}(p_{ik}, q_{ik}) \, |q_{ik} - p_{ik}|^{\beta},

    summed over the :math:`K` classes, weighted and averaged over the :math:`M` samples (or
    summed and divided by ``avg_factor``). ``beta=0``: plain binary KD; ``beta=1``: BCKD's
    classification distillation (Yang et al., ICCV 2023); ``beta=2``: Quality-Focal-style KD
    (GFL, Li et al. NeurIPS 2020; with ``tau=1`` MMDetection's
    ``quality_focal_loss_tensor_target`` with target :math:`\sigma(t)`). The BCE is computed
    from logits; ``tau`` is not squared into the loss. The teacher logits are detached.

    Args:
        tau (float): Temperature applied to both logits. Defaults to 1.0.
        beta (float): Exponent of the modulating factor: 0, or at least 1 (exponents in
            (0, 1) have an infinite gradient where student and teacher agree). Defaults to 0.0.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'`` over samples.
    """

    input_kinds = ('logits', 'masks')
    logit_activation = 'sigmoid'
    accepts_weight = True
    accepts_avg_factor = True

    def __init__(self, tau: float = 1.0, beta: float = 0.0, loss_weight: float = 1.0,
                 reduction: str = 'mean') -> None:
        super().__init__()
        self.tau = check_positive('tau', tau)
        self.beta = check_non_negative('beta', beta)
        if 0 < self.beta < 1:
            raise ValueError(f'beta must be 0 or >= 1, got {beta}: |q - p|^beta with 0 < beta < 1 '
                             'has an infinite gradient where student and teacher agree.')
        self.loss_weight = check_non_negative('loss_weight', loss_weight)
        self.reduction = check_reduction(reduction)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[Union[float, Tensor]] = None) -> Tensor:
        """The loss of (M, K) logits; ``weight`` (M,) or (M, K); with ``avg_factor``, ``sum /
        avg_factor`` instead of the mean. Returns a scalar ((M,) with ``reduction='none'``)."""
        check_pair('logits', student_logits, teacher_logits, '(M, K)')
        check_weight(weight, [student_logits.shape[:1], student_logits.shape])
        s = student_logits / self.tau
        q = (detach_teacher(teacher_logits, s) / self.tau).sigmoid()
        loss = F.binary_cross_entropy_with_logits(s, q, reduction='none')
        if self.beta > 0:
            loss = loss * (q - s.sigmoid()).abs().pow(self.beta)
        if weight is not None and weight.dim() == 2:
            loss = loss * weight.to(loss.dtype)
            weight = None
        return self.loss_weight * weighted_reduce(loss.sum(dim=1), weight, self.reduction,
                                                  avg_factor)
