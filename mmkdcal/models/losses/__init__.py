"""Knowledge-distillation losses, registered in MMDetection's ``MODELS`` registry.

Each subclasses :class:`DistillLoss` and detaches its teacher input.
"""
from ..contract import INPUT_KINDS, DistillLoss
from .binary_kd_loss import BinaryKDLoss
from .box_kd_loss import BoxKDLoss
from .cwd_loss import CWDLoss
from .dkd_loss import DKDLoss
from .feature_mse_loss import FeatureMSELoss
from .kd_loss import KDLoss
from .ld_loss import LDLoss
from .mlkd_loss import MLKDLoss
from .pkd_loss import PKDLoss

__all__ = [
    'DistillLoss', 'INPUT_KINDS', 'KDLoss', 'BoxKDLoss', 'BinaryKDLoss', 'DKDLoss', 'MLKDLoss',
    'LDLoss', 'FeatureMSELoss', 'PKDLoss', 'CWDLoss'
]
