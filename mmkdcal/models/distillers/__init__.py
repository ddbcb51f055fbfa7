"""Distillers: the student model class plus a frozen, calibrated teacher.

The distiller of a student class ``X`` is the registered class ``DistillX``, an ``X`` itself.
"""
from ..contract import DistillBatch, DistillInput, call_distill_loss, check_loss_input
from .distill_detr import (DETRDistillerMixin, DistillConditionalDETR, DistillDeformableDETR,
                           DistillDETR, DistillDINO)
from .distill_image_classifier import DistillImageClassifier
from .distill_single_stage import (DenseDistillerMixin, DistillATSS, DistillCenterNet, DistillDDOD,
                                   DistillFCOS, DistillGFL, DistillPAA, DistillRetinaNet,
                                   DistillRTMDet, DistillSingleStageDetector,
                                   DistillSingleStageInstanceSegmentor, DistillTOOD, DistillVFNet,
                                   DistillYOLOX, check_dense_head_layout)
from .distill_two_stage import (DistillCascadeRCNN, DistillFasterRCNN, DistillMaskRCNN,
                                DistillTwoStageDetector)
from .distiller_mixin import DistillerMixin, flatten_level_outputs, load_teacher_config
from .head_semantics import (DenseHeadSemantics, dense_head_semantics, register_dense_head,
                             score_logits)
from .taps import OutputTaps, single_call
from .zoo import distiller_type

__all__ = [
    'DETRDistillerMixin', 'DenseDistillerMixin', 'DenseHeadSemantics', 'DistillATSS',
    'DistillBatch', 'DistillCascadeRCNN', 'DistillCenterNet', 'DistillConditionalDETR',
    'DistillDDOD', 'DistillDETR', 'DistillDINO', 'DistillDeformableDETR', 'DistillFCOS',
    'DistillFasterRCNN', 'DistillGFL', 'DistillImageClassifier', 'DistillInput', 'DistillMaskRCNN',
    'DistillPAA', 'DistillRTMDet', 'DistillRetinaNet', 'DistillSingleStageDetector', 'DistillTOOD',
    'DistillSingleStageInstanceSegmentor', 'DistillTwoStageDetector', 'DistillVFNet',
    'DistillYOLOX', 'DistillerMixin', 'OutputTaps', 'single_call', 'call_distill_loss',
    'check_dense_head_layout', 'check_loss_input', 'dense_head_semantics', 'distiller_type',
    'flatten_level_outputs', 'load_teacher_config', 'register_dense_head', 'score_logits'
]
