"""Distillation for image classifiers (the CIFAR-100 KD benchmark)."""
from pathlib import Path
from typing import Dict, Optional, Sequence, Set, Union

import torch
from mmengine.config import Config
from mmengine.structures import BaseDataElement

from mmdet.registry import MODELS

from ..classifiers.image_classifier import ImageClassifier
from ..contract import DistillBatch, DistillInput
from .distiller_mixin import DistillerMixin, TemperatureLike
from .taps import OutputTaps, single_call

__all__ = ['DistillImageClassifier']


@MODELS.register_module()
class DistillImageClassifier(DistillerMixin, ImageClassifier):
    """An :class:`ImageClassifier` student distilled from a frozen, calibrated classifier teacher.

    Loss: ``ce_loss_weight`` times the student's own classification loss, plus every
    configured distillation loss on ``inputs='logits'`` (teacher / T, with the labels).

    Args:
        backbone, data_preprocessor, loss, label_smoothing, init_cfg: The student, as for
            :class:`ImageClassifier`.
        teacher_config: The teacher's config (path or model dict); an ``ImageClassifier``.
        teacher_ckpt, teacher_temperature, distill_losses, teacher_inference, teacher_fp16: As
            for :class:`~mmkdcal.models.distillers.DistillSingleStageDetector`.
        ce_loss_weight: Weight of the student's cross-entropy (mdistiller's KD: 0.1).
    """

    DISTILL_INPUTS = (
        DistillInput('logits', 'logits', 'image softmax logits (N, K)', activation='softmax',
                     provides=frozenset({'labels'}), temperature=True),
    )

    def __init__(self, backbone: dict, teacher_config: Union[str, Path, dict, Config],
                 teacher_ckpt: Optional[str] = None, teacher_temperature: TemperatureLike = None,
                 distill_losses: Optional[Dict[str, dict]] = None, ce_loss_weight: float = 1.0,
                 teacher_inference: Optional[dict] = None, teacher_fp16: Optional[bool] = None,
                 data_preprocessor: Optional[dict] = None, loss: Optional[dict] = None,
                 label_smoothing: float = 0.0, init_cfg: Optional[dict] = None) -> None:
        super().__init__(backbone=backbone, data_preprocessor=data_preprocessor, loss=loss,
                         label_smoothing=label_smoothing, init_cfg=init_cfg)
        if isinstance(ce_loss_weight, bool) or not isinstance(ce_loss_weight, (int, float)) \
                or ce_loss_weight < 0:
            raise ValueError(f'model.ce_loss_weight must be a number >= 0, got '
                             f'{ce_loss_weight!r}.')
        self.ce_loss_weight = float(ce_loss_weight)
        self._init_distiller(teacher_config, teacher_ckpt, teacher_temperature,
                             teacher_inference, distill_losses, teacher_fp16)

    def _check_teacher(self, teacher) -> None:
        k = getattr(getattr(teacher, 'backbone', None), 'num_classes', None)
        if not hasattr(teacher, 'extract_logits') or k is None:
            raise ValueError(f'model.teacher_config builds a {type(teacher).__name__}: the '
                             'teacher must be an ImageClassifier whose backbone has '
                             '`num_classes`.')
        s_k = getattr(self.backbone, 'num_classes', None)
        if s_k is not None and s_k != k:
            raise ValueError(f'Class-count mismatch: the student backbone has num_classes={s_k}, '
                             f'the teacher {k}.')

    def num_teacher_logit_classes(self) -> int:
        return int(self.teacher.backbone.num_classes)

    def loss(self, inputs: torch.Tensor,
             data_samples: Sequence[BaseDataElement]) -> Dict[str, torch.Tensor]:
        """Weighted classification loss plus the distillation losses."""
        losses = super().loss(inputs, data_samples)
        losses['loss_cls'] = self.ce_loss_weight * losses['loss_cls']
        return losses

    def _tap_student(self, taps: OutputTaps, needed: Set[str]) -> None:
        taps.module_output('logits', self.backbone)

    def _distill_batches(self, taps: OutputTaps, inputs: torch.Tensor, data_samples,
                         needed: Set[str], teacher_out=None) -> Dict[str, DistillBatch]:
        with self.teacher_context(inputs.device.type):
            t_logits = self.teacher.extract_logits(inputs).float()
        self._check_finite(t_logits, 'logits')
        s_logits = single_call(taps['logits'], 'backbone')
        labels = self.stack_labels(data_samples, inputs.shape[0]).to(s_logits.device)
        return {'logits': DistillBatch(s_logits, self.scale_teacher_logits(t_logits),
                                       labels=labels)}
