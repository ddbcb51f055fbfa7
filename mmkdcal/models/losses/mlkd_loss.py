"""Multi-level logit distillation (Jin et al., CVPR 2023)."""
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS

from ..contract import DistillLoss
from .utils import check_non_negative, check_pair, check_positive, detach_teacher, kl_div

__all__ = ['MLKDLoss']


@MODELS.register_module()
class MLKDLoss(DistillLoss):
    r"""Multi-level logit distillation: instance, batch and class-level alignment.

    Normalisations as the authors' code. Per temperature :math:`\tau`, with row-wise
    :math:`P^s = \mathrm{softmax}(S/\tau)`, :math:`P^t = \mathrm{softmax}(T/\tau)` (B, C):
    :math:`L_{ins} = \tau^2 \frac{1}{|\mathcal{K}|} \sum_{i \in \mathcal{K}}
    \mathrm{KL}(P^t_i \| P^s_i)`, :math:`L_{batch} = \frac{1}{B} \|G^t - G^s\|_F^2`
    (:math:`G = P P^\top`), :math:`L_{class} = \frac{1}{C} \|M^t - M^s\|_F^2`
    (:math:`M = P^\top P`), and

    .. math::
        L = \frac{w}{|\mathcal{T}|} \sum_{\tau \in \mathcal{T}} \big(
        w_{ins} L_{ins}(\tau) + w_{batch} L_{batch}(\tau) + w_{class} L_{class}(\tau)\big)

    (averaged over temperatures; the reference sums). :math:`\mathcal{K}` is the batch, or
    with ``min_teacher_conf`` the samples whose teacher top-class probability (of the logits
    as given) reaches it (instance term only; none kept: zero). That option is ours, not the
    authors' confidence masking (see docs/distillation_protocol.md). The teacher logits are
    detached.

    Args:
        temperatures (Sequence[float]): Temperatures :math:`\mathcal{T}`.
        instance_weight, batch_weight, class_weight (float): :math:`w_{ins}`,
            :math:`w_{batch}`, :math:`w_{class}`.
        min_teacher_conf (float, optional): In (0, 1], or None to keep every sample.
        loss_weight (float): :math:`w`, multiplier of the loss.
    """

    input_kinds = ('logits', )
    logit_activation = 'softmax'

    def __init__(self, temperatures: Sequence[float] = (2.0, 3.0, 4.0, 5.0, 6.0),
                 instance_weight: float = 1.0, batch_weight: float = 1.0, class_weight: float = 1.0,
                 min_teacher_conf: Optional[float] = None, loss_weight: float = 1.0) -> None:
        super().__init__()
        if isinstance(temperatures, (str, bytes)) or not isinstance(temperatures, Sequence) \
                or len(temperatures) == 0:
            raise ValueError('temperatures must be a non-empty sequence of positive numbers, '
                             f'got {temperatures!r}.')
        self.temperatures = tuple(
            check_positive(f'temperatures[{i}]', t) for i, t in enumerate(temperatures))
        self.instance_weight = check_non_negative('instance_weight', instance_weight)
        self.batch_weight = check_non_negative('batch_weight', batch_weight)
        self.class_weight = check_non_negative('class_weight', class_weight)
        if min_teacher_conf is not None:
            min_teacher_conf = check_positive('min_teacher_conf', min_teacher_conf)
            if min_teacher_conf > 1:
                raise ValueError('min_teacher_conf must lie in (0, 1] (a probability) or be '
                                 f'None, got {min_teacher_conf}.')
        self.min_teacher_conf = min_teacher_conf
        self.loss_weight = check_non_negative('loss_weight', loss_weight)

    def components(self, student_logits: Tensor, teacher_logits: Tensor) -> Dict[str, Tensor]:
        """Unweighted ``'instance'``, ``'batch'`` and ``'class'`` terms of (B, C) logits, each
        averaged over the temperatures."""
        check_pair('logits', student_logits, teacher_logits, '(B, C)')
        if student_logits.shape[0] == 0:
            raise ValueError('MLKDLoss needs a non-empty batch, got student_logits of shape '
                             f'{tuple(student_logits.shape)}.')
        teacher_logits = detach_teacher(teacher_logits, student_logits)
        b, c = student_logits.shape
        if self.min_teacher_conf is None:
            keep = torch.ones(b, dtype=torch.bool, device=student_logits.device)
        else:
            keep = F.softmax(teacher_logits, dim=1).max(dim=1).values >= self.min_teacher_conf
        n_keep = keep.sum()
        instance = student_logits.new_zeros(())
        batch = student_logits.new_zeros(())
        klass = student_logits.new_zeros(())
        for tau in self.temperatures:
            log_p = F.log_softmax(student_logits / tau, dim=1)
            log_q = F.log_softmax(teacher_logits / tau, dim=1)
            p, q = log_p.exp(), log_q.exp()
            kl = kl_div(log_q, log_p, dim=1) * tau**2
            instance = instance + (kl * keep).sum() / n_keep.clamp(min=1)
            batch = batch + (q @ q.t() - p @ p.t()).pow(2).sum() / b
            klass = klass + (q.t() @ q - p.t() @ p).pow(2).sum() / c
        n = len(self.temperatures)
        return {'instance': instance / n, 'batch': batch / n, 'class': klass / n}

    def forward(self, student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
        """The scalar loss of (B, C) student and teacher logits."""
        parts = self.components(student_logits, teacher_logits)
        return self.loss_weight * (self.instance_weight * parts['instance'] +
                                   self.batch_weight * parts['batch'] +
                                   self.class_weight * parts['class'])
