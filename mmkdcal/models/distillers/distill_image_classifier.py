"""Distillation for image classifiers (the CIFAR-100 KD benchmark), with the detectors' teacher
handling and calibration temperature."""
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

import torch
from mmengine.config import Config
from mmengine.structures import BaseDataElement

from mmdet.registry import MODELS

from ..classifiers.image_classifier import ImageClassifier
from .teacher_mixin import TeacherMixin, TemperatureLike

__all__ = ['DistillImageClassifier']


@MODELS.register_module()
class DistillImageClassifier(TeacherMixin, ImageClassifier):
    """An :class:`ImageClassifier` student distilled from a frozen, calibrated classifier teacher.

    Loss: ``ce_loss_weight * CE(student, y)`` plus every configured distillation loss on
    ``inputs='logits'``: the student's logits against the teacher's logits divided by the
    calibration temperature (losses whose ``forward`` takes ``labels``, like ``DKDLoss``, also get
    the ground-truth labels).

    Args:
        backbone, data_preprocessor, loss, label_smoothing, init_cfg: The student, as for
            :class:`ImageClassifier`.
        teacher_config: The teacher's config (path or model dict); an ``ImageClassifier``.
        teacher_ckpt: The teacher's checkpoint; required.
        teacher_temperature: ``None`` (fitted by ``TeacherCalibrationHook``), a float or one per
            class.
        distill_losses: ``{name: loss config with inputs='logits'}``.
        ce_loss_weight: Weight of the student's cross-entropy (mdistiller's KD uses 0.1 with 0.9
            on the KD term).
        teacher_fp16: Run the teacher under fp16 autocast.
    """

    DISTILL_INPUTS = ('logits',)

    def __init__(self,
                 backbone: dict,
                 teacher_config: Union[str, Path, dict, Config],
                 teacher_ckpt: Optional[str] = None,
                 teacher_temperature: TemperatureLike = None,
                 distill_losses: Optional[Dict[str, dict]] = None,
                 ce_loss_weight: float = 1.0,
                 teacher_fp16: bool = False,
                 data_preprocessor: Optional[dict] = None,
                 loss: Optional[dict] = None,
                 label_smoothing: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(backbone=backbone, data_preprocessor=data_preprocessor, loss=loss,
                         label_smoothing=label_smoothing, init_cfg=init_cfg)
        if ce_loss_weight < 0:
            raise ValueError(f'ce_loss_weight must be >= 0, got {ce_loss_weight}.')
        self.ce_loss_weight = float(ce_loss_weight)
        self._init_teacher(teacher_config, teacher_ckpt, teacher_temperature, teacher_fp16)
        s_k = getattr(self.backbone, 'num_classes', None)
        t_k = self.num_teacher_logit_classes()
        if s_k is not None and s_k != t_k:
            raise ValueError(f'Class-count mismatch: the student backbone has num_classes={s_k}, '
                             f'the teacher {t_k}.')
        self._init_distill_losses(distill_losses)

    def num_teacher_logit_classes(self) -> int:
        k = getattr(getattr(self.teacher, 'backbone', None), 'num_classes', None)
        if k is None:
            raise ValueError('The teacher must be an ImageClassifier whose backbone has '
                             '`num_classes`.')
        return int(k)

    def loss(self, inputs: torch.Tensor,
             data_samples: Sequence[BaseDataElement]) -> Dict[str, torch.Tensor]:
        """Weighted cross-entropy plus the distillation losses."""
        logits = self.extract_logits(inputs)
        labels = self.stack_labels(data_samples, inputs.shape[0]).to(logits.device)
        losses = dict(loss_cls=self.ce_loss_weight * self.classification_loss(logits, labels))
        if not self.distill_losses:
            return losses
        with self.teacher_context(inputs.device.type):
            t_logits = self.teacher.extract_logits(inputs)
        t_logits = t_logits.float()
        if not torch.isfinite(t_logits).all():
            raise FloatingPointError('The teacher produced NaN/inf logits: check teacher_ckpt '
                                     'and the data_preprocessor, or disable teacher_fp16.')
        t_logits = self.scale_teacher_logits(t_logits)
        for name in self.distill_losses:
            if self._loss_wants_labels[name]:
                losses[name] = self._call_distill_loss(name, logits, t_logits, labels)
            else:
                losses[name] = self._call_distill_loss(name, logits, t_logits)
        return losses
