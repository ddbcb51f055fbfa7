"""Teachers of another head family: which KD a pair allows, neck levels paired by stride, and
prediction KD through the student's own assigner (docs/heterogeneous.md).

Logit inputs are refused for such a pair. ``'neck'`` pairs levels by declared stride
(:func:`feature_strides`, :func:`pair_by_stride`); ``'pred_cls'`` / ``'pred_box'`` (dense
students) assign the teacher's final, calibrated detections to the student's priors by the
student's own rule (:func:`assigned_indices`; Soft Teacher's pseudo boxes, with the calibrated
score as a soft target).
"""
import inspect
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.detectors import DetectionTransformer
from mmdet.models.task_modules.assigners import BaseAssigner
from mmdet.models.task_modules.prior_generators import anchor_inside_flags
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import distance2bbox

from ..contract import DistillBatch, DistillInput
from .head_semantics import dense_head_semantics, score_logits
from .roi_head_stages import roi_stage
from .taps import OutputTaps

__all__ = ['HeteroPair', 'PRED_INPUTS', 'assigned_indices', 'calibrated_scores',
           'class_count_problem', 'detector_num_classes', 'feature_strides', 'hetero_pair',
           'pair_by_stride', 'pred_kd_problem', 'roi_soft_targets', 'soft_targets', 'stride_table']

#: The prediction-KD inputs a dense or DETR-family student offers a teacher of another family.
PRED_INPUTS = (
    DistillInput('pred_cls', 'logits', "per-prior (or query) sigmoid score logits (M, K) against "
                 "the teacher's calibrated detections as soft targets (logits of them)",
                 activation='sigmoid', provides=frozenset({'avg_factor'})),
    DistillInput('pred_box', 'boxes', "decoded student boxes (P, 4) at the priors (or queries) "
                 "assigned to a teacher detection, against its box", box_format='xyxy',
                 provides=frozenset({'weight', 'avg_factor'})),
)
#: Heads whose ``loss_by_feat`` calls their assigner (on their predictions; VFNet with
#: ``use_atss`` on its anchors): prediction KD records those calls.
LOSS_ASSIGNED_HEADS = ('RTMDetHead', 'RTMDetSepBNHead', 'YOLOXHead', 'TOODHead', 'DDODHead',
                       'YOLOFHead', 'VFNetHead')
#: Point heads without an assigner (VFNet without ``use_atss``): their target rule (inside a
#: box, or its fovea, in the level's range).
POINT_RULE_HEADS = ('FCOSHead', 'NASFCOSHead', 'VFNetHead', 'FoveaHead')
#: Dense heads whose loss gives no per-prior assignment to follow, and why.
NO_PRED_RULE = {
    'FSAFHead': 'its loss keeps each box at the level of least loss (online feature selection), '
                'after its assigner',
    'RepPointsHead': 'its training outputs are point sets, not boxes, assigned twice (points, '
                     'then refined boxes)',
    'AutoAssignHead': 'its loss weighs every point inside a box softly, with no assignment',
    'CenterNetUpdateHead': 'its class targets are heat maps, with no assignment',
}


def _backbone_strides(detector) -> List[int]:
    """DETR: stage ``i`` of a ResNet-like backbone has stride 4 * 2**i; each extra (stride-2)
    level of the neck halves the last one."""
    indices = list(getattr(detector.backbone, 'out_indices', ()))
    strides = [4 * 2 ** int(i) for i in indices]
    extra = getattr(getattr(detector, 'neck', None), 'extra_convs', None) or ()  # ChannelMapper
    return strides + [strides[-1] * 2 ** (k + 1) for k in range(len(extra))] if strides else []


def feature_strides(detector) -> Optional[List[int]]:
    """The stride of each level a built detector's neck gives (``extract_feat``), from what it
    declares (see docs/heterogeneous.md), or None if unknown."""
    if isinstance(detector, DetectionTransformer):
        return _backbone_strides(detector) or None
    head = getattr(detector, 'bbox_head', None) or getattr(detector, 'rpn_head', None)
    gen = getattr(head, 'prior_generator', None)
    if gen is not None:
        if any(s[0] != s[1] for s in gen.strides):
            return None
        return [int(s[0]) for s in gen.strides]
    extractor = getattr(getattr(detector, 'roi_head', None), 'bbox_roi_extractor', None)
    extractor = roi_stage(extractor, 0) if extractor is not None else None
    strides = getattr(extractor, 'featmap_strides', None)
    return [int(s) for s in strides] if strides else None


def stride_table(who: str, detector, strides: Optional[Sequence[int]]) -> str:
    """One line naming a detector's levels and their strides, for messages."""
    levels = ', '.join(f'{i}: {s}' for i, s in enumerate(strides)) if strides else 'unknown'
    return f'{who} ({type(detector).__name__}) level: stride = {{{levels}}}'


def pair_by_stride(student: Sequence[int], teacher: Sequence[int]) -> List[Tuple[int, int]]:
    """(student level, teacher level) for every stride both have, in the student's order."""
    return [(i, list(teacher).index(s)) for i, s in enumerate(student) if s in teacher]


def detector_num_classes(detector) -> int:
    """The object classes a detector predicts (dense, DETR or RoI head)."""
    head = getattr(detector, 'bbox_head', None)
    if head is None:
        head = roi_stage(detector.roi_head.bbox_head, 0)
    return int(head.num_classes)


@dataclass(frozen=True)
class HeteroPair:
    """A student and a teacher of different head families (head class names), the (student,
    teacher) neck levels of equal stride, the inputs the pair allows, both stride tables."""

    student_head: str
    teacher_head: str
    level_pairs: Tuple[Tuple[int, int], ...]
    allowed: Tuple[str, ...]
    tables: str
    pred_problem: Optional[str] = None

    def check_input(self, key: str, inputs: Optional[str]) -> None:
        """Refuse a ``distill_losses`` entry whose ``inputs`` this pair does not allow."""
        if inputs not in self.allowed:
            what = ('neck-feature KD (by stride) and prediction KD (teacher detections as '
                    'soft targets)' if len(self.allowed) > 1 else 'neck-feature KD (by stride)')
            why = (f' (no prediction KD: {self.pred_problem})' if self.pred_problem else '')
            raise ValueError(
                f'distill_losses.{key}: teacher {self.teacher_head} / student '
                f'{self.student_head}: {what} allowed{why}, inputs {list(self.allowed)}; '
                f'inputs={inputs!r} needs the same head layout (a teacher of the same family).')

    def pair_levels(self, batch: DistillBatch) -> DistillBatch:
        """Keep the neck levels of equal stride, in pairs; check their sizes agree."""
        s = [batch.student[i] for i, _ in self.level_pairs]
        t = [batch.teacher[j] for _, j in self.level_pairs]
        for (i, j), a, b in zip(self.level_pairs, s, t):
            if any(abs(x - y) > 1 for x, y in zip(a.shape[-2:], b.shape[-2:])):
                raise ValueError(
                    f"inputs='neck': student level {i} is {tuple(a.shape[-2:])} but teacher "
                    f'level {j}, of the same declared stride, is {tuple(b.shape[-2:])}: the '
                    f'declared strides are wrong for one of them.\n{self.tables}')
        return DistillBatch(s, t)


def hetero_pair(student, teacher, student_head: str, teacher_head: str,
                pred_inputs: Sequence[DistillInput] = (),
                pred_problem: Optional[str] = None) -> HeteroPair:
    """Check a student/teacher pair of different families; refuse it when no neck level pairs.

    Args:
        student: The student detector.
        teacher: The teacher detector.
        student_head: The student's head class name, for messages.
        teacher_head: The teacher's head class name, for messages.
        pred_inputs: The prediction-KD inputs the student offers this teacher (none: neck only).
        pred_problem: Why it offers none, for the refusal of a prediction input.
    """
    s_strides, t_strides = feature_strides(student), feature_strides(teacher)
    tables = '\n'.join((stride_table('student', student, s_strides),
                        stride_table('teacher', teacher, t_strides)))
    pairs = pair_by_stride(s_strides or [], t_strides or [])
    if not pairs:
        raise ValueError(
            f'teacher {teacher_head} / student {student_head}: no neck level of the student has '
            'the stride of a teacher level, so neck-feature KD has nothing to pair (and the '
            'heads differ, so logit KD needs the same head layout). Give one of the necks a '
            f'level at a shared stride, or use a teacher of the same family.\n{tables}')
    allowed = ('neck', ) + tuple(p.name for p in pred_inputs)
    return HeteroPair(student_head, teacher_head, tuple(pairs), allowed, tables, pred_problem)


def _rule(head) -> str:
    """How a dense head assigns its priors: ``'point'`` rule, ``'loss'`` (recorded) or ``'prior'``
    assigner (see :func:`assigned_indices`)."""
    name = type(head).__name__
    if name in POINT_RULE_HEADS and not getattr(head, 'use_atss', False):
        return 'point'
    return 'loss' if name in LOSS_ASSIGNED_HEADS else 'prior'


def pred_kd_problem(head, teacher_classes: int) -> Optional[str]:
    """Why ``head`` (dense) offers no prediction KD to a teacher of ``teacher_classes``, or None."""
    name, assigner = type(head).__name__, getattr(head, 'assigner', None)
    if name in NO_PRED_RULE:
        return NO_PRED_RULE[name]
    prior_only = (type(assigner).__name__ in ('MaxIoUAssigner', 'ATSSAssigner')  # on anchor
                  and getattr(assigner, 'alpha', None) is None  # boxes, without predictions
                  and hasattr(getattr(head, 'prior_generator', None), 'base_anchors'))
    if getattr(head, 'prior_generator', None) is None:
        return f'{name} has no prior generator'
    if assigner is None and _rule(head) != 'point':
        return (f'{name} has no train_cfg.assigner and no point target rule (supported: '
                f'{list(POINT_RULE_HEADS)})')
    if _rule(head) == 'prior' and not prior_only:
        return (f'its assigner {type(assigner).__name__} does not assign from anchor boxes alone, '
                f'and prediction KD follows the loss of {list(LOSS_ASSIGNED_HEADS)} only')
    if not getattr(head, 'use_sigmoid_cls', True):
        return 'its class scores are a softmax, not per-class sigmoids'
    return class_count_problem(teacher_classes, head.num_classes)


def class_count_problem(teacher_classes: int, student_classes: int) -> Optional[str]:
    """Why prediction KD cannot map the teacher's classes onto the student's, or None."""
    if teacher_classes == student_classes:
        return None
    return f'the teacher predicts {teacher_classes} classes, the student {student_classes}'


def calibrated_scores(distiller, scores: Tensor, labels: Tensor) -> Tensor:
    """Detection scores mapped by the teacher's calibrator, fitted on detection-score logits
    (``fit_on='detections'``): ``sigmoid(calibrate(logit(score)))`` at each box's class."""
    k = distiller.num_teacher_logit_classes()
    z = torch.logit(scores.float(), eps=1e-6)[:, None].expand(-1, k).contiguous()
    z = distiller.scale_teacher_logits(z)
    return z.gather(1, labels.long()[:, None]).squeeze(1).sigmoid()


def teacher_detections(distiller, batch_inputs: Tensor, batch_data_samples,
                       feats: Optional[Sequence[Tensor]] = None) -> List[InstanceData]:
    """The teacher's final detections (its test_cfg, NMS) in input coordinates, calibrated;
    ``feats``: its ``extract_feat`` of ``batch_inputs`` when the step already ran it (the neck
    input), so that its ``predict`` does not run the backbone again."""
    samples = [DetDataSample(metainfo=s.metainfo) for s in batch_data_samples]
    teacher = distiller.teacher
    with distiller.teacher_context(batch_inputs.device.type):
        if feats is not None:  # an instance attribute shadows the method for this call
            object.__setattr__(teacher, 'extract_feat', lambda inputs: feats)
        try:
            results = teacher.predict(batch_inputs, samples, rescale=False)
        finally:
            teacher.__dict__.pop('extract_feat', None)
    dets = []
    for res in results:
        pred = res.pred_instances
        distiller._check_finite(pred.scores, 'detection scores')
        b = pred.bboxes.float()  # an untrained head can give x2 < x1: no area, not inverted
        dets.append(InstanceData(bboxes=torch.cat([b[:, :2], torch.maximum(b[:, 2:], b[:, :2])],
                                                  dim=1), labels=pred.labels,
                                 scores=calibrated_scores(distiller, pred.scores, pred.labels)))
    return dets


def roi_soft_targets(assigner, bbox_head, record: dict, dets: Sequence) -> Tuple[Tensor, ...]:
    """Assign the teacher's detections to one RoI stage's sampled RoIs with the student's rcnn
    assigner: (K + 1)-way soft class targets and box targets (docs/heterogeneous.md).

    Args:
        assigner: The stage's ``bbox_assigner`` (``train_cfg.rcnn.assigner``).
        bbox_head: The stage's bbox head.
        record: Its ``loss_and_target`` call (``rois``, ``sampling_results``, predictions).
        dets: Per image, the calibrated detections, InstanceData (:func:`teacher_detections`).

    Returns:
        The student's (M, K + 1) logits and the targets' logs (0 -> -1e4); the student's boxes
        (P, 4) at the P assigned RoIs (the class's box), their detections' boxes and scores.
    """
    inds, offset = [], 0
    for res, d in zip(record['sampling_results'], dets):  # the rows of ``rois``, image by image
        g = assigner.assign(InstanceData(priors=res.priors), d).gt_inds
        inds.append(torch.where(g > 0, g + offset, g))
        offset += len(d)
    gt_inds, k, dets = torch.cat(inds), bbox_head.num_classes, InstanceData.cat(list(dets))
    pos = (gt_inds > 0).nonzero().squeeze(1)
    det, labels = dets[gt_inds[pos] - 1], dets.labels[gt_inds[pos] - 1].long()
    pred = record['bbox_pred'][pos]
    if not bbox_head.reg_class_agnostic:
        pred = pred.view(len(pos), k, 4)[torch.arange(len(pos)), labels]
    return (record['cls_score'][gt_inds >= 0], softmax_soft_targets(gt_inds, dets, k)[gt_inds >= 0],
            bbox_head.bbox_coder.decode(record['rois'][pos, 1:], pred), det.bboxes, det.scores)


def assigned_indices(head, outs, dets: List[InstanceData], metas: List[dict],
                     priors: List[Tensor]) -> List[Tuple[Tensor, Tensor]]:
    """Per image, the teacher detection each student prior takes, by the head's own rule: its
    ``loss_by_feat``'s ``assign`` calls on its detached outputs (:data:`LOSS_ASSIGNED_HEADS`;
    DDOD: class, then box assigner; none, so background, where YOLOX skips an image without
    boxes); its point rule, label ``num_classes`` + 1 + index (FCOS, FoveaBox, VFNet without
    ATSS); or its prior assigner.

    Args:
        head: The student's dense head.
        outs: Its forward outputs (tuple of per-level lists).
        dets: Per image, the teacher's detections (``bboxes``, ``labels``) as ground truth.
        metas: Per image, its meta information.
        priors: Per level, the head's priors.

    Returns:
        Per image, ``gt_inds`` (P,) for the class and the box targets (0: background, -1:
        ignored, i > 0: detection i - 1), in (level, y, x, prior) order.
    """
    name, total, k = type(head).__name__, sum(len(p) for p in priors), head.num_classes
    if _rule(head) == 'point':
        gts = [InstanceData(bboxes=d.bboxes, labels=torch.arange(len(d), device=d.bboxes.device)
                            + k + 1) for d in dets]
        labels = head.get_targets(*{'VFNetHead': (outs[0], priors, gts, metas), 'FoveaHead': (
            gts, [o.shape[-2:] for o in outs[0]], priors)}.get(name, (priors, gts)))[0]
        labels = torch.cat(labels if isinstance(labels, list) else [labels]).split(
            [len(dets) * len(p) for p in priors])  # per level (Fovea: one tensor)
        inds = torch.cat([lvl.view(len(dets), -1) for lvl in labels], 1) - k  # (image, P)
        return list(zip(inds, inds))
    if _rule(head) == 'prior':
        kwargs = dict(pred_instances=InstanceData(priors=torch.cat(priors)))
        if 'num_level_priors' in inspect.signature(head.assigner.assign).parameters:
            kwargs['num_level_priors'] = [len(p) for p in priors]
        inds = [head.assigner.assign(gt_instances=d, **kwargs).gt_inds for d in dets]
        return list(zip(inds, inds))
    with torch.no_grad(), OutputTaps() as taps:
        for assigner in {a for a in vars(head).values() if isinstance(a, BaseAssigner)}:
            taps.method_call('assign', assigner, 'assign')
        head.loss_by_feat(*[[o.detach() for o in out] for out in outs], batch_gt_instances=dets,
                          batch_img_metas=metas)
    found = []
    for det, meta in zip(dets, metas):
        calls = [c['result'].gt_inds for c in taps['assign'] if c['gt_instances'] is det]
        calls = calls or [det.labels.new_zeros(total)]
        if len(calls[0]) != total:  # the head's anchor_inside_flags: outside ones are ignored
            anchors, valid = head.get_anchors([o.shape[-2:] for o in outs[0]], [meta],
                                              device=calls[0].device)
            inside = anchor_inside_flags(torch.cat(anchors[0]), torch.cat(valid[0]),
                                         meta['img_shape'][:2], head.train_cfg['allowed_border'])
            calls = [calls[0].new_full((total, ), -1).masked_scatter(inside, c) for c in calls]
        found.append((calls[0], calls[-1]))
    return found


def soft_targets(gt_inds: Tensor, dets: InstanceData, num_classes: int) -> Tensor:
    """(P, K) targets: row p's detection ``gt_inds[p] - 1``'s calibrated score at its class."""
    target = dets.scores.new_zeros(len(gt_inds), num_classes)
    pos = (gt_inds > 0).nonzero().squeeze(1)
    target[pos, dets.labels[gt_inds[pos] - 1].long()] = dets.scores[gt_inds[pos] - 1]
    return target


def softmax_soft_targets(gt_inds: Tensor, dets: InstanceData, num_classes: int) -> Tensor:
    """(P, K + 1) log-probabilities: :func:`soft_targets`, the rest (``1 - s``; all of it for a
    row without a detection) on the background (last) class, log 0 as -1e4."""
    target = soft_targets(gt_inds, dets, num_classes + 1)
    target[:, num_classes] = 1 - target.sum(1)
    return target.log().clamp(min=-1e4)


def _image_rows(outputs: Sequence[Tensor], i: int, priors_per_location: int) -> Tensor:
    """Image ``i``'s rows of per-level (N, A*C, H, W) outputs, (level, y, x, prior) order."""
    c = outputs[0].shape[1] // priors_per_location
    return torch.cat([o[i].permute(1, 2, 0).reshape(-1, c) for o in outputs])


def _decode(head, sem, reg_rows: Tensor, priors: Tensor, strides: Tensor) -> Tensor:
    """Decoded xyxy boxes of a dense head's training box output at its priors."""
    s, name = strides[:, None], type(head).__name__
    if sem.box_kind == 'distribution':  # GFL: side distances in units of the level's stride
        return distance2bbox((priors[:, :2] + priors[:, 2:]) / 2, head.integral(reg_rows) * s)
    if name == 'YOLOXHead':  # its own decoder, at (x, y, stride, stride) priors
        return head._bbox_decode(torch.cat([priors[:, :2], s, s], 1), reg_rows)
    if name == 'TOODHead':  # boxes in stride units
        return reg_rows * s
    if name == 'FoveaHead':  # log side distances in units of the level's base edge, no clip
        base = s.new_tensor([head.base_edge_list[head.strides.index(int(x))] for x in strides])
        return head._bbox_decode(priors, reg_rows, base, (float('inf'), ) * 2)
    if sem.eval_box_stride is not None and sem.eval_box_stride(head):  # FCOS: norm_on_bbox
        reg_rows = reg_rows * s
    return head.bbox_coder.decode(priors, reg_rows)


def pred_batches(distiller, head_outs, batch_inputs: Tensor, batch_data_samples, needed,
                 t_feats=None) -> dict:
    """``'pred_cls'`` / ``'pred_box'`` batches of a dense student (see the module docstring);
    ``t_feats``: the teacher's neck features of the step, if it ran them."""
    head = distiller.bbox_head
    sem = dense_head_semantics(head)
    dets = teacher_detections(distiller, batch_inputs, batch_data_samples, t_feats)
    s_cls = score_logits(sem, head_outs, head.cls_out_channels)
    s_reg = sem.output(head_outs, sem.box_output) if 'pred_box' in needed else None
    gen, a = head.prior_generator, head.prior_generator.num_base_priors[0]
    priors = gen.grid_priors([c.shape[-2:] for c in s_cls], device=batch_inputs.device)
    flat = torch.cat(priors)
    strides = torch.cat([p.new_full((len(p), ), float(s[0])) for p, s in zip(priors, gen.strides)])
    found = assigned_indices(head, head_outs, dets, [s.metainfo for s in batch_data_samples],
                             priors)
    rows, targets, s_box, t_box, w_box = [], [], [], [], []
    num_pos = batch_inputs.new_zeros(())
    for i, (gt_inds, box_inds) in enumerate(found):
        keep, pos = gt_inds >= 0, gt_inds > 0  # ignored priors teach nothing
        num_pos = num_pos + pos.sum()
        rows.append(_image_rows(s_cls, i, a)[keep])
        targets.append(soft_targets(gt_inds, dets[i], head.num_classes)[keep])
        if s_reg is not None:
            pos = box_inds > 0
            s_box.append(_decode(head, sem, _image_rows(s_reg, i, a)[pos], flat[pos], strides[pos]))
            t_box.append(dets[i].bboxes[box_inds[pos] - 1])
            w_box.append(dets[i].scores[box_inds[pos] - 1])
    target, num_pos = torch.cat(targets), num_pos.float().clamp(min=1.0)
    batches = {}
    if 'pred_cls' in needed:
        batches['pred_cls'] = DistillBatch(torch.cat(rows), torch.logit(target, eps=1e-6),
                                           avg_factor=num_pos)
    if s_reg is not None:
        batches['pred_box'] = DistillBatch(torch.cat(s_box), torch.cat(t_box),
                                           weight=torch.cat(w_box), avg_factor=num_pos)
    return batches
