"""Distillation for students with a dense box/class head, and the distiller of each such family.

Each supported family has its explicit class ``Distill<Student>(DistillSingleStageDetector,
<Student>)``, which *is* that detector class and keeps its behaviour.
"""
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple, Union

import torch
from mmengine.config import Config
from torch import Tensor

from mmdet.models.detectors import (ATSS, DDOD, FCOS, GFL, PAA, TOOD, YOLOX, CenterNet, RetinaNet,
                                    RTMDet, SingleStageDetector, VFNet)
from mmdet.models.detectors.single_stage_instance_seg import SingleStageInstanceSegmentor
from mmdet.registry import MODELS

from ..contract import DistillBatch, DistillInput
from .distiller_mixin import (DistillerMixin, TemperatureLike, flatten_level_outputs,
                              foreground_confidence)
from .head_semantics import cls_channels, dense_head_semantics, score_logits
from .heterogeneous import (PRED_INPUTS, detector_num_classes, hetero_pair, pred_batches,
                            pred_kd_problem)
from .taps import OutputTaps, single_call

__all__ = ['DenseDistillerMixin', 'DistillATSS', 'DistillCenterNet', 'DistillDDOD', 'DistillFCOS',
           'DistillGFL', 'DistillPAA', 'DistillRTMDet', 'DistillRetinaNet',
           'DistillSingleStageDetector', 'DistillSingleStageInstanceSegmentor', 'DistillTOOD',
           'DistillVFNet', 'DistillYOLOX', 'align_feature_stats', 'check_dense_head_layout',
           'neck_channels']


def neck_channels(detector) -> Optional[int]:
    """The width of a detector's neck outputs (or its backbone's), when its config states one."""
    width = getattr(getattr(detector, 'neck', None), 'out_channels', None)
    if isinstance(width, (list, tuple)):
        width = width[0] if len(set(width)) == 1 else None
    return int(width) if isinstance(width, int) else None


class DenseDistillerMixin(DistillerMixin):
    """A student with a dense box/class head (a single-stage detector or a single-stage instance
    segmentor with a box head) distilled from a frozen, calibrated teacher.

    Its training step is the student's stock ``loss``, observed; the teacher runs its backbone,
    neck and head forward only. Inputs (docs/distillation_protocol.md; meaning from
    :mod:`.head_semantics`): ``'cls'`` (``avg_factor``: the *uncalibrated* teacher's soft count of
    foreground priors), ``'reg'``, ``'neck'``, CrossKD's (Wang et al., CVPR 2024) ``'crosskd_cls'``
    / ``'crosskd_reg'``: the student's head features after ``k`` tower convs through the
    teacher's remaining head layers, and ``'mask'`` (:meth:`_mask_batch`).

    Args:
        teacher_config: The teacher's config (file path, ``mmdet::`` path or model dict). For
            ``'cls'``/``'reg'``/CrossKD its ``bbox_head`` has the student's layout; a teacher of
            another family allows ``'neck'`` and ``'pred_cls'``/``'pred_box'``
            (:mod:`.heterogeneous`).
        teacher_ckpt: The teacher's checkpoint (path or URL); required.
        teacher_temperature: Calibration temperature: ``None`` (fitted by
            ``TeacherCalibrationHook``), a float, or one float per class.
        distill_losses: ``{name: loss config with an 'inputs' key}``; names start with ``loss_``.
        teacher_inference: How the frozen teacher runs (:mod:`.teacher_inference`).
        teacher_fp16: Retired alias of ``teacher_inference=dict(precision='fp16')``.
        crosskd: ``dict(layer=k)`` enables the CrossKD inputs (GFL, RetinaNet, ATSS heads).
        **student: The student detector's own arguments.
    """

    DISTILL_INPUTS = (
        DistillInput('cls', 'logits', 'per-prior sigmoid logits of the detection score (M, K)',
                     activation='sigmoid', provides=frozenset({'avg_factor'}), temperature=True),
        DistillInput('reg', 'boxes', 'per-prior box regression outputs (M, 4)',
                     provides=frozenset({'weight', 'avg_factor'})),
        DistillInput('neck', 'features', 'neck feature maps (N, C, H, W) per level',
                     per_level=True),
    )
    MASK_INPUT = DistillInput('mask', 'masks', "per-pixel sigmoid mask logits (P, H * W) of the "
                              "instances at the student's positive priors", activation='sigmoid',
                              provides=frozenset({'avg_factor'}))

    def __init__(self, teacher_config: Union[str, Path, dict, Config],
                 teacher_ckpt: Optional[str] = None, teacher_temperature: TemperatureLike = None,
                 distill_losses: Optional[Dict[str, dict]] = None,
                 teacher_inference: Optional[dict] = None, teacher_fp16: Optional[bool] = None,
                 crosskd: Optional[dict] = None, **student) -> None:
        super().__init__(**student)
        self.head_semantics = dense_head_semantics(self.bbox_head)
        self.crosskd_layer = self._check_crosskd(crosskd)
        self._init_distiller(teacher_config, teacher_ckpt, teacher_temperature,
                             teacher_inference, distill_losses, teacher_fp16)

    def _check_crosskd(self, crosskd: Optional[dict]) -> Optional[int]:
        if crosskd is None:
            return None
        sem = self.head_semantics
        name = type(self.bbox_head).__name__
        if sem.towers is None or sem.tail is None:
            raise ValueError(f'model.crosskd: {name} declares no head towers and tail, so its '
                             'intermediate features cannot go through the teacher head; CrossKD '
                             'is supported for GFLHead, RetinaHead, ATSSHead.')
        if not isinstance(crosskd, dict) or set(crosskd) - {'layer'}:
            raise ValueError(f'model.crosskd must be dict(layer=k), got {crosskd!r}.')
        layer = crosskd.get('layer')
        n = len(getattr(self.bbox_head, sem.towers[0]))
        if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer <= n:
            raise ValueError(f'model.crosskd.layer must be an int in [0, {n}] (how many of the '
                             f"student's {n} tower convs run before the teacher's), got "
                             f'{layer!r}.')
        return layer

    def _check_teacher(self, teacher) -> None:
        t_head = getattr(teacher, 'bbox_head', None)
        if (t_head is None or hasattr(teacher, 'roi_head')
                or type(t_head) is not type(self.bbox_head)):
            name = type(t_head or getattr(teacher, 'roi_head', teacher)).__name__
            if self.crosskd_layer is not None:
                raise ValueError(f'model.crosskd runs the student\'s features through the '
                                 f'teacher head, so the teacher ({name}) must have the '
                                 f'student\'s head ({type(self.bbox_head).__name__}).')
            problem = pred_kd_problem(self.bbox_head, detector_num_classes(teacher))
            self.hetero = hetero_pair(self, teacher, type(self.bbox_head).__name__, name,
                                      PRED_INPUTS if problem is None else (), problem)
            return
        check_dense_head_layout(self.bbox_head, t_head)
        if self.crosskd_layer is not None:
            tower = self.head_semantics.towers[0]
            s_n, t_n = len(getattr(self.bbox_head, tower)), len(getattr(t_head, tower))
            if s_n != t_n:
                raise ValueError(f'model.crosskd: the student head has {s_n} tower convs, the '
                                 f'teacher {t_n}; CrossKD crosses towers of the same depth.')
            # the teacher's layer k reads what the student's layer k - 1 (or its neck) gives
            k = self.crosskd_layer
            widths = [(getattr(h, 'in_channels') if k == 0 else getattr(h, 'feat_channels'))
                      for h in (self.bbox_head, t_head)]
            if widths[0] != widths[1]:
                what = 'input (neck) width' if k == 0 else 'tower width (feat_channels)'
                raise ValueError(f'model.crosskd: the student head has {what} {widths[0]}, the '
                                 f'teacher {widths[1]}; CrossKD feeds the student\'s features '
                                 f'after {k} tower convs into the teacher\'s next layer, so '
                                 'they must have the same width (give the student the '
                                 "teacher's head width).")

    def _input_specs(self) -> List[DistillInput]:
        if self.hetero is not None:
            neck = self.DISTILL_INPUTS[2].with_channels(neck_channels(self),
                                                        neck_channels(self.teacher))
            return [neck] + [p for p in PRED_INPUTS if p.name in self.hetero.allowed]
        return self.input_specs_for(self.bbox_head, neck_channels(self),
                                    neck_channels(self.teacher),
                                    crosskd=self.crosskd_layer is not None)

    @classmethod
    def input_specs_for(cls, bbox_head, student_channels: Optional[int] = None,
                        teacher_channels: Optional[int] = None,
                        crosskd: bool = False) -> List[DistillInput]:
        """The inputs offered for a student dense head (its declaration decides ``'reg'``),
        with the neck widths when known, and the CrossKD inputs if ``crosskd``."""
        cls_in, reg, neck = cls.DISTILL_INPUTS
        if not getattr(bbox_head, 'use_sigmoid_cls', True):
            cls_in = DistillInput(cls_in.name, 'logits', 'per-prior softmax logits (M, K + 1)',
                                  activation='softmax', provides=cls_in.provides,
                                  temperature=True)
        sem = dense_head_semantics(bbox_head)
        if sem.box_kind == 'distribution':
            reg = DistillInput(reg.name, 'distribution',
                               'per-prior box-side distributions (M, 4 (reg_max + 1))',
                               provides=reg.provides)
        specs = [cls_in] + ([reg] if sem.box_output is not None else []) + [
            neck.with_channels(student_channels, teacher_channels)] + (
            [cls.MASK_INPUT] if 'kernels' in sem.outputs else [])
        if not crosskd:
            return specs
        return specs + [
            DistillInput(f'crosskd_{spec.name}', spec.kind,
                         f'{spec.description}, student features through the teacher head',
                         activation=spec.activation, provides=spec.provides,
                         temperature=spec.temperature)
            for spec in specs if spec.name in ('cls', 'reg')]

    def num_teacher_logit_classes(self) -> int:
        if self.hetero is not None:  # its calibrator maps detection scores
            return detector_num_classes(self.teacher)
        return cls_channels(self.teacher.bbox_head)

    # ------------------------------------------------------------------ teacher
    def teacher_forward(self, batch_inputs: Tensor,
                        taps: Optional[OutputTaps] = None) -> Tuple[Tuple[Tensor, ...], Tuple]:
        """The teacher's neck features and raw head outputs (no temperature), under no_grad;
        ``taps``: where to record its tower features for CrossKD, if wanted."""
        if taps is not None:
            self._tap_towers(taps, self.teacher.bbox_head, 'teacher')
        with self.teacher_context(batch_inputs.device.type):
            feats = self.teacher.extract_feat(batch_inputs)
            return feats, self.teacher.bbox_head(feats)

    # ------------------------------------------------------------------ training
    def _tap_student(self, taps: OutputTaps, needed: Set[str]) -> None:
        cross = any(n.startswith('crosskd_') for n in needed)
        if 'neck' in needed or (cross and self.crosskd_layer == 0):
            self._tap_neck(taps)
        if needed & {'cls', 'reg', 'crosskd_cls', 'crosskd_reg', 'pred_cls', 'pred_box'}:
            taps.module_output('head', self.bbox_head)
        if cross:
            self._tap_towers(taps, self.bbox_head, 'student')
        if 'mask' in needed and 'mask_feat' in self.head_semantics.outputs:  # RTMDet-Ins
            taps.method_call('mask_loss', self.bbox_head, 'loss_mask_by_feat')  # positive priors
            taps.method_call('mask_logits', self.bbox_head, '_mask_predict_by_feat_single')
        elif 'mask' in needed:  # CondInst, BoxInst: per image, positive infos and mask logits
            taps.method_call('mask_logits', self.mask_head, 'forward_single')

    def _tap_towers(self, taps: OutputTaps, head, who: str) -> None:
        """Record each tower's input to the crossed layer, per level (call order = level order)."""
        k = self.crosskd_layer
        for tower in self.head_semantics.towers:
            if k > 0:
                taps.module_output(f'{who}_{tower}', getattr(head, tower)[k - 1])

    def _teacher_before_student(self, batch_inputs: Tensor, needed: Set[str]):
        """The whole teacher pass (neck features, head outputs, CrossKD tower inputs): a dense
        teacher does not depend on the student, so it runs first."""
        if self.hetero is not None:  # the neck only; its detections need the image metas
            if 'neck' not in needed:
                return None
            with self.teacher_context(batch_inputs.device.type):
                return self.teacher.extract_feat(batch_inputs), None, None
        cross = any(n.startswith('crosskd_') for n in needed)
        with OutputTaps() as t_taps:
            t_feats, t_outs = self.teacher_forward(batch_inputs, t_taps if cross else None)
        return t_feats, t_outs, t_taps

    def _distill_batches(self, taps: OutputTaps, batch_inputs: Tensor, batch_data_samples,
                         needed: Set[str], teacher_out=None) -> Dict[str, DistillBatch]:
        if self.hetero is not None:
            batches = {'neck': self._neck_batch(taps, teacher_out[0])} if 'neck' in needed else {}
            if needed - {'neck'}:
                batches.update(pred_batches(self, single_call(taps['head'], 'bbox_head'),
                                            batch_inputs, batch_data_samples, needed,
                                            teacher_out[0] if teacher_out else None))
            return batches
        cross = any(n.startswith('crosskd_') for n in needed)
        t_feats, t_outs, t_taps = teacher_out  # from _teacher_before_student
        batches: Dict[str, DistillBatch] = {}
        sem = self.head_semantics
        k = cls_channels(self.bbox_head)
        if needed - {'neck', 'mask'}:
            # fp32 sums under AMP
            t_cls_raw = flatten_level_outputs(score_logits(sem, t_outs, k), k).float()
            self._check_finite(t_cls_raw, 'classification logits')
            t_prob_max = foreground_confidence(t_cls_raw, 'sigmoid' if getattr(
                self.bbox_head, 'use_sigmoid_cls', True) else 'softmax')
            avg_factor = t_prob_max.sum().clamp(min=1.0)
            # only what a configured loss reads: an LD-only run flattens no class logits
            t_cls = (self.scale_teacher_logits(t_cls_raw)
                     if needed & {'cls', 'crosskd_cls'} else None)
            student_outs = {}
            if needed & {'cls', 'reg'}:
                student_outs[''] = single_call(taps['head'], 'bbox_head')
            if cross:
                student_outs['crosskd_'] = self._crossed_outputs(taps, t_taps, t_feats)
            for prefix, s_outs in student_outs.items():
                if prefix + 'cls' in needed:
                    s_cls = flatten_level_outputs(score_logits(sem, s_outs, k), k)
                    batches[prefix + 'cls'] = DistillBatch(s_cls, t_cls, avg_factor=avg_factor)
                if prefix + 'reg' in needed:
                    t_reg = sem.output(t_outs, sem.box_output)
                    if (not self.teacher.bbox_head.training and sem.eval_box_stride is not None
                            and sem.eval_box_stride(self.bbox_head)):  # to the student's units
                        t_reg = [r / s for r, s in zip(t_reg, self.bbox_head.strides)]
                    s_reg, t_reg = self._flat_reg(sem.output(s_outs, sem.box_output), t_reg,
                                                  t_cls_raw.shape[0])
                    batches[prefix + 'reg'] = DistillBatch(s_reg, t_reg, weight=t_prob_max,
                                                           avg_factor=avg_factor)
        if 'neck' in needed:
            batches['neck'] = self._neck_batch(taps, t_feats)
        if 'mask' in needed:
            batches['mask'] = self._mask_batch(taps, t_feats, t_outs)
        return batches

    def _mask_batch(self, taps: OutputTaps, t_feats: Tuple, t_outs: Tuple) -> DistillBatch:
        """Mask logits (P, H * W) at the student's positive priors: the student's, and the
        teacher's kernels at those priors (and their points) run on its mask features by mmdet's
        own ``_mask_predict_by_feat_single`` (RTMDet-Ins) or ``mask_head.forward_single``."""
        sem, calls = self.head_semantics, taps['mask_logits']
        kernels = torch.cat([k.permute(0, 2, 3, 1).flatten(1, 2)
                             for k in sem.output(t_outs, 'kernels')], 1)  # (N, priors, params)
        with self.teacher_context(kernels.device.type):
            if 'mask_feat' in sem.outputs:
                head = self.teacher.bbox_head
                results = single_call(taps['mask_loss'], 'mask loss')['sampling_results_list']
                t = [head._mask_predict_by_feat_single(f, k[r.pos_inds], r.pos_priors)
                     for f, k, r in zip(sem.output(t_outs, 'mask_feat'), kernels, results)]
            else:
                head, infos = self.teacher.mask_head, [call['positive_info'] for call in calls]
                t = [head.forward_single(f, i.new(**dict(i.items(), param_preds=k[i.pos_inds])))[0]
                     for f, k, i in zip(head.mask_feature_head(t_feats), kernels, infos)]
        s = _mask_rows([call['result'] for call in calls])
        return DistillBatch(s, _mask_rows(t).to(s.dtype),
                            avg_factor=s.new_tensor(float(max(s.numel(), 1))))

    def _crossed_outputs(self, taps: OutputTaps, t_taps: OutputTaps, t_feats) -> Tuple:
        """The student's tower features through the teacher's remaining head (with gradient)."""
        k = self.crosskd_layer
        sem = self.head_semantics
        t_head = self.teacher.bbox_head
        per_tower = []
        for tower in sem.towers:
            if k == 0:
                s_in = list(single_call(taps['feats'], 'neck'))
                t_in = list(t_feats)
            else:
                s_in, t_in = taps[f'student_{tower}'], t_taps[f'teacher_{tower}']
            crossed = []
            for s_f, t_f in zip(s_in, t_in):
                f = align_feature_stats(s_f, t_f.detach().to(s_f.dtype))
                for conv in getattr(t_head, tower)[k:]:
                    f = conv(f)
                crossed.append(f)
            per_tower.append(crossed)
        levels = [sem.tail(t_head, lvl, c, r) for lvl, (c, r) in enumerate(zip(*per_tower))]
        return tuple(list(out) for out in zip(*levels))

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


@MODELS.register_module()
class DistillSingleStageDetector(DenseDistillerMixin, SingleStageDetector):
    """A single-stage student detector. Arguments: :class:`DenseDistillerMixin`."""


@MODELS.register_module()
class DistillSingleStageInstanceSegmentor(DenseDistillerMixin, SingleStageInstanceSegmentor):
    """A CondInst, BoxInst or sigmoid-YOLACT student. Arguments: :class:`DenseDistillerMixin`."""

    def _init_distill_losses(self, distill_losses: Optional[Dict[str, dict]]) -> None:
        """Refuse ``'mask'`` with its reason where this pair cannot compare mask logits."""
        asked = [k for k, c in (distill_losses.items() if isinstance(distill_losses, dict) else ())
                 if isinstance(c, dict) and c.get('inputs') == 'mask']
        s_st, t_st = ((getattr(h, 'mask_feat_stride', 0), getattr(h, 'mask_out_stride', 0))
                      for h in (self.mask_head, getattr(self.teacher, 'mask_head', None)))
        if asked and 'mask' not in self.distill_input_specs:
            raise ValueError(f"distill_losses.{asked[0]}: inputs='mask' needs per-prior mask "
                             'kernels (RTMDet-Ins, CondInst, BoxInst); '
                             f'{type(self.mask_head).__name__} crops the sigmoid of prototypes x '
                             "coefficients to each box. Remove it; the box head distils ('cls', "
                             "'reg', 'neck').")
        if asked and s_st != t_st:
            raise ValueError(f"distill_losses.{asked[0]}: inputs='mask' compares mask logits pixel "
                             'by pixel: set model.mask_head (mask_feat_stride, mask_out_stride) '
                             f"to the teacher's {t_st}, not {s_st}.")
        super()._init_distill_losses(distill_losses)


def _mask_rows(masks: List) -> Tensor:
    """Per-image masks (or 1-tuples of them) as rows (P, H * W); empty images add none."""
    rows = [(m[0] if isinstance(m, tuple) else m).flatten(1) for m in masks]
    return torch.cat([r for r in rows if len(r)] or rows[:1])


def align_feature_stats(student: Tensor, teacher: Tensor, eps: float = 1e-6) -> Tensor:
    """Give each channel of ``student`` (N, C, H, W) the mean and std over (N, H, W) of
    ``teacher``'s: ``(s - mean_s) / (std_s + eps) * std_t + mean_t`` (CrossKD)."""
    dims = (0, 2, 3)
    s_mean, s_std = student.mean(dims, keepdim=True), student.std(dims, keepdim=True)
    t_mean, t_std = teacher.mean(dims, keepdim=True), teacher.std(dims, keepdim=True)
    return (student - s_mean) / (s_std + eps) * t_std + t_mean


def check_dense_head_layout(s_head, t_head) -> None:
    """Raise ValueError unless the student's and the teacher's dense heads' outputs can be
    compared location by location."""
    s_k, t_k = cls_channels(s_head), cls_channels(t_head)
    if s_k != t_k:
        raise ValueError(
            f'Class-count mismatch: the student head predicts {s_k} classification logits per '
            f'prior, the teacher {t_k} (num_classes {s_head.num_classes} vs '
            f'{t_head.num_classes}). Distil from a teacher trained on the same classes.')
    s_gen, t_gen = (getattr(head, 'prior_generator', None) for head in (s_head, t_head))
    if (s_gen is None) != (t_gen is None):
        raise ValueError('Head-layout mismatch: only one of student/teacher heads has a '
                         'prior_generator; use heads of the same family.')
    if s_gen is not None:
        s_strides, t_strides = ([tuple(s) for s in gen.strides] for gen in (s_gen, t_gen))
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


# The distiller of each supported family: ``Distill<Student>``, the student class last.
@MODELS.register_module()
class DistillRetinaNet(DistillSingleStageDetector, RetinaNet):
    """A RetinaNet student. Arguments: :class:`DistillSingleStageDetector`."""


@MODELS.register_module()
class DistillGFL(DistillSingleStageDetector, GFL):
    """A GFL student. Arguments: :class:`DistillSingleStageDetector`."""


@MODELS.register_module()
class DistillATSS(DistillSingleStageDetector, ATSS):
    """An ATSS student. Arguments: :class:`DistillSingleStageDetector`."""


@MODELS.register_module()
class DistillFCOS(DistillSingleStageDetector, FCOS):
    """An FCOS student. Arguments: :class:`DistillSingleStageDetector`."""


@MODELS.register_module()
class DistillRTMDet(DistillSingleStageDetector, RTMDet):
    """An RTMDet or RTMDet-Ins student (keeps its ``use_syncbn`` switch). Arguments: its base."""


@MODELS.register_module()
class DistillTOOD(DistillSingleStageDetector, TOOD):
    """A TOOD student. Arguments: :class:`DistillSingleStageDetector`."""


@MODELS.register_module()
class DistillYOLOX(DistillSingleStageDetector, YOLOX):
    """A YOLOX student. Arguments: :class:`DistillSingleStageDetector`."""


@MODELS.register_module()
class DistillVFNet(DistillSingleStageDetector, VFNet):
    """A VFNet student. Arguments: :class:`DistillSingleStageDetector`."""


@MODELS.register_module()
class DistillPAA(DistillSingleStageDetector, PAA):
    """A PAA student. Arguments: :class:`DistillSingleStageDetector`."""


@MODELS.register_module()
class DistillDDOD(DistillSingleStageDetector, DDOD):
    """A DDOD student. Arguments: :class:`DistillSingleStageDetector`."""


@MODELS.register_module()
class DistillCenterNet(DistillSingleStageDetector, CenterNet):
    """A CenterNet student. Arguments: :class:`DistillSingleStageDetector`."""
