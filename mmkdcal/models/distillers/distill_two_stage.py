"""Distillation for two-stage detectors (Faster R-CNN and relatives with a bbox-only RoI head)."""
import copy
from pathlib import Path
from typing import Dict, List, Optional, Union

import torch
from mmengine.config import Config, ConfigDict
from torch import Tensor

from mmdet.models.detectors import TwoStageDetector
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox2roi
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig

from .teacher_mixin import TeacherMixin, TemperatureLike, flatten_level_outputs

__all__ = ['DistillTwoStageDetector']


@MODELS.register_module()
class DistillTwoStageDetector(TeacherMixin, TwoStageDetector):
    """A two-stage student detector distilled from a frozen, calibrated teacher.

    RoI-level KD as in mdistiller's detection KD: the *student's* RPN proposals are assigned and
    sampled as in stock training, and the teacher's RoI head runs on the same sampled RoIs (on the
    teacher's own features), so both classify exactly the same boxes. The teacher's (K+1)-way
    softmax logits are divided by the calibration temperature. Supported ``inputs``:

    - ``'roi_cls'``: RoI classification logits (M, K+1), e.g. ``KDLoss`` / ``DKDLoss`` (which
      also receive the sampled RoIs' labels as ``labels``).
    - ``'rpn_cls'``: RPN objectness logits per anchor (sigmoid, not temperature-scaled: the
      calibration temperature belongs to the classification head), e.g. ``BinaryKDLoss``.
    - ``'neck'``: FPN features, summed over levels.

    Args:
        backbone, neck, rpn_head, roi_head, train_cfg, test_cfg, data_preprocessor, init_cfg:
            The student, as for any :class:`TwoStageDetector`.
        teacher_config, teacher_ckpt, teacher_temperature, distill_losses, teacher_fp16: As for
            :class:`~mmkdcal.models.distillers.DistillSingleStageDetector`.
    """

    DISTILL_INPUTS = ('roi_cls', 'rpn_cls', 'neck')

    def __init__(self,
                 backbone: ConfigType,
                 rpn_head: ConfigType,
                 roi_head: ConfigType,
                 train_cfg: ConfigType,
                 test_cfg: ConfigType,
                 teacher_config: Union[str, Path, dict, Config],
                 teacher_ckpt: Optional[str] = None,
                 teacher_temperature: TemperatureLike = None,
                 distill_losses: Optional[Dict[str, dict]] = None,
                 teacher_fp16: bool = False,
                 neck: OptConfigType = None,
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
        self._init_teacher(teacher_config, teacher_ckpt, teacher_temperature, teacher_fp16)
        self._check_layout()
        self._init_distill_losses(distill_losses)

    def _check_layout(self) -> None:
        if self.with_mask:
            raise ValueError('DistillTwoStageDetector supports bbox-only RoI heads; the student '
                             'config has a mask_head.')
        t_roi = getattr(self.teacher, 'roi_head', None)
        if t_roi is None or not getattr(self.teacher, 'with_rpn', False):
            raise ValueError(f'The teacher ({type(self.teacher).__name__}) must be a two-stage '
                             'detector with an RPN and a RoI head.')
        s_k = self.roi_head.bbox_head.num_classes
        t_k = t_roi.bbox_head.num_classes
        if s_k != t_k:
            raise ValueError(f'Class-count mismatch: roi_head.bbox_head.num_classes is {s_k} for '
                             f'the student and {t_k} for the teacher.')
        if getattr(self.roi_head.bbox_head, 'custom_cls_channels', False):
            raise ValueError('RoI heads with custom classification channels are not supported.')

    def num_teacher_logit_classes(self) -> int:
        return self.teacher.roi_head.bbox_head.num_classes + 1

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        """RPN + RoI losses of the student, plus RoI/RPN/feature distillation."""
        feats = self.extract_feat(batch_inputs)
        gt_instances, gt_ignore, img_metas = unpack_gt_instances(batch_data_samples)
        need = set(self.distill_inputs.values())
        losses = {}

        # RPN (as in TwoStageDetector.loss, keeping the head outputs for objectness KD)
        proposal_cfg = self.train_cfg.get('rpn_proposal', self.test_cfg.rpn)
        rpn_gt = copy.deepcopy(gt_instances)
        for gt in rpn_gt:
            gt.labels = torch.zeros_like(gt.labels)
        rpn_outs = self.rpn_head(feats)
        rpn_losses = self.rpn_head.loss_by_feat(*rpn_outs, rpn_gt, img_metas, gt_ignore)
        for key in list(rpn_losses):
            if 'loss' in key and 'rpn' not in key:
                rpn_losses[f'rpn_{key}'] = rpn_losses.pop(key)
        losses.update(rpn_losses)
        proposals = self.rpn_head.predict_by_feat(
            *rpn_outs, batch_img_metas=img_metas, cfg=proposal_cfg)

        # RoI assignment and sampling on the student's proposals
        sampling_results = []
        for i, props in enumerate(proposals):
            props.priors = props.pop('bboxes')
            assign = self.roi_head.bbox_assigner.assign(props, gt_instances[i], gt_ignore[i])
            sampling_results.append(self.roi_head.bbox_sampler.sample(
                assign, props, gt_instances[i], feats=[f[i][None] for f in feats]))
        bbox_results = self.roi_head.bbox_loss(feats, sampling_results)
        losses.update(bbox_results['loss_bbox'])
        if not self.distill_losses:
            return losses

        rois = bbox2roi([res.priors for res in sampling_results])
        with self.teacher_context(batch_inputs.device.type):
            t_feats = self.teacher.extract_feat(batch_inputs)
            t_roi_cls = self.teacher.roi_head._bbox_forward(t_feats, rois)['cls_score']
            t_rpn_cls = self.teacher.rpn_head(t_feats)[0] if 'rpn_cls' in need else None
        if self.teacher_fp16:
            t_feats, t_roi_cls, t_rpn_cls = self._float((t_feats, t_roi_cls, t_rpn_cls))
        if not torch.isfinite(t_roi_cls).all():
            raise FloatingPointError('The teacher produced NaN/inf RoI logits: check teacher_ckpt '
                                     'and the input normalisation, or disable teacher_fp16.')
        labels = self._roi_labels(sampling_results) if 'roi_cls' in need else None
        for name, inputs in self.distill_inputs.items():
            if inputs == 'roi_cls':
                losses[name] = self._call_roi_loss(
                    name, bbox_results['cls_score'], self.scale_teacher_logits(t_roi_cls), labels)
            elif inputs == 'rpn_cls':
                losses[name] = self._rpn_kd(name, rpn_outs[0], t_rpn_cls)
            else:
                losses[name] = sum(self._call_distill_loss(name, s, t)
                                   for s, t in zip(feats, t_feats))
        return losses

    def _roi_labels(self, sampling_results) -> Tensor:
        """Ground-truth class of each sampled RoI (positives first, as in ``res.priors``); the
        background index ``num_classes`` for negatives."""
        k = self.roi_head.bbox_head.num_classes
        return torch.cat([
            torch.cat([res.pos_gt_labels.long(),
                       res.pos_gt_labels.new_full((len(res.neg_priors),), k).long()])
            for res in sampling_results])

    def _call_roi_loss(self, name: str, s_cls: Tensor, t_cls: Tensor, labels: Tensor) -> Tensor:
        if self._loss_wants_labels[name]:
            return self._call_distill_loss(name, s_cls, t_cls, labels)
        return self._call_distill_loss(name, s_cls, t_cls)

    def _rpn_kd(self, name: str, s_rpn: List[Tensor], t_rpn: List[Tensor]) -> Tensor:
        c = self.rpn_head.cls_out_channels
        s = flatten_level_outputs(s_rpn, c)
        t = flatten_level_outputs(t_rpn, c)
        if s.shape != t.shape:
            raise ValueError(f'{name}: RPN outputs differ in shape, {tuple(s.shape)} (student) vs '
                             f'{tuple(t.shape)} (teacher): use the same anchor_generator.')
        avg = t.sigmoid().max(dim=1).values.sum().clamp(min=1.0)
        return self._call_distill_loss(name, s, t, avg_factor=avg)
