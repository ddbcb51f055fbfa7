"""Decoupled knowledge distillation (Zhao et al., CVPR 2022)."""
import numbers
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS

from ..contract import DistillLoss
from .utils import (check_non_negative, check_pair, check_positive, check_weight, detach_teacher,
                    kl_div, weighted_reduce)

__all__ = ['DKDLoss']


@MODELS.register_module()
class DKDLoss(DistillLoss):
    r"""Decoupled knowledge distillation: target-class KD plus non-target-class KD.

    With :math:`p = \mathrm{softmax}(s/\tau)`, :math:`q = \mathrm{softmax}(t/\tau)` and the
    ground-truth class :math:`g` of a sample:

    .. math::
        \mathrm{TCKD} = \tau^2\, \mathrm{KL}\big([q_g, 1 - q_g] \,\|\, [p_g, 1 - p_g]\big),
        \quad
        \mathrm{NCKD} = \tau^2\, \mathrm{KL}\big(\hat q \,\|\, \hat p\big),

    :math:`\hat q` the teacher's distribution over the non-target classes (the gt column
    dropped). Per sample :math:`\alpha\,\mathrm{TCKD} + \beta\,\mathrm{NCKD}`, weighted and
    averaged (or summed and divided by ``avg_factor``). With ``warmup_iters > 0`` it is
    multiplied by :math:`\min((i + 1) / \text{warmup\_iters}, 1)`, :math:`i` the 0-based
    iteration (``needs_iter``). It needs every row's class (``needs_labels``). The teacher
    logits are detached.

    Args:
        alpha (float): Weight of TCKD. Defaults to 1.0.
        beta (float): Weight of NCKD. Defaults to 8.0.
        tau (float): Softening temperature. Defaults to 4.0.
        warmup_iters (int): Length of the linear warm-up in iterations; 0 disables it.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
    """

    input_kinds = ('logits', )
    logit_activation = 'softmax'
    accepts_weight = True
    accepts_avg_factor = True
    needs_labels = True

    def __init__(self, alpha: float = 1.0, beta: float = 8.0, tau: float = 4.0,
                 warmup_iters: int = 0, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.alpha = check_non_negative('alpha', alpha)
        self.beta = check_non_negative('beta', beta)
        self.tau = check_positive('tau', tau)
        if isinstance(warmup_iters, bool) or not isinstance(warmup_iters, int) or warmup_iters < 0:
            raise ValueError(f'warmup_iters must be a non-negative int, got {warmup_iters!r}.')
        self.warmup_iters = warmup_iters
        self.loss_weight = check_non_negative('loss_weight', loss_weight)
        self.needs_iter = warmup_iters > 0

    def warmup_factor(self, cur_iter: Optional[int]) -> float:
        """``min((cur_iter + 1) / warmup_iters, 1)`` (0-based ``cur_iter``), or 1 without
        warm-up."""
        if self.warmup_iters == 0:
            return 1.0
        if cur_iter is None:
            raise ValueError(f'DKDLoss has warmup_iters={self.warmup_iters} and needs the '
                             'current iteration: pass cur_iter=<0-based iteration> (the '
                             'distiller does so because needs_iter is True).')
        if isinstance(cur_iter, bool) or not isinstance(cur_iter, numbers.Integral) or cur_iter < 0:
            raise ValueError(f'cur_iter must be a non-negative int, got {cur_iter!r}.')
        return min((cur_iter + 1) / self.warmup_iters, 1.0)

    def forward(self, student_logits: Tensor, teacher_logits: Tensor, labels: Tensor,
                weight: Optional[Tensor] = None, avg_factor: Optional[Union[float, Tensor]] = None,
                cur_iter: Optional[int] = None) -> Tensor:
        """The loss of (M, C) logits (C >= 2) with integer ``labels`` (M,) in [0, C);
        ``weight`` (M,); with ``avg_factor``, ``sum / avg_factor`` instead of the mean;
        ``cur_iter`` (0-based) with warm-up. Returns a scalar."""
        check_pair('logits', student_logits, teacher_logits, '(M, C)')
        m, c = student_logits.shape
        if c < 2:
            raise ValueError(f'DKDLoss needs at least 2 classes, got logits of shape {(m, c)}.')
        if not isinstance(labels, Tensor) or labels.dtype.is_floating_point \
                or labels.dtype == torch.bool:
            raise TypeError('labels must be an integer tensor of class indices, got '
                            f'{getattr(labels, "dtype", type(labels).__name__)}.')
        if labels.shape != (m, ):
            raise ValueError(f'labels must have shape ({m},) to match logits {(m, c)}, got '
                             f'{tuple(labels.shape)}.')
        if m > 0 and (labels.min() < 0 or labels.max() >= c):
            raise ValueError(f'labels must lie in [0, {c}) for logits with {c} classes, got '
                             f'values in [{int(labels.min())}, {int(labels.max())}].')
        check_weight(weight, [(m, )])
        factor = self.warmup_factor(cur_iter)

        gt_mask = F.one_hot(labels.long(), c).bool()
        log_p = F.log_softmax(student_logits / self.tau, dim=1)
        log_q = F.log_softmax(detach_teacher(teacher_logits, student_logits) / self.tau, dim=1)
        # Non-target log-probabilities, gt column removed: (M, C - 1).
        log_p_other = log_p[~gt_mask].view(m, c - 1)
        log_q_other = log_q[~gt_mask].view(m, c - 1)
        # TCKD: binary distribution [target, all non-targets].
        log_p_bin = torch.stack([log_p[gt_mask], torch.logsumexp(log_p_other, dim=1)], dim=1)
        log_q_bin = torch.stack([log_q[gt_mask], torch.logsumexp(log_q_other, dim=1)], dim=1)
        tckd = kl_div(log_q_bin, log_p_bin, dim=1)
        # NCKD: renormalised distribution over the non-target classes.
        nckd = kl_div(F.log_softmax(log_q_other, dim=1), F.log_softmax(log_p_other, dim=1), dim=1)
        per_sample = (self.alpha * tckd + self.beta * nckd) * self.tau**2
        return self.loss_weight * factor * weighted_reduce(per_sample, weight, 'mean', avg_factor)
