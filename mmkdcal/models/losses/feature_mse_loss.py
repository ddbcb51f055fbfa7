"""Feature imitation with a mean squared error (FitNets, Romero et al., 2015)."""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS

from ..contract import DistillLoss
from .adapter import ChannelAdapterMixin
from .utils import check_ndim, check_non_negative, detach_teacher

__all__ = ['FeatureMSELoss']


@MODELS.register_module()
class FeatureMSELoss(ChannelAdapterMixin, DistillLoss):
    r"""Mean squared error between (adapted) student and teacher feature maps.

    From Romero, Ballas, Kahou, Chassang, Gatta, Bengio, "FitNets: Hints for Thin Deep Nets"
    (ICLR 2015, arXiv 1412.6550): the student's "guided" layer, passed through a learned
    regressor :math:`r`, imitates the teacher's "hint" layer:

    .. math::
        L = \frac{w}{N C_t H W} \sum_{n,c,h,w} \big(r(F^s)_{nchw} - F^t_{nchw}\big)^2 .

    :math:`r` is a 1x1 convolution from :math:`C_s` to :math:`C_t` channels (with bias),
    created when both channel counts are given and differ, or when ``adapter=True``;
    otherwise :math:`r` is the identity. The adapter is a learnable part of the loss, trained
    with the student; a distiller keeps it out of the student's ``state_dict`` (it is saved
    apart in the checkpoint), so distilled checkpoints load into the plain student config.

    Spatial sizes must match: a mismatch raises a ValueError instead of silently resizing
    (pick student and teacher levels with the same stride, e.g. the same FPN level).

    The teacher features are detached.

    Args:
        student_channels (int, optional): :math:`C_s`. Defaults to None.
        teacher_channels (int, optional): :math:`C_t`. Defaults to None.
        loss_weight (float): :math:`w`. Defaults to 1.0.
        adapter (bool, optional): Force (True) or forbid (False) the 1x1 adapter; None creates
            it only when both channel counts are given and differ. Defaults to None.
    """

    def __init__(self,
                 student_channels: Optional[int] = None,
                 teacher_channels: Optional[int] = None,
                 loss_weight: float = 1.0,
                 adapter: Optional[bool] = None) -> None:
        super().__init__()
        self.loss_weight = check_non_negative('loss_weight', loss_weight)
        self.init_adapter(student_channels, teacher_channels, adapter)

    def forward(self, student_feat: Tensor, teacher_feat: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            student_feat (Tensor): Student feature map, shape (N, Cs, H, W).
            teacher_feat (Tensor): Teacher feature map, shape (N, Ct, H, W).

        Returns:
            Tensor: Scalar loss.
        """
        check_ndim('student_feat', student_feat, 4, '(N, Cs, H, W)')
        check_ndim('teacher_feat', teacher_feat, 4, '(N, Ct, H, W)')
        s_shape, t_shape = tuple(student_feat.shape), tuple(teacher_feat.shape)
        if s_shape[0] != t_shape[0] or s_shape[2:] != t_shape[2:]:
            raise ValueError(f'student_feat {s_shape} and teacher_feat {t_shape} must share the '
                             'batch size and spatial size (N, H, W); distil levels of the same '
                             'stride.')
        student_feat, teacher_feat = self.adapt(student_feat, teacher_feat)
        return self.loss_weight * F.mse_loss(student_feat,
                                             detach_teacher(teacher_feat, student_feat))
