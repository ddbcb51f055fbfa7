"""Distillers: the student model class plus a frozen, calibrated teacher."""
from .distill_image_classifier import DistillImageClassifier
from .distill_single_stage import DistillSingleStageDetector, check_dense_head_layout
from .distill_two_stage import DistillTwoStageDetector
from .teacher_mixin import TeacherMixin, load_teacher_config

__all__ = ['DistillImageClassifier', 'DistillSingleStageDetector', 'DistillTwoStageDetector',
           'TeacherMixin', 'check_dense_head_layout', 'load_teacher_config']
