"""Distillers: the student model class plus a frozen, calibrated teacher."""
from ..contract import DistillBatch, DistillInput, call_distill_loss, check_loss_input
from .distill_detr import (DETRDistillerMixin, DistillConditionalDETR, DistillDeformableDETR,
                           DistillDETR, DistillDINO)
from .distill_image_classifier import DistillImageClassifier
from .distill_single_stage import DistillSingleStageDetector, check_dense_head_layout
from .distill_two_stage import DistillTwoStageDetector
from .distiller_mixin import DistillerMixin, flatten_level_outputs, load_teacher_config
from .head_semantics import (DenseHeadSemantics, dense_head_semantics, register_dense_head,
                             score_logits)
from .taps import OutputTaps, single_call

__all__ = [
    'DETRDistillerMixin', 'DenseHeadSemantics', 'DistillBatch', 'DistillConditionalDETR',
    'DistillDETR', 'DistillDINO', 'DistillDeformableDETR', 'DistillImageClassifier',
    'DistillInput', 'DistillSingleStageDetector', 'DistillTwoStageDetector', 'DistillerMixin',
    'OutputTaps',
    'single_call',
    'call_distill_loss', 'check_dense_head_layout', 'check_loss_input', 'dense_head_semantics',
    'flatten_level_outputs', 'load_teacher_config', 'register_dense_head', 'score_logits'
]
