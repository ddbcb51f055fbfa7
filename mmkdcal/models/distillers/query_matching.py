"""One-to-one matching of a student's decoder queries to a teacher's (DETR-family KD).

DETRDistill's Hungarian matching (Chang et al., ICCV 2023), the teacher's predictions playing
the part of the ground truth; the cost of pairing student query ``i`` with teacher query ``j``
is ``w_cls KL(q_j || p_i) + w_L1 |b_i - b_j|_1 - w_GIoU GIoU(b_i, b_j)`` on the heads'
normalised (cx, cy, w, h) boxes, for all pairs with matrix products, assigned with SciPy's
``linear_sum_assignment`` as mmdet's ``HungarianAssigner`` (docs/detr_distillation.md).
"""
from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from mmdet.structures.bbox import bbox_cxcywh_to_xyxy, bbox_overlaps

__all__ = ['class_kl_cost', 'match_queries', 'query_match_cost']


def class_kl_cost(student_logits: Tensor, teacher_logits: Tensor, activation: str) -> Tensor:
    """KL(teacher || student) of the class predictions for every pair: (N, K) x (M, K) -> (N, M),
    per-class Bernoulli KL summed over classes (``'sigmoid'``) or categorical (``'softmax'``)."""
    if activation == 'sigmoid':
        q = teacher_logits.sigmoid()
        log_p, log_1p = F.logsigmoid(student_logits), F.logsigmoid(-student_logits)
        log_q, log_1q = F.logsigmoid(teacher_logits), F.logsigmoid(-teacher_logits)
        cross = -(log_p @ q.T + log_1p @ (1 - q).T)  # (N, M) binary cross-entropy
        entropy = -(q * log_q + (1 - q) * log_1q).sum(dim=1)  # (M,)
        return cross - entropy[None, :]
    if activation == 'softmax':
        log_q = F.log_softmax(teacher_logits, dim=1)
        log_p = F.log_softmax(student_logits, dim=1)
        q = log_q.exp()
        return -(log_p @ q.T) + (q * log_q).sum(dim=1)[None, :]
    raise ValueError(f"activation must be 'sigmoid' or 'softmax', got {activation!r}.")


def query_match_cost(s_logits: Tensor, s_boxes: Tensor, t_logits: Tensor, t_boxes: Tensor,
                     activation: str, weights: Dict[str, float]) -> Tensor:
    """The matching cost of every (student query, teacher query) pair, shape (Qs, Qt).

    Args:
        s_logits, t_logits: Class logits (Qs, C) and (Qt, C).
        s_boxes, t_boxes: Normalised (cx, cy, w, h) boxes (Qs, 4) and (Qt, 4).
        activation, weights: ``'sigmoid'`` or ``'softmax'``; ``dict(cls=, l1=, giou=)``.
    """
    s_logits, t_logits = s_logits.float(), t_logits.float()
    s_boxes, t_boxes = s_boxes.float(), t_boxes.float()
    cost = s_logits.new_zeros(s_logits.shape[0], t_logits.shape[0])
    if weights.get('cls', 0):
        cost = cost + weights['cls'] * class_kl_cost(s_logits, t_logits, activation)
    if weights.get('l1', 0):
        cost = cost + weights['l1'] * torch.cdist(s_boxes, t_boxes, p=1)
    if weights.get('giou', 0):
        # the GIoU of every pair, as mmdet's IoUCost computes it for its HungarianAssigner
        giou = bbox_overlaps(bbox_cxcywh_to_xyxy(s_boxes), bbox_cxcywh_to_xyxy(t_boxes),
                             mode='giou')
        cost = cost - weights['giou'] * giou
    return cost


def match_queries(cost: Tensor) -> Tuple[Tensor, Tensor]:
    """The minimum-cost one-to-one assignment of a (Qs, Qt) cost matrix.

    Returns:
        ``(student_index, teacher_index)``, each of length ``min(Qs, Qt)``, ordered by teacher
        query (so the rows of a distillation batch follow the teacher's query order).
    """
    if not torch.isfinite(cost).all():
        raise FloatingPointError('The query matching cost has NaN/inf entries: the student or '
                                 'the teacher produced non-finite class logits or boxes.')
    rows, cols = linear_sum_assignment(cost.detach().cpu().numpy())
    s_idx = torch.as_tensor(rows, dtype=torch.long, device=cost.device)
    t_idx = torch.as_tensor(cols, dtype=torch.long, device=cost.device)
    order = torch.argsort(t_idx)
    return s_idx[order], t_idx[order]
