"""Feature distillation via the Pearson correlation coefficient (PKD, Cao et al., 2022)."""
import torch.nn.functional as F
from mmdet.registry import MODELS
from torch import Tensor

from ._utils import check_ndim, check_non_negative, detach_teacher, equal_widths
from .base import DistillLoss

__all__ = ['PKDLoss']


def _standardise(feat: Tensor, eps: float) -> Tensor:
    """Per-channel standardisation over (N, H, W) with the population std."""
    mean = feat.mean(dim=(0, 2, 3), keepdim=True)
    std = feat.var(dim=(0, 2, 3), keepdim=True, unbiased=False).sqrt()
    return (feat - mean) / (std + eps)


@MODELS.register_module()
class PKDLoss(DistillLoss):
    r"""Pearson-correlation feature distillation.

    From Cao, Zhang, Gao, Cheng, Cheng, Cheng, "PKD: General Distillation Framework for Object
    Detectors via Pearson Correlation Coefficient" (NeurIPS 2022, arXiv 2207.02039).
    Each channel :math:`c` of both feature maps is standardised over its :math:`n = N H W`
    values (zero mean, unit population standard deviation):
    :math:`\hat F_c = (F_c - \mu_c) / (\sigma_c + \epsilon)`, and

    .. math::
        L = \frac{w}{2}\, \frac{1}{C n} \sum_{c, i} (\hat F^s_{ci} - \hat F^t_{ci})^2
          = w\, \frac{1}{C} \sum_c (1 - r_c),

    where :math:`r_c` is the Pearson correlation between student and teacher channel
    :math:`c` (the identity holds exactly for :math:`\epsilon = 0` because each standardised
    channel has :math:`\sum_i \hat F_{ci}^2 = n`; with the population std used here there is
    no :math:`(n-1)/n` factor). The loss is therefore invariant to any per-channel affine
    change :math:`a F + b` (:math:`a > 0`) of either feature map, so feature magnitudes of
    heterogeneous detectors need no matching. :math:`\epsilon = 10^{-6}` keeps a constant
    channel finite (it standardises to zeros).

    Channel counts must match (PKD needs no adapter for FPN features of equal width). If the
    spatial sizes differ, the student map is bilinearly resized to the teacher's size
    (``resize_stu=True``) or the teacher's to the student's.

    The teacher features are detached.

    Args:
        loss_weight (float): :math:`w`. Defaults to 1.0.
        resize_stu (bool): Which map to resize when spatial sizes differ. Defaults to True.
    """

    eps = 1e-6
    input_kinds = ('features', )

    def check_input(self, spec):
        """Also refuse feature maps of different widths (PKD has no adapter)."""
        return super().check_input(spec) or equal_widths('PKDLoss', spec)

    def __init__(self, loss_weight: float = 1.0, resize_stu: bool = True) -> None:
        super().__init__()
        self.loss_weight = check_non_negative('loss_weight', loss_weight)
        if not isinstance(resize_stu, bool):
            raise TypeError(f'resize_stu must be a bool, got {resize_stu!r}.')
        self.resize_stu = resize_stu

    def forward(self, student_feat: Tensor, teacher_feat: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            student_feat (Tensor): Student feature map, shape (N, C, Hs, Ws).
            teacher_feat (Tensor): Teacher feature map, shape (N, C, Ht, Wt).

        Returns:
            Tensor: Scalar loss.
        """
        check_ndim('student_feat', student_feat, 4, '(N, C, H, W)')
        check_ndim('teacher_feat', teacher_feat, 4, '(N, C, H, W)')
        s_shape, t_shape = tuple(student_feat.shape), tuple(teacher_feat.shape)
        if s_shape[:2] != t_shape[:2]:
            raise ValueError(f'student_feat {s_shape} and teacher_feat {t_shape} must share the '
                             'batch size and channel count (N, C); PKD needs no adapter, so '
                             'distil feature maps of equal width (e.g. FPN outputs).')
        teacher_feat = detach_teacher(teacher_feat, student_feat)
        if s_shape[2:] != t_shape[2:]:
            if self.resize_stu:
                student_feat = F.interpolate(
                    student_feat, size=t_shape[2:], mode='bilinear', align_corners=False)
            else:
                teacher_feat = F.interpolate(
                    teacher_feat, size=s_shape[2:], mode='bilinear', align_corners=False)
        norm_s = _standardise(student_feat, self.eps)
        norm_t = _standardise(teacher_feat, self.eps)
        return self.loss_weight * F.mse_loss(norm_s, norm_t) / 2
