"""Distillation for two-stage detectors, and the distiller of each such family."""
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Union

import torch
from mmengine.config import Config, ConfigDict
from torch import Tensor

from mmdet.models.detectors import CascadeRCNN, FasterRCNN, MaskRCNN, TwoStageDetector
from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox2roi

from ..contract import DistillBatch, DistillInput
from .distill_single_stage import neck_channels
from .distiller_mixin import (DistillerMixin, TemperatureLike, flatten_level_outputs,
                              foreground_confidence)
from .heterogeneous import (class_count_problem, detector_num_classes, hetero_pair,
                            roi_soft_targets, teacher_detections)
from .roi_head_stages import is_cascade, roi_stage
from .taps import OutputTaps, single_call

__all__ = ['DistillCascadeRCNN', 'DistillFasterRCNN', 'DistillMaskRCNN', 'DistillTwoStageDetector']


@MODELS.register_module()
class DistillTwoStageDetector(DistillerMixin, TwoStageDetector):
    """A two-stage student detector distilled from a frozen, calibrated teacher.

    The student trains through MMDetection's own ``TwoStageDetector.loss``, observed: each
    stage's ``bbox_head`` / ``mask_head`` ``loss_and_target`` call (the sampled RoIs, the
    student's logits, their labels) and the RPN head's forward. As in mdistiller's detection
    KD, the teacher's RoI head of the *same stage* classifies exactly those RoIs. Inputs
    (docs/distillation_protocol.md): ``'roi_cls'`` (per stage for cascades, weighted by
    ``stage_loss_weights``), ``'roi_mask'`` (``avg_factor`` = P * S * S), ``'rpn_cls'`` (not
    temperature-scaled) and ``'neck'``; a teacher of another family offers ``'neck'`` and its
    detections at the sampled RoIs, ``'roi_pred_cls'`` / ``'roi_pred_box'`` (:mod:`.heterogeneous`).

    Args:
        teacher_config, teacher_ckpt, teacher_temperature, distill_losses, teacher_inference,
            teacher_fp16: As for :class:`~mmkdcal.models.distillers.DistillSingleStageDetector`.
        roi_stages: Cascade stages whose RoIs are distilled (0-based); None: all.
        teacher_roi_stage: For a student with one RoI stage and a cascade teacher: the teacher
            stage (0-based) that classifies the student's RoIs (and masks them); required then.
        **student: The student detector's own arguments.
    """

    DISTILL_INPUTS = (
        DistillInput('roi_cls', 'logits', "softmax logits (M, K + 1) of the student's sampled "
                     'RoIs', activation='softmax', provides=frozenset({'labels'}),
                     temperature=True),
        DistillInput('roi_mask', 'masks', 'sigmoid mask logits (P, S * S) of the positive RoIs '
                     'at their class', activation='sigmoid', provides=frozenset({'avg_factor'})),
        DistillInput('rpn_cls', 'logits', 'per-anchor sigmoid RPN objectness logits (M, 1)',
                     activation='sigmoid', provides=frozenset({'avg_factor'})),
        DistillInput('neck', 'features', 'neck feature maps (N, C, H, W) per level',
                     per_level=True),
        DistillInput('roi_pred_cls', 'logits', 'softmax logits (M, K + 1) of the sampled RoIs vs '
                     "a teacher's calibrated detections", activation='softmax'),
        DistillInput('roi_pred_box', 'boxes', 'decoded boxes (P, 4) at the RoIs assigned to a '
                     'teacher detection', box_format='xyxy', provides=frozenset({'weight'})),
    )

    def __init__(self, teacher_config: Union[str, Path, dict, Config],
                 teacher_ckpt: Optional[str] = None, teacher_temperature: TemperatureLike = None,
                 distill_losses: Optional[Dict[str, dict]] = None,
                 teacher_inference: Optional[dict] = None, teacher_fp16: Optional[bool] = None,
                 roi_stages: Optional[Sequence[int]] = None,
                 teacher_roi_stage: Optional[int] = None, **student) -> None:
        for key in ('train_cfg', 'test_cfg'):  # mmdet reads them by attribute
            if isinstance(student.get(key), dict) and not isinstance(student[key], ConfigDict):
                student[key] = ConfigDict(student[key])
        super().__init__(**student)
        self.cascade = is_cascade(self.roi_head)
        n = self.roi_head.num_stages if self.cascade else 1
        if roi_stages is None:
            roi_stages = list(range(n))
        elif not self.cascade:
            raise ValueError('model.roi_stages is for cascade RoI heads; this student has one '
                             'stage. Remove it.')
        if (not isinstance(roi_stages, (list, tuple)) or not roi_stages
                or any(isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < n
                       for s in roi_stages) or len(set(roi_stages)) != len(roi_stages)):
            raise ValueError(f'model.roi_stages must list distinct stages in [0, {n}), got '
                             f'{roi_stages!r}.')
        self.roi_stages = list(roi_stages)
        self.teacher_roi_stage = teacher_roi_stage
        self._init_distiller(teacher_config, teacher_ckpt, teacher_temperature,
                             teacher_inference, distill_losses, teacher_fp16)

    def _check_teacher(self, teacher) -> None:
        t_roi = getattr(teacher, 'roi_head', None)
        if t_roi is None or not getattr(teacher, 'with_rpn', False):  # another family
            heads, problem = [roi_stage(self.roi_head.bbox_head, s) for s in self.roi_stages], None
            if any(h.custom_cls_channels or getattr(h.loss_cls, 'use_sigmoid', 0) for h in heads):
                problem = 'its RoI class scores are not a softmax over K + 1'
            elif not all(isinstance(h.bbox_coder, DeltaXYWHBBoxCoder) for h in heads):
                problem = 'its RoI box outputs are not deltas (DeltaXYWHBBoxCoder) of the RoIs'
            else:
                problem = class_count_problem(detector_num_classes(teacher), heads[0].num_classes)
            pred = t_roi is None and not problem  # FastRCNN (no RPN) detects nothing alone
            self.hetero = hetero_pair(self, teacher, type(self.roi_head).__name__,
                                      type(getattr(teacher, 'bbox_head', teacher)).__name__,
                                      self.DISTILL_INPUTS[4:] if pred else (),
                                      problem if t_roi is None else None)
            return
        s_k = roi_stage(self.roi_head.bbox_head, 0).num_classes
        t_k = roi_stage(t_roi.bbox_head, 0).num_classes
        if s_k != t_k:
            raise ValueError(f'Class-count mismatch: roi_head.bbox_head.num_classes is {s_k} for '
                             f'the student and {t_k} for the teacher.')
        if self.cascade and (not is_cascade(t_roi) or t_roi.num_stages <= max(self.roi_stages)):
            raise ValueError(
                f'The student is a {self.roi_head.num_stages}-stage cascade and distils stages '
                f'{self.roi_stages}; the teacher ({type(t_roi).__name__}) must be a cascade with '
                'those stages (set model.roi_stages to the stages both have).')
        k = self.teacher_roi_stage
        if k is not None and (self.cascade or not is_cascade(t_roi)):
            raise ValueError("model.teacher_roi_stage chooses the cascade teacher's stage that "
                             "runs on a one-stage student's RoIs; this pair has no such choice "
                             '(a cascade student, or a teacher with one RoI stage): remove it.')
        if not self.cascade and is_cascade(t_roi) and (
                isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < t_roi.num_stages):
            n = t_roi.num_stages
            raise ValueError(f'The teacher is a {n}-stage cascade but the student has one RoI '
                             f'stage: set model.teacher_roi_stage to the teacher stage in [0, '
                             f"{n}) that classifies the student's RoIs (e.g. {n - 1}, the last), "
                             f'got {k!r}.')
        for roi_head, who in ((self.roi_head, 'student'), (t_roi, 'teacher')):
            if hasattr(roi_head, 'semantic_head') or 'HybridTaskCascade' in type(roi_head).__name__:
                raise ValueError(f'The {who} has a {type(roi_head).__name__}, whose RoI forward '
                                 'needs its semantic and interleaved mask branches; RoI '
                                 'distillation supports Standard and Cascade RoI heads.')
        if getattr(roi_stage(self.roi_head.bbox_head, 0), 'custom_cls_channels', False):
            raise ValueError('RoI heads with custom classification channels are not supported.')

    def _input_specs(self) -> List[DistillInput]:
        roi, mask, rpn, neck, *pred = self.DISTILL_INPUTS
        neck = neck.with_channels(neck_channels(self), neck_channels(self.teacher))
        if self.hetero is not None:
            return [neck] + [p.with_per_level(self.cascade) for p in pred
                             if p.name in self.hetero.allowed]
        specs = [roi.with_per_level(self.cascade)]
        if self.with_mask and getattr(self.teacher, 'with_mask', False):
            specs.append(mask.with_per_level(self.cascade))
        if self.with_rpn:  # a student that takes given proposals has no RPN outputs to distil
            specs.append(rpn)
        return specs + [neck]

    def num_teacher_logit_classes(self) -> int:
        if self.hetero is not None:  # its calibrator maps detection scores
            return detector_num_classes(self.teacher)
        return roi_stage(self.teacher.roi_head.bbox_head, 0).num_classes + 1

    # ------------------------------------------------------------------ training
    def _tap_student(self, taps: OutputTaps, needed: Set[str]) -> None:
        if 'neck' in needed:
            self._tap_neck(taps)
        if 'rpn_cls' in needed:
            taps.module_output('rpn', self.rpn_head)
        for stage in self.roi_stages:
            if needed & {'roi_cls', 'roi_pred_cls', 'roi_pred_box'}:
                taps.method_call(f'roi{stage}', roi_stage(self.roi_head.bbox_head, stage),
                                 'loss_and_target')
            if 'roi_mask' in needed:
                taps.method_call(f'mask{stage}', roi_stage(self.roi_head.mask_head, stage),
                                 'loss_and_target')

    def _teacher_roi(self, t_feats, stage: int, rois: Tensor, mask: bool = False) -> Tensor:
        t_roi = self.teacher.roi_head
        stage = stage if self.teacher_roi_stage is None else self.teacher_roi_stage
        forward = t_roi._mask_forward if mask else t_roi._bbox_forward
        out = forward(stage, t_feats, rois) if is_cascade(t_roi) else forward(t_feats, rois)
        return out['mask_preds' if mask else 'cls_score']

    def _distill_batches(self, taps: OutputTaps, batch_inputs: Tensor, batch_data_samples,
                         needed: Set[str], teacher_out=None) -> Dict[str, DistillBatch]:
        stages = self.roi_stages
        rois = {s: single_call(taps[f'roi{s}'], f'stage-{s} RoI head')
                for s in stages} if 'roi_cls' in needed else {}
        masks = {s: single_call(taps[f'mask{s}'], f'stage-{s} mask head')
                 for s in stages} if 'roi_mask' in needed else {}
        with self.teacher_context(batch_inputs.device.type):
            t_feats = (self.teacher.extract_feat(batch_inputs)
                       if self.hetero is None or 'neck' in needed else None)
            t_rpn = self.teacher.rpn_head(t_feats)[0] if 'rpn_cls' in needed else None
            t_cls = {s: self._teacher_roi(t_feats, s, r['rois']) for s, r in rois.items()}
            pos_rois = {s: bbox2roi([res.pos_priors for res in m['sampling_results']])
                        for s, m in masks.items()}
            t_mask = {s: self._teacher_roi(t_feats, s, pos_rois[s], mask=True) for s in masks}
        batches: Dict[str, DistillBatch] = {}
        if rois:
            for s in stages:
                self._check_finite(t_cls[s], 'RoI logits')
            batches['roi_cls'] = self._per_stage(
                [rois[s]['cls_score'] for s in stages],
                [self.scale_teacher_logits(t_cls[s]) for s in stages],
                labels=[rois[s]['result']['bbox_targets'][0] for s in stages])
        if masks:
            s_rows, t_rows, avg = [], [], []
            for s in stages:
                labels = torch.cat([r.pos_gt_labels for r in masks[s]['sampling_results']]).long()
                s_rows.append(_mask_rows(masks[s]['mask_preds'], labels))
                t_rows.append(_mask_rows(t_mask[s], labels))
                avg.append(s_rows[-1].new_tensor(float(max(s_rows[-1].numel(), 1))))
            batches['roi_mask'] = self._per_stage(s_rows, t_rows, avg_factor=avg)
        if needed & {'roi_pred_cls', 'roi_pred_box'}:  # the teacher's detections at the RoIs
            dets = teacher_detections(self, batch_inputs, batch_data_samples, t_feats)
            s_cls, t_cls, s_box, t_box, w = zip(*(roi_soft_targets(
                roi_stage(self.roi_head.bbox_assigner, s), roi_stage(self.roi_head.bbox_head, s),
                single_call(taps[f'roi{s}'], f'stage-{s} RoI head'), dets) for s in stages))
            batches['roi_pred_cls'] = self._per_stage(s_cls, t_cls)
            batches['roi_pred_box'] = self._per_stage(s_box, t_box, weight=w)
        if t_rpn is not None:
            c = self.rpn_head.cls_out_channels
            s = flatten_level_outputs(single_call(taps['rpn'], 'RPN head')[0], c)
            t = flatten_level_outputs(t_rpn, c)
            if s.shape != t.shape:
                raise ValueError(f"inputs='rpn_cls': RPN outputs differ in shape, "
                                 f'{tuple(s.shape)} (student) vs {tuple(t.shape)} (teacher): use '
                                 'the same anchor_generator.')
            avg = foreground_confidence(t, 'sigmoid').sum().clamp(min=1.0)
            batches['rpn_cls'] = DistillBatch(s, t, avg_factor=avg)
        if 'neck' in needed:
            batches['neck'] = self._neck_batch(taps, t_feats)
        return batches

    def _per_stage(self, student: Sequence, teacher: Sequence, **per_stage) -> DistillBatch:
        """Per stage for a cascade (weighted by its ``stage_loss_weights``), else one batch."""
        if self.cascade:
            return DistillBatch(student, teacher, **per_stage, level_weights=[
                self.roi_head.stage_loss_weights[s] for s in self.roi_stages])
        return DistillBatch(student[0], teacher[0], **{k: v[0] for k, v in per_stage.items()})


def _mask_rows(mask_preds: Tensor, labels: Tensor) -> Tensor:
    """(P, K or 1, S, S) mask logits -> (P, S * S) at each RoI's class."""
    p = mask_preds.shape[0]
    if mask_preds.shape[1] == 1:  # class-agnostic mask head
        return mask_preds[:, 0].reshape(p, -1)
    return mask_preds[torch.arange(p, device=mask_preds.device), labels].reshape(p, -1)


# The distiller of each supported family: ``Distill<Student>``, the student class last.
@MODELS.register_module()
class DistillFasterRCNN(DistillTwoStageDetector, FasterRCNN):
    """A Faster R-CNN student. Arguments: :class:`DistillTwoStageDetector`."""


@MODELS.register_module()
class DistillMaskRCNN(DistillTwoStageDetector, MaskRCNN):
    """A Mask R-CNN student. Arguments: :class:`DistillTwoStageDetector`."""


@MODELS.register_module()
class DistillCascadeRCNN(DistillTwoStageDetector, CascadeRCNN):
    """A Cascade (Mask) R-CNN student, distilled per stage (``roi_stages``)."""
