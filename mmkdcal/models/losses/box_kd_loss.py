"""Box distillation: L1 (and GIoU for decoded boxes) between student and teacher boxes."""
from typing import Optional, Union

from torch import Tensor

from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_overlaps

from ..contract import DistillLoss
from .utils import (check_non_negative, check_pair, check_reduction, check_weight, detach_teacher,
                    weighted_reduce)

__all__ = ['BoxKDLoss']


@MODELS.register_module()
class BoxKDLoss(DistillLoss):
    r"""Box distillation: the student's boxes regress onto the teacher's. Per row:

    .. math::
        \ell_i = w_{L1} \sum_{j=1}^{4} |s_{ij} - t_{ij}|
               + w_{GIoU} \big(1 - \mathrm{GIoU}(s_i, t_i)\big),

    weighted per row and averaged (or summed and divided by ``avg_factor``). L1 works on any
    box parametrisation; GIoU needs decoded ``(x1, y1, x2, y2)`` boxes and is refused at build
    time on inputs that do not declare them (the L1 + GIoU pair of DETRDistill, ICCV 2023). The
    teacher boxes are detached.

    Args:
        l1_weight (float): :math:`w_{L1}`. Defaults to 1.0.
        giou_weight (float): :math:`w_{GIoU}`; 0 disables the term. Defaults to 0.0.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        reduction (str): ``'none'``, ``'mean'`` or ``'sum'`` over rows.
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
        if problem is None and self.giou_weight > 0 and getattr(spec, 'box_format', None) != 'xyxy':
            return (f'BoxKDLoss(giou_weight={self.giou_weight}) needs decoded (x1, y1, x2, y2) '
                    f'boxes, but inputs={spec.name!r} gives {spec.description}; set '
                    'giou_weight=0')
        return problem

    def forward(self, student_boxes: Tensor, teacher_boxes: Tensor,
                weight: Optional[Tensor] = None,
                avg_factor: Optional[Union[float, Tensor]] = None) -> Tensor:
        """The loss of (M, 4) boxes; ``weight`` (M,); with ``avg_factor``, ``sum /
        avg_factor`` instead of the mean. Returns a scalar ((M,) with ``reduction='none'``)."""
        check_pair('boxes', student_boxes, teacher_boxes, '(M, 4)')
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
