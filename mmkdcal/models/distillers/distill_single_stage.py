"""Distillation for dense (single-stage) detectors: RetinaNet, FCOS, ATSS, GFL..."""
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import torch
from mmengine.config import Config
from torch import Tensor

from mmdet.models.detectors import SingleStageDetector
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig

from .teacher_mixin import TeacherMixin, TemperatureLike, flatten_level_outputs

__all__ = ['DistillSingleStageDetector', 'check_dense_head_layout']


@MODELS.register_module()
class DistillSingleStageDetector(TeacherMixin, SingleStageDetector):
    """A single-stage student detector distilled from a frozen, calibrated teacher.

    It *is* the student (a :class:`~mmdet.models.detectors.SingleStageDetector` built from the
    usual ``backbone``/``neck``/``bbox_head``), so ``predict`` and checkpoints are the student's.
    In ``loss`` the teacher runs its backbone, neck and head forward under ``no_grad`` (never its
    own target assignment or loss), its classification logits are divided by the calibration
    temperature, and each configured distillation loss compares one kind of output:

    - ``inputs='cls'``: per-location classification logits, flattened to (M, K). Logit losses
      (e.g. ``BinaryKDLoss``) get ``avg_factor`` = sum over locations of the *uncalibrated*
      teacher's max class probability (a soft count of foreground locations that does not change
      with the temperature, so KD and KD+cal runs are normalised alike).
    - ``inputs='reg'``: per-location box-regression outputs (GFL's distributions for ``LDLoss``),
      weighted by the teacher's max class probability, same ``avg_factor``.
    - ``inputs='neck'``: the FPN feature maps, the loss summed over levels.

    Args:
        backbone, neck, bbox_head, train_cfg, test_cfg, data_preprocessor, init_cfg: The student
            detector, as for any :class:`SingleStageDetector`.
        teacher_config: The teacher's config (file path, ``mmdet::`` path or model dict). Its
            ``bbox_head`` must have the student's layout (strides, priors per location, classes).
        teacher_ckpt: The teacher's checkpoint (path or URL); required.
        teacher_temperature: Calibration temperature: ``None`` (fitted by
            ``TeacherCalibrationHook`` before training), a float, or one float per class.
        distill_losses: ``{name: loss config with an 'inputs' key}``; names start with ``loss_``.
        teacher_fp16: Run the teacher under fp16 autocast.
    """

    DISTILL_INPUTS = ('cls', 'reg', 'neck')

    def __init__(self,
                 backbone: ConfigType,
                 bbox_head: ConfigType,
                 teacher_config: Union[str, Path, dict, Config],
                 teacher_ckpt: Optional[str] = None,
                 teacher_temperature: TemperatureLike = None,
                 distill_losses: Optional[Dict[str, dict]] = None,
                 teacher_fp16: bool = False,
                 neck: OptConfigType = None,
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            bbox_head=bbox_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self._init_teacher(teacher_config, teacher_ckpt, teacher_temperature, teacher_fp16)
        self._check_head_layout()
        self._init_distill_losses(distill_losses)

    def _check_head_layout(self) -> None:
        t_head = getattr(self.teacher, 'bbox_head', None)
        if t_head is None:
            raise ValueError(
                f'The teacher ({type(self.teacher).__name__}) has no bbox_head: a single-stage '
                'student needs a single-stage teacher of the same head family.')
        check_dense_head_layout(self.bbox_head, t_head)

    def num_teacher_logit_classes(self) -> int:
        return self.teacher.bbox_head.cls_out_channels

    # ------------------------------------------------------------------ teacher
    def teacher_forward(self, batch_inputs: Tensor) -> Tuple[Tuple[Tensor, ...], Tuple]:
        """The teacher's neck features and raw head outputs (no temperature), under no_grad."""
        with self.teacher_context(batch_inputs.device.type):
            feats = self.teacher.extract_feat(batch_inputs)
            outs = self.teacher.bbox_head(feats)
        if self.teacher_fp16:
            feats, outs = self._float(feats), self._float(outs)
        return feats, outs

    # ------------------------------------------------------------------ training
    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        """Student task losses plus the configured distillation losses."""
        feats = self.extract_feat(batch_inputs)
        s_outs = self.bbox_head(feats)
        gt_instances, gt_ignore, img_metas = unpack_gt_instances(batch_data_samples)
        losses = self.bbox_head.loss_by_feat(*s_outs, gt_instances, img_metas, gt_ignore)
        if len(self.distill_losses) == 0:
            return losses
        t_feats, t_outs = self.teacher_forward(batch_inputs)
        losses.update(self.distill_loss(feats, s_outs, t_feats, t_outs))
        return losses

    def distill_loss(self, feats, s_outs, t_feats, t_outs) -> Dict[str, Tensor]:
        """Evaluate every configured distillation loss on student and teacher outputs."""
        k = self.bbox_head.cls_out_channels
        need = set(self.distill_inputs.values())
        losses = {}
        if need & {'cls', 'reg'}:
            s_cls = flatten_level_outputs(s_outs[0], k)
            t_cls_raw = flatten_level_outputs(t_outs[0], k).float()  # fp32 sums under AMP
            if not torch.isfinite(t_cls_raw).all():
                raise FloatingPointError(
                    'The teacher produced NaN/inf classification logits: check teacher_ckpt and '
                    'the input normalisation (data_preprocessor), or disable teacher_fp16.')
            t_prob_max = t_cls_raw.sigmoid().max(dim=1).values
            avg_factor = t_prob_max.sum().clamp(min=1.0)
        for name, inputs in self.distill_inputs.items():
            if inputs == 'cls':
                t_cls = self.scale_teacher_logits(t_cls_raw)
                losses[name] = self._call_distill_loss(name, s_cls, t_cls, avg_factor=avg_factor)
            elif inputs == 'reg':
                s_reg, t_reg = self._flat_reg(s_outs[1], t_outs[1], s_cls.shape[0])
                losses[name] = self._call_distill_loss(
                    name, s_reg, t_reg, weight=t_prob_max, avg_factor=avg_factor)
            else:  # neck
                if len(feats) != len(t_feats):
                    raise ValueError(f'{name}: the student has {len(feats)} neck levels, the '
                                     f'teacher {len(t_feats)}.')
                losses[name] = sum(
                    self._call_distill_loss(name, s, t) for s, t in zip(feats, t_feats))
        return losses

    @staticmethod
    def _flat_reg(s_reg, t_reg, num_priors: int) -> Tuple[Tensor, Tensor]:
        """Flatten box outputs to one row per prior, aligned with the flattened logits."""
        s_c, t_c = s_reg[0].shape[1], t_reg[0].shape[1]
        if s_c != t_c:
            raise ValueError(
                f'Box-regression outputs differ: {s_c} channels (student) vs {t_c} (teacher); '
                'LD needs the same head type and reg_max in both.')
        locations = sum(r.shape[0] * r.shape[2] * r.shape[3] for r in s_reg)
        per_prior = s_c * locations // num_priors
        return flatten_level_outputs(s_reg, per_prior), flatten_level_outputs(t_reg, per_prior)


def check_dense_head_layout(s_head, t_head) -> None:
    """Raise ValueError unless two dense heads' outputs can be compared location by location.

    Args:
        s_head: The student's ``bbox_head``.
        t_head: The teacher's ``bbox_head``.
    """
    s_k, t_k = s_head.cls_out_channels, t_head.cls_out_channels
    if s_k != t_k:
        raise ValueError(
            f'Class-count mismatch: the student head predicts {s_k} classification logits per '
            f'prior, the teacher {t_k} (num_classes {s_head.num_classes} vs '
            f'{t_head.num_classes}). Distil from a teacher trained on the same classes.')
    s_gen = getattr(s_head, 'prior_generator', None)
    t_gen = getattr(t_head, 'prior_generator', None)
    if (s_gen is None) != (t_gen is None):
        raise ValueError('Head-layout mismatch: only one of student/teacher heads has a '
                         'prior_generator; use heads of the same family.')
    if s_gen is not None:
        s_strides = [tuple(s) for s in s_gen.strides]
        t_strides = [tuple(s) for s in t_gen.strides]
        if s_strides != t_strides:
            raise ValueError(
                f'Head-layout mismatch: bbox_head strides {s_strides} (student) vs {t_strides} '
                '(teacher). Logits are compared location by location, so the FPN levels and '
                'prior_generator strides must match.')
        s_np, t_np = s_gen.num_base_priors, t_gen.num_base_priors
        if list(s_np) != list(t_np):
            raise ValueError(
                f'Head-layout mismatch: {list(s_np)} priors per location (student) vs '
                f'{list(t_np)} (teacher): use the same anchor_generator (ratios, scales).')
    if getattr(s_head, 'use_sigmoid_cls', True) != getattr(t_head, 'use_sigmoid_cls', True):
        raise ValueError('Head-layout mismatch: one head uses sigmoid classification, the other '
                         'softmax (loss_cls.use_sigmoid).')
