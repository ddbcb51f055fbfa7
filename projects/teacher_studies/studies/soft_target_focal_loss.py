"""Sigmoid focal loss towards a softened positive target (a teacher-training variant).

Used by the detection teacher study to train deliberately *under*-confident teachers: the
assigned class of a positive prior is trained towards ``pos_target < 1`` instead of 1 (label
smoothing of the positive only), with the focal modulation ``|t - sigma(x)|^gamma`` of
Lin et al. (ICCV 2017), generalised to soft targets as in the quality focal loss (Li et al.,
NeurIPS 2020). With ``pos_target=1`` it is mmdet's ``FocalLoss`` exactly.

It reads the labels of either head interface: ``RetinaHead`` passes the labels (N,),
``GFLHead`` passes ``(labels, quality)`` and the quality (IoU) target is ignored, which makes it
a plain (or softened) focal loss for GFL heads. Register it with
``custom_imports = dict(imports=['mmkdcal',
'projects.teacher_studies.studies.soft_target_focal_loss'])`` (run from the repository root).
"""
from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmdet.models.losses.utils import weight_reduce_loss
from mmdet.registry import MODELS

__all__ = ['SoftTargetFocalLoss']


@MODELS.register_module()
class SoftTargetFocalLoss(nn.Module):
    """``alpha_t * |t - p|^gamma * BCE(p, t)`` with ``t = pos_target`` on the assigned class.

    Args:
        use_sigmoid: Must be True (per-class sigmoid scores, as RetinaNet and GFL heads use).
        gamma: Focusing exponent.
        alpha: Weight of the positive entries (``1 - alpha`` for the others).
        pos_target: Target of a positive prior's assigned class, in (0, 1].
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        loss_weight: Multiplier of the loss.
    """

    def __init__(self,
                 use_sigmoid: bool = True,
                 gamma: float = 2.0,
                 alpha: float = 0.25,
                 pos_target: float = 1.0,
                 reduction: str = 'mean',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if use_sigmoid is not True:
            raise ValueError('SoftTargetFocalLoss: `use_sigmoid` must be True (it is a per-class '
                             'sigmoid loss).')
        if not 0.0 < pos_target <= 1.0:
            raise ValueError(f'SoftTargetFocalLoss: `pos_target` must be in (0, 1], got '
                             f'{pos_target!r}.')
        if not 0.0 <= alpha <= 1.0 or gamma < 0:
            raise ValueError(f'SoftTargetFocalLoss: need 0 <= `alpha` <= 1 and `gamma` >= 0, got '
                             f'alpha={alpha!r}, gamma={gamma!r}.')
        if reduction not in ('none', 'mean', 'sum'):
            raise ValueError(f"SoftTargetFocalLoss: `reduction` must be 'none', 'mean' or "
                             f"'sum', got {reduction!r}.")
        self.use_sigmoid = True
        self.gamma = float(gamma)
        self.alpha = float(alpha)
        self.pos_target = float(pos_target)
        self.reduction = reduction
        self.loss_weight = float(loss_weight)

    def forward(self,
                pred: torch.Tensor,
                target: Union[torch.Tensor, Sequence[torch.Tensor]],
                weight: Optional[torch.Tensor] = None,
                avg_factor: Optional[float] = None,
                reduction_override: Optional[str] = None) -> torch.Tensor:
        """Loss of class logits ``pred`` (N, K) against labels (K = background).

        Args:
            pred: Class logits (N, K).
            target: Labels (N,) in [0, K], or ``(labels, quality)`` as GFLHead passes them.
            weight: Per-prior weights (N,) or per-entry weights (N, K).
            avg_factor: Normaliser of the ``'mean'`` reduction (e.g. the number of positives).
            reduction_override: Replaces ``reduction`` for this call.

        Returns:
            torch.Tensor: The weighted loss.
        """
        labels = target[0] if isinstance(target, (tuple, list)) else target
        n, k = pred.shape
        labels = labels.reshape(-1).long()
        if labels.numel() != n:
            raise ValueError(f'SoftTargetFocalLoss: {labels.numel()} labels for {n} predictions.')
        fg = (labels >= 0) & (labels < k)
        pos = torch.zeros_like(pred, dtype=torch.bool)
        pos[fg, labels[fg]] = True
        t = pos.to(pred.dtype) * self.pos_target
        p = pred.sigmoid()
        focal = (t - p).abs().pow(self.gamma)
        alpha_t = torch.where(pos, pred.new_tensor(self.alpha), pred.new_tensor(1 - self.alpha))
        loss = F.binary_cross_entropy_with_logits(pred, t, reduction='none') * alpha_t * focal
        if weight is not None and weight.dim() == 1:
            weight = weight.reshape(-1, 1)
        reduction = reduction_override or self.reduction
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)
