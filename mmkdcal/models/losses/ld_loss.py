"""Localization distillation on general box distributions (Zheng et al., CVPR 2022)."""
from typing import Optional, Union

import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS

from ..contract import DistillLoss
from .utils import (check_non_negative, check_pair, check_positive, check_reduction, check_weight,
                    detach_teacher, kl_div, weighted_reduce)

__all__ = ['LDLoss']


@MODELS.register_module()
class LDLoss(DistillLoss):
    r"""Localization distillation (LD) between GFL-style edge distributions.

    GFL-family heads give, per box side, logits over :math:`n + 1` offsets (``reg_max = n``),
    laid out as (M, 4 (n + 1)). Per box :math:`i` and side :math:`j`, with
    :math:`q = \mathrm{softmax}(t_{ij}/\tau)`, :math:`p = \mathrm{softmax}(s_{ij}/\tau)`:

    .. math::
        \ell_{ij} = \frac{\tau^2}{n + 1} \sum_{b=0}^{n} q_b (\log q_b - \log p_b), \qquad
        \ell_i = \frac{1}{4} \sum_{j=1}^{4} \ell_{ij},

    the authors' normalisation (MMDetection's ``LDHead``), so ``LDLoss(...)(s, t, w,
    avg_factor=1)`` equals its ``loss_ld`` and the paper's ``tau=10``, ``loss_weight=0.25``
    carry over. ``reduction='mean'`` averages :math:`w_i \ell_i` over boxes. The teacher
    distribution is detached.

    Args:
        tau (float): Softening temperature. Defaults to 10.0.
        loss_weight (float): Multiplier of the loss. Defaults to 0.25.
        reg_max (int, optional): :math:`n`; if given, inputs must have 4 (n + 1) columns;
            None infers it from the input width (divisible by 4).
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'`` over boxes.
    """

    input_kinds = ('distribution', )
    accepts_weight = True
    accepts_avg_factor = True

    def __init__(self, tau: float = 10.0, loss_weight: float = 0.25,
                 reg_max: Optional[int] = None, reduction: str = 'mean') -> None:
        super().__init__()
        self.tau = check_positive('tau', tau)
        self.loss_weight = check_non_negative('loss_weight', loss_weight)
        if reg_max is not None and (isinstance(reg_max, bool) or not isinstance(reg_max, int)
                                    or reg_max < 1):
            raise ValueError(f'reg_max must be a positive int (the GFL head\'s reg_max, e.g. '
                             f'16) or None, got {reg_max!r}.')
        self.reg_max = reg_max
        self.reduction = check_reduction(reduction)

    def forward(self, student_dist: Tensor, teacher_dist: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[Union[float, Tensor]] = None) -> Tensor:
        """The loss of (M, 4 (n + 1)) distribution logits; ``weight`` (M,); with
        ``avg_factor``, ``sum / avg_factor`` instead of the mean. Returns a scalar ((M,) with
        ``reduction='none'``)."""
        check_pair('dist', student_dist, teacher_dist, '(M, 4 * (reg_max + 1))')
        m, width = student_dist.shape
        if self.reg_max is not None:
            if width != 4 * (self.reg_max + 1):
                raise ValueError(f'student_dist has {width} columns but reg_max={self.reg_max} '
                                 f'needs 4 * (reg_max + 1) = {4 * (self.reg_max + 1)}; set '
                                 'reg_max to the head\'s reg_max.')
        elif width % 4 != 0 or width < 8:
            raise ValueError(f'student_dist must have 4 * (reg_max + 1) columns (4 sides, at '
                             f'least 2 bins each), got {width}.')
        check_weight(weight, [(m, )])
        bins = width // 4
        s = student_dist.reshape(m * 4, bins)
        t = detach_teacher(teacher_dist, student_dist).reshape(m * 4, bins)
        log_p = F.log_softmax(s / self.tau, dim=1)
        log_q = F.log_softmax(t / self.tau, dim=1)
        per_side = kl_div(log_q, log_p, dim=1) * (self.tau**2 / bins)
        per_box = per_side.view(m, 4).mean(dim=1)
        return self.loss_weight * weighted_reduce(per_box, weight, self.reduction, avg_factor)
