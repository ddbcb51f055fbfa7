"""The peers' own distillers, built from their own code, and ours configured with their loss set.

Two peers, each on the GFL R-101 -> R-50 pair (or a shrunk copy of it for toy runs):

- ``mmdet_ld``: MMDetection 3.x's ``KnowledgeDistillationSingleStageDetector`` with ``LDHead``
  (its ``ld/`` configs: localisation distillation, ``KnowledgeDistillationKLDivLoss`` with
  ``T=10``, ``loss_weight=0.25``). Ours: ``LDLoss`` on ``'reg'`` with the same ``tau`` and weight.
- ``mmrazor``: MMRazor 1.0's ``SingleTeacherDistill`` + ``ConfigurableDistiller`` with a neck
  feature loss (its ``PKDLoss`` on each FPN level) and a logit loss (its ``KLDivergence`` on each
  level's classification map, recorded from ``bbox_head.gfl_cls``). Ours: ``PKDLoss`` on
  ``'neck'`` and ``BinaryKDLoss`` on ``'cls'`` with the same weights and ``tau``: GFL scores
  classes with a sigmoid, and our distiller refuses a softmax KL on sigmoid logits (MMRazor has no
  binary logit loss), so the logit losses differ in formula, not in what they read.

Ours runs with ``teacher_temperature=1.0`` (no calibration) so that both sides distil the same
teacher outputs. The loss reports compare the values on one fixed batch with identical weights
and state the conventions under which they must be equal.
"""
import copy
from typing import Dict, List, Tuple

import torch

__all__ = ['LD_LOSS_WEIGHT', 'LD_TAU', 'MMRAZOR_KD_TAU', 'MMRAZOR_KD_WEIGHT', 'MMRAZOR_PKD_WEIGHT',
           'PEERS', 'build_mmdet_ld', 'build_mmrazor_distill', 'loss_report', 'ours_losses',
           'sum_losses']

#: The peers compared, and the environment each runs in ('main': the project's pinned stack;
#: 'peer': the benchmark-only environment of tools/benchmarks/setup_peer_env.sh).
PEERS: Dict[str, str] = {'mmdet_ld': 'main', 'mmrazor': 'peer'}

#: MMDetection's ld/ configs: KnowledgeDistillationKLDivLoss(T=10, loss_weight=0.25).
LD_TAU, LD_LOSS_WEIGHT = 10.0, 0.25
#: The MMRazor loss set: PKD on each FPN level (weight of its RetinaNet PKD config) and softmax KL
#: on each level's classification logits.
MMRAZOR_PKD_WEIGHT, MMRAZOR_KD_TAU, MMRAZOR_KD_WEIGHT = 10.0, 1.0, 1.0


def ours_losses(peer: str) -> Dict[str, dict]:
    """Our ``distill_losses`` with the same loss set as ``peer``."""
    if peer == 'mmdet_ld':
        return dict(loss_ld=dict(type='LDLoss', inputs='reg', tau=LD_TAU,
                                 loss_weight=LD_LOSS_WEIGHT))
    if peer == 'mmrazor':
        return dict(loss_pkd=dict(type='PKDLoss', inputs='neck', loss_weight=MMRAZOR_PKD_WEIGHT),
                    loss_kd=dict(type='BinaryKDLoss', inputs='cls', tau=MMRAZOR_KD_TAU,
                                 loss_weight=MMRAZOR_KD_WEIGHT))
    raise ValueError(f'unknown peer {peer!r}; choose from {sorted(PEERS)}.')


def build_mmdet_ld(student_cfg: dict, teacher_cfg: dict, teacher_ckpt: str,
                   student_state: dict):
    """MMDetection's ``KnowledgeDistillationSingleStageDetector`` + ``LDHead`` for a GFL pair.

    Args:
        student_cfg: A GFL student model dict (its head becomes ``LDHead``, as in mmdet's
            ``ld/`` configs).
        teacher_cfg: The GFL teacher model dict.
        teacher_ckpt: The teacher checkpoint (loaded by MMDetection's own code).
        student_state: Student weights to start from (strictly loaded).

    Returns:
        The detector in train mode.
    """
    from mmdet.registry import MODELS
    if student_cfg['bbox_head']['type'] != 'GFLHead':
        raise ValueError(f"MMDetection's LD needs a GFL student (LDHead is a GFLHead), got "
                         f"{student_cfg['bbox_head']['type']}.")
    cfg = copy.deepcopy(student_cfg)
    cfg['type'] = 'KnowledgeDistillationSingleStageDetector'
    cfg['bbox_head']['type'] = 'LDHead'
    cfg['bbox_head']['loss_ld'] = dict(type='KnowledgeDistillationKLDivLoss',
                                       loss_weight=LD_LOSS_WEIGHT, T=int(LD_TAU))
    cfg.update(teacher_config=dict(model=copy.deepcopy(teacher_cfg)), teacher_ckpt=teacher_ckpt)
    model = MODELS.build(cfg)
    model.load_state_dict(student_state, strict=True)
    model.train()  # (MMDetection's and MMRazor's train() return None)
    return model


def _level_mapping(recorder: str, idx: int, by_call: bool) -> dict:
    key = 'record_idx' if by_call else 'data_idx'
    return dict(preds_S=dict(from_student=True, recorder=recorder, **{key: idx}),
                preds_T=dict(from_student=False, recorder=recorder, **{key: idx}))


def build_mmrazor_distill(student_cfg: dict, teacher_cfg: dict, teacher_ckpt: str,
                          student_state: dict, num_levels: int):
    """MMRazor's ``SingleTeacherDistill`` + ``ConfigurableDistiller`` (PKD on FPN + KL on logits).

    Args:
        student_cfg: The student model dict (a GFL detector).
        teacher_cfg: The teacher model dict.
        teacher_ckpt: The teacher checkpoint (loaded by MMRazor's own code).
        student_state: Student weights to start from (strictly loaded).
        num_levels: FPN levels (each gets a PKD and a KL loss).

    Returns:
        The algorithm in train mode.
    """
    from mmrazor.models import SingleTeacherDistill

    from mmdet.registry import MODELS
    student = MODELS.build(copy.deepcopy(student_cfg))
    student.load_state_dict(student_state, strict=True)
    teacher = MODELS.build(copy.deepcopy(teacher_cfg))
    recorders = dict(fpn=dict(type='ModuleOutputs', source='neck'),
                     cls=dict(type='ModuleOutputs', source='bbox_head.gfl_cls'))
    losses, mappings = {}, {}
    for i in range(num_levels):
        losses[f'loss_pkd_fpn{i}'] = dict(type='PKDLoss', loss_weight=MMRAZOR_PKD_WEIGHT)
        mappings[f'loss_pkd_fpn{i}'] = _level_mapping('fpn', i, by_call=False)
        losses[f'loss_kd_cls{i}'] = dict(type='KLDivergence', tau=MMRAZOR_KD_TAU,
                                         loss_weight=MMRAZOR_KD_WEIGHT)
        mappings[f'loss_kd_cls{i}'] = _level_mapping('cls', i, by_call=True)  # one call per level
    distiller = dict(_scope_='mmrazor', type='ConfigurableDistiller',
                     student_recorders=recorders, teacher_recorders=copy.deepcopy(recorders),
                     distill_losses=losses, loss_forward_mappings=mappings)
    model = SingleTeacherDistill(distiller=distiller, teacher=teacher, teacher_ckpt=teacher_ckpt,
                                 architecture=student)
    model.train()  # (MMDetection's and MMRazor's train() return None)
    return model


def sum_losses(losses: dict) -> Dict[str, float]:
    """Each ``loss`` entry of a loss dict as one float (per-level lists summed)."""
    out = {}
    for name, value in losses.items():
        if 'loss' not in name:
            continue
        if isinstance(value, (list, tuple)):
            value = sum(v.sum() for v in value)
        out[name] = float(value.detach().sum())
    return out


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def _task(losses: Dict[str, float], prefix: str = '') -> Dict[str, float]:
    return {k: losses[prefix + k] for k in ('loss_cls', 'loss_bbox', 'loss_dfl')}


def _ld_head_terms(student, teacher, inputs, samples) -> Tuple[float, float]:
    """Our ``LDLoss`` evaluated the way ``LDHead`` selects and weights its rows, and the sum of
    those weights.

    ``LDHead`` distils only the ATSS-positive locations, each side's distribution weighted by the
    student's detached max class score, summed per level with ``avg_factor=4``
    (``KnowledgeDistillationKLDivLoss`` over the 4 sides); ``LDLoss(...)(s, t, w, avg_factor=1)``
    with those rows is that term (see its docstring). The assignment is the student head's own
    (``get_anchors`` + ``get_targets``).

    Returns:
        ``(ld, weight_sum)``: the LD term in ``LDHead``'s convention, and the sum over positives
        of the student's max class score (the box-loss normaliser of ``GFLHead``/``LDHead``).
    """
    from mmdet.models.utils import unpack_gt_instances
    from mmdet.registry import MODELS
    head = student.bbox_head
    ld = MODELS.build(dict(type='LDLoss', tau=LD_TAU, loss_weight=LD_LOSS_WEIGHT))
    with torch.no_grad():
        cls_scores, bbox_preds = student(inputs, mode='tensor')
        _, t_reg = teacher(inputs, mode='tensor')
        gt, gt_ignore, metas = unpack_gt_instances(samples)
        sizes = [c.shape[-2:] for c in cls_scores]
        anchors, valid = head.get_anchors(sizes, metas, device=inputs.device)
        targets = head.get_targets(anchors, valid, gt, metas, batch_gt_instances_ignore=gt_ignore)
        labels_list = targets[1]
        width = 4 * (head.reg_max + 1)
        total, weight_sum = 0.0, 0.0
        for cls, s_reg, t, labels in zip(cls_scores, bbox_preds, t_reg, labels_list):
            labels = labels.reshape(-1)
            pos = (labels >= 0) & (labels < head.num_classes)
            if not pos.any():
                continue
            w = cls.permute(0, 2, 3, 1).reshape(-1, head.cls_out_channels).sigmoid().max(1)[0]
            s = s_reg.permute(0, 2, 3, 1).reshape(-1, width)
            t = t.permute(0, 2, 3, 1).reshape(-1, width)
            total += float(ld(s[pos], t[pos], w[pos], avg_factor=1.0))
            weight_sum += float(w[pos].sum())
    return total, weight_sum


def loss_report(peer: str, models: dict, inputs: torch.Tensor, samples: List) -> dict:
    """Loss values of the student, ours and the peer on one batch, and the convention checks.

    Call before any training step: all models must hold the same student and teacher weights.

    Args:
        peer: ``'mmdet_ld'`` or ``'mmrazor'``.
        models: ``student``, ``ours`` and ``peer`` (built by :mod:`.peer_compare`).
        inputs: The preprocessed batch.
        samples: Its data samples.

    Returns:
        ``values`` (name -> float for each model), and ``checks``: for each, the two numbers that
        must agree, their relative difference and the convention that makes them agree.
    """
    with torch.no_grad():
        values = {name: sum_losses(models[name].loss(inputs, samples))
                  for name in ('student', 'ours', 'peer')}
    student, ours, peer_v = values['student'], values['ours'], values['peer']
    teacher = models['ours'].teacher
    checks = {}
    prefix = 'student.' if peer == 'mmrazor' else ''
    for key, value in _task(student).items():
        checks[f'task_{key}'] = dict(
            ours=ours[key], peer=peer_v[prefix + key], student=value,
            rel_diff=_rel(ours[key], peer_v[prefix + key]),
            convention='identical: the same student head and weights compute it on both sides')
    if peer == 'mmdet_ld':
        ld_ours_conv, weight_sum = _ld_head_terms(models['student'], teacher, inputs, samples)
        for key in ('loss_bbox', 'loss_dfl'):
            conv = peer_v[key] * (weight_sum + 1e-6) / max(weight_sum, 1.0)
            checks[f'task_{key}'].update(
                peer_in_our_convention=conv, rel_diff=_rel(ours[key], conv),
                weight_sum=weight_sum,
                convention="GFLHead divides by max(S, 1), LDHead by S + 1e-6 (no clamp), S = sum "
                           "over positives of the student's max class score: theirs x (S + "
                           '1e-6) / max(S, 1) is ours; equal as they are once S >= 1')
        ld_theirs = peer_v['loss_ld']
        checks['ld_kernel'] = dict(
            ours=ld_ours_conv, peer=ld_theirs, rel_diff=_rel(ld_ours_conv, ld_theirs),
            convention="our LDLoss on LDHead's rows (ATSS positives, student-score weights, "
                       'sum per level with avg_factor 4) is its loss_ld, up to float32 rounding '
                       '(its kl_div takes the log of a softmax, ours a log_softmax; the '
                       'difference shows when the KL is tiny, as between random networks)')
        checks['ld_as_configured'] = dict(
            ours=ours['loss_ld'], peer=ld_theirs,
            convention='not equal by design: ours distils every location weighted by the '
                       "teacher's max class probability and normalised by their sum; LDHead only "
                       'the positives, weighted by the student score, not normalised by a count')
    else:
        n_levels = sum(1 for k in peer_v if k.startswith('distill.loss_pkd_fpn'))
        with torch.no_grad():
            feats = models['ours'].extract_feat(inputs)
        pkd_expected = 0.0
        for i, f in enumerate(feats):
            n = f.shape[0] * f.shape[2] * f.shape[3]
            if n < 2:
                raise ValueError(f'FPN level {i} has {n} value per channel: the sample std of '
                                 "MMRazor's PKD is undefined; use a larger batch or image size.")
            pkd_expected += peer_v[f'distill.loss_pkd_fpn{i}'] * n / (n - 1)
        checks['pkd'] = dict(
            ours=ours['loss_pkd'], peer=sum(peer_v[f'distill.loss_pkd_fpn{i}']
                                            for i in range(n_levels)),
            peer_in_our_convention=pkd_expected, rel_diff=_rel(ours['loss_pkd'], pkd_expected),
            convention='MMRazor standardises each channel with the sample std (n - 1), ours with '
                       'the population std (n): level l of theirs times n_l / (n_l - 1), summed, '
                       'is ours (n_l = N H_l W_l)')
        kd_theirs = sum(peer_v[f'distill.loss_kd_cls{i}'] for i in range(n_levels))
        checks['kd'] = dict(
            ours=ours['loss_kd'], peer=kd_theirs,
            convention="not equal by design: both read every location's class logits, ours as "
                       "K sigmoid scores (BinaryKDLoss, normalised by the teacher's soft "
                       "foreground count), MMRazor's KLDivergence as one softmax over the K "
                       "classes ('batchmean'); our distiller refuses a softmax KL on GFL's "
                       'sigmoid logits')
    return dict(values=values, checks=checks)
