"""Box distillation: L1 (and GIoU for decoded boxes) between student and teacher boxes."""
from typing import Optional, Union

from torch import Tensor

from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps

from ..contract import DistillLoss
from .utils import (check_ndim, check_non_negative, check_reduction, check_same_shape, check_weight,
                    detach_teacher, weighted_reduce)

__all__ = ['BoxKDLoss']


@MODELS.register_module()
class BoxKDLoss(DistillLoss):
    r"""Box distillation: the student's boxes regress onto the teacher's.

    For row :math:`i` with student box :math:`s_i` and teacher box :math:`t_i` (4 numbers each):

    .. math::
        \ell_i = w_{L1} \sum_{j=1}^{4} |s_{ij} - t_{ij}|
               + w_{GIoU} \big(1 - \mathrm{GIoU}(s_i, t_i)\big),

    weighted per row (e.g. by the teacher's confidence) and averaged over rows, or summed and
    divided by ``avg_factor``. The L1 term works on any box parametrisation (dense heads' deltas
    or distances, normalised DETR boxes); the GIoU term needs decoded ``(x1, y1, x2, y2)`` boxes
    and is refused at build time on inputs that do not declare them. DETR-family distillers
    (DETRDistill, Chang et al. ICCV 2023) use this L1 + GIoU pair against the teacher's boxes.

    The teacher boxes are detached.

    Args:
        l1_weight (float): :math:`w_{L1}`. Defaults to 1.0.
        giou_weight (float): :math:`w_{GIoU}`; 0 disables the term. Defaults to 0.0.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'`` over rows. Defaults to ``'mean'``.
    """

    input_kinds = ('boxes', )
    accepts_weight = True
    accepts_avg_factor = True

    def __init__(self, l1_weight: float = 1.0, giou_weight: float = 0.0,
                 loss_weight: float = 1.0, reduction: str = 'mean') -> None:
        super().__init__()
        self.l1_weight = check_non_negative('l1_weight', l1_weight)
        self.giou_weight = check_non_negative('giou_weight', giou_weight)
        if self.l1_weight == 0 and self.giou_weight == 0:
            raise ValueError('BoxKDLoss: l1_weight and giou_weight are both 0; set at least one.')
        self.loss_weight = check_non_negative('loss_weight', loss_weight)
        self.reduction = check_reduction(reduction)

    def check_input(self, spec) -> Optional[str]:
        """Also refuse the GIoU term on box outputs that are not decoded boxes."""
        problem = super().check_input(spec)
        if problem is None and self.giou_weight > 0 and getattr(spec, 'box_format',
                                                                None) != 'xyxy':
            return (f'BoxKDLoss(giou_weight={self.giou_weight}) needs decoded (x1, y1, x2, y2) '
                    f'boxes, but inputs={spec.name!r} gives {spec.description}; set '
                    'giou_weight=0')
        return problem

    def forward(self,
                student_boxes: Tensor,
                teacher_boxes: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[Union[float, Tensor]] = None) -> Tensor:
        """Compute the loss.

        Args:
            student_boxes (Tensor): Student boxes, shape (M, 4).
            teacher_boxes (Tensor): Teacher boxes, shape (M, 4).
            weight (Tensor, optional): Per-row weights, shape (M,). Defaults to None.
            avg_factor (float | Tensor, optional): With ``reduction='mean'``, the loss is
                ``sum / avg_factor`` instead of the mean over rows. Defaults to None.

        Returns:
            Tensor: Scalar loss (or shape (M,) with ``reduction='none'``).
        """
        check_ndim('student_boxes', student_boxes, 2, '(M, 4)')
        check_same_shape('student_boxes', student_boxes, 'teacher_boxes', teacher_boxes)
        if student_boxes.shape[1] != 4:
            raise ValueError(f'student_boxes must have 4 columns, got '
                             f'{tuple(student_boxes.shape)}.')
        check_weight(weight, [student_boxes.shape[:1]])
        t = detach_teacher(teacher_boxes, student_boxes)
        per_row = student_boxes.new_zeros(student_boxes.shape[0])
        if self.l1_weight > 0:
            per_row = per_row + self.l1_weight * (student_boxes - t).abs().sum(dim=1)
        if self.giou_weight > 0:
            # mmdet's GIoU, as its GIoULoss computes it (areas floored at eps=1e-6)
            giou = bbox_overlaps(student_boxes, t, mode='giou', is_aligned=True)
            per_row = per_row + self.giou_weight * (1 - giou)
        return self.loss_weight * weighted_reduce(per_row, weight, self.reduction, avg_factor)
