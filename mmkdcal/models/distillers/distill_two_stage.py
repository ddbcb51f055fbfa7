"""Distillation for two-stage detectors (Faster R-CNN and relatives)."""
from pathlib import Path
from typing import Dict, List, Optional, Set, Union

from mmengine.config import Config, ConfigDict
from torch import Tensor

from mmdet.models.detectors import TwoStageDetector
from mmdet.registry import MODELS
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig

from .distill_inputs import DistillBatch, DistillInput
from .distill_single_stage import _single_call, neck_channels
from .distiller_mixin import DistillerMixin, TemperatureLike, flatten_level_outputs
from .taps import OutputTaps

__all__ = ['DistillTwoStageDetector']


@MODELS.register_module()
class DistillTwoStageDetector(DistillerMixin, TwoStageDetector):
    """A two-stage student detector distilled from a frozen, calibrated teacher.

    The student trains through MMDetection's own ``TwoStageDetector.loss`` and RoI-head ``loss``
    (RPN, proposal assignment and sampling, task losses), observed, not copied: the RoI head's
    ``bbox_head.loss_and_target`` call is recorded for the RoIs the sampler chose, the student's
    logits on them and their assigned labels, and the RPN head's forward for its objectness.
    RoI-level KD as in mdistiller's detection KD: the teacher's RoI head runs on exactly those
    RoIs (on the teacher's own features), so both classify the same boxes. Supported ``inputs``:

    - ``'roi_cls'``: RoI classification logits (M, K+1) of the student's sampled RoIs (positives
      first, per image, as the sampler orders them); the teacher's (K+1)-way softmax logits are
      divided by the calibration temperature; ``labels`` are the RoIs' assigned labels (``K`` =
      background), e.g. for ``KDLoss`` / ``DKDLoss``.
    - ``'rpn_cls'``: RPN objectness logits, one row per anchor (M, 1) in (level, image, y, x,
      anchor) order like dense heads (sigmoid, not temperature-scaled: the calibration
      temperature belongs to the classification head), with ``avg_factor`` = the sum over anchors of the teacher's max
      objectness probability, e.g. ``BinaryKDLoss``.
    - ``'neck'``: FPN features, summed over levels.

    Args:
        backbone, neck, rpn_head, roi_head, train_cfg, test_cfg, data_preprocessor, init_cfg:
            The student, as for any :class:`TwoStageDetector`.
        teacher_config, teacher_ckpt, teacher_temperature, distill_losses, teacher_fp16: As for
            :class:`~mmkdcal.models.distillers.DistillSingleStageDetector`.
    """

    DISTILL_INPUTS = (
        DistillInput('roi_cls', 'logits', "softmax logits (M, K + 1) of the student's sampled "
                     'RoIs', activation='softmax', provides=frozenset({'labels'}),
                     temperature=True),
        DistillInput('rpn_cls', 'logits', 'per-anchor sigmoid RPN objectness logits (M, 1)',
                     activation='sigmoid', provides=frozenset({'avg_factor'})),
        DistillInput('neck', 'features', 'neck feature maps (N, C, H, W) per level',
                     per_level=True),
    )

    def __init__(self,
                 backbone: ConfigType,
                 roi_head: ConfigType,
                 train_cfg: ConfigType,
                 test_cfg: ConfigType,
                 teacher_config: Union[str, Path, dict, Config],
                 teacher_ckpt: Optional[str] = None,
                 teacher_temperature: TemperatureLike = None,
                 distill_losses: Optional[Dict[str, dict]] = None,
                 teacher_fp16: bool = False,
                 neck: OptConfigType = None,
                 rpn_head: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        train_cfg = ConfigDict(train_cfg) if isinstance(train_cfg, dict) else train_cfg
        test_cfg = ConfigDict(test_cfg) if isinstance(test_cfg, dict) else test_cfg
        super().__init__(
            backbone=backbone,
            neck=neck,
            rpn_head=rpn_head,
            roi_head=roi_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self._init_distiller(teacher_config, teacher_ckpt, teacher_temperature, teacher_fp16,
                             distill_losses)

    def _check_teacher(self, teacher) -> None:
        t_roi = getattr(teacher, 'roi_head', None)
        if t_roi is None or not getattr(teacher, 'with_rpn', False):
            raise ValueError(f'model.teacher_config builds a {type(teacher).__name__}: the '
                             'teacher must be a two-stage detector with an RPN and a RoI head.')
        s_k = self.roi_head.bbox_head.num_classes
        t_k = t_roi.bbox_head.num_classes
        if s_k != t_k:
            raise ValueError(f'Class-count mismatch: roi_head.bbox_head.num_classes is {s_k} for '
                             f'the student and {t_k} for the teacher.')
        if getattr(self.roi_head.bbox_head, 'custom_cls_channels', False):
            raise ValueError('RoI heads with custom classification channels are not supported.')

    def _input_specs(self) -> List[DistillInput]:
        roi, rpn, neck = self.DISTILL_INPUTS
        s_ch, t_ch = neck_channels(self), neck_channels(self.teacher)
        neck = neck.with_channels(None if None in (s_ch, t_ch) else (s_ch, t_ch))
        # a student that takes given proposals has no RPN outputs to distil
        return [roi, rpn, neck] if self.with_rpn else [roi, neck]

    def num_teacher_logit_classes(self) -> int:
        return self.teacher.roi_head.bbox_head.num_classes + 1

    # ------------------------------------------------------------------ training
    def _tap_student(self, taps: OutputTaps, needed: Set[str]) -> None:
        if 'neck' in needed:
            taps.module_output('feats', self.neck if self.with_neck else self.backbone)
        if 'rpn_cls' in needed:
            taps.module_output('rpn', self.rpn_head)
        if 'roi_cls' in needed:
            taps.method_call('roi', self.roi_head.bbox_head, 'loss_and_target')

    def _distill_batches(self, taps: OutputTaps, batch_inputs: Tensor, batch_data_samples,
                         needed: Set[str]) -> Dict[str, DistillBatch]:
        batches: Dict[str, DistillBatch] = {}
        roi = _single_call(taps['roi'], 'RoI head') if 'roi_cls' in needed else None
        with self.teacher_context(batch_inputs.device.type):
            t_feats = self.teacher.extract_feat(batch_inputs)
            t_rpn = self.teacher.rpn_head(t_feats)[0] if 'rpn_cls' in needed else None
            t_roi = (self.teacher.roi_head._bbox_forward(t_feats, roi['rois'])['cls_score']
                     if roi is not None else None)
        if self.teacher_fp16:
            t_feats, t_rpn, t_roi = self._float((t_feats, t_rpn, t_roi))
        if roi is not None:
            self._check_finite(t_roi, 'RoI logits')
            labels = roi['result']['bbox_targets'][0]
            batches['roi_cls'] = DistillBatch(roi['cls_score'], self.scale_teacher_logits(t_roi),
                                              labels=labels)
        if t_rpn is not None:
            c = self.rpn_head.cls_out_channels
            s = flatten_level_outputs(_single_call(taps['rpn'], 'RPN head')[0], c)
            t = flatten_level_outputs(t_rpn, c)
            if s.shape != t.shape:
                raise ValueError(f"inputs='rpn_cls': RPN outputs differ in shape, "
                                 f'{tuple(s.shape)} (student) vs {tuple(t.shape)} (teacher): use '
                                 'the same anchor_generator.')
            avg = t.sigmoid().max(dim=1).values.sum().clamp(min=1.0)
            batches['rpn_cls'] = DistillBatch(s, t, avg_factor=avg)
        if 'neck' in needed:
            batches['neck'] = DistillBatch(list(_single_call(taps['feats'], 'neck')),
                                           list(t_feats))
        return batches
