"""Feature imitation with a mean squared error (FitNets, Romero et al., 2015)."""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS

from ..contract import DistillLoss
from .adapter import ChannelAdapterMixin
from .utils import check_non_negative, detach_teacher

__all__ = ['FeatureMSELoss']


@MODELS.register_module()
class FeatureMSELoss(ChannelAdapterMixin, DistillLoss):
    r"""Mean squared error between (adapted) student and teacher feature maps (FitNets):

    .. math::
        L = \frac{w}{N C_t H W} \sum_{n,c,h,w} \big(r(F^s)_{nchw} - F^t_{nchw}\big)^2,

    :math:`r` a learnable 1x1 convolution (with bias) from :math:`C_s` to :math:`C_t`
    channels (see :class:`ChannelAdapterMixin`), else the identity. Spatial sizes must match
    (no silent resizing: distil levels of the same stride). The teacher features are detached.

    Args:
        student_channels, teacher_channels, adapter: :math:`C_s`, :math:`C_t`, as for
            :class:`ChannelAdapterMixin`.
        loss_weight (float): :math:`w`.
    """

    def __init__(self, student_channels: Optional[int] = None,
                 teacher_channels: Optional[int] = None, loss_weight: float = 1.0,
                 adapter: Optional[bool] = None) -> None:
        super().__init__()
        self.loss_weight = check_non_negative('loss_weight', loss_weight)
        self.init_adapter(student_channels, teacher_channels, adapter)

    def forward(self, student_feat: Tensor, teacher_feat: Tensor) -> Tensor:
        """The scalar loss of (N, Cs, H, W) student and (N, Ct, H, W) teacher maps."""
        s_shape, t_shape = self.check_maps(student_feat, teacher_feat, '(N, Cs, H, W)',
                                           '(N, Ct, H, W)')
        if s_shape[0] != t_shape[0] or s_shape[2:] != t_shape[2:]:
            raise ValueError(f'student_feat {s_shape} and teacher_feat {t_shape} must share the '
                             'batch size and spatial size (N, H, W); distil levels of the same '
                             'stride.')
        student_feat, teacher_feat = self.adapt(student_feat, teacher_feat)
        return self.loss_weight * F.mse_loss(student_feat,
                                             detach_teacher(teacher_feat, student_feat))
