"""What the outputs of each supported dense head mean, declared as data.

A dense head's forward returns a tuple of per-level lists (``cls_scores``, ``bbox_preds``, ...)
whose meaning differs by family: logits or probabilities, an objectness or centerness factor fused
into the detection score, refined boxes next to initial ones, GFL-style distributions. Distilling
them on a guess is silently wrong, so every head that a distiller (or the calibration pass) reads
is declared here by class name, and an undeclared head is refused with a message saying how to
declare it (:func:`register_dense_head`).

The rule every declaration serves: **the ``'cls'`` input of a dense distiller is the logit of the
per-class score the head ranks its detections by** (``sigmoid(cls)`` for RetinaNet/GFL,
``sigmoid(cls) * sigmoid(centerness)`` for FCOS/ATSS, the probability TOOD predicts, ...). KD
compares those score logits, the calibration temperature divides the teacher's, and
``fit_on='detections'`` fits the temperature on the same detection scores, so the temperature is
fitted and applied on one quantity.
"""
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet.models.utils import levels_to_images
from mmdet.structures.bbox import distance2bbox

__all__ = ['DenseHeadSemantics', 'cls_channels', 'dense_head_semantics', 'register_dense_head',
           'score_logits', 'DENSE_HEADS']

#: (head, semantics, outs, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore)
#: -> (labels, weights): per level, (N, P_l) tensors with the priors in (y, x, prior) order.
PriorTargets = Callable[..., Tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class DenseHeadSemantics:
    """The meaning of a dense head's forward outputs.

    Args:
        outputs: Names of the forward outputs in order (in training mode); ``'cls'`` and the
            name in ``box_output`` must be among them.
        eval_outputs: Names in eval mode when the head returns other outputs then (VFNet drops
            its initial boxes); None: the same as ``outputs``. The teacher runs in eval mode.
        cls_is_prob: The ``'cls'`` output holds probabilities, not logits (e.g. TOOD, CenterNet).
        score_factor: Name of an output fused into the score as ``sigmoid(factor)`` (centerness,
            objectness, IoU), one channel per prior.
        score_fusion: ``'mul'``: score = p * sigmoid(factor); ``'sqrt_mul'``: the geometric
            mean sqrt(p * sigmoid(factor)) (PAA).
        box_output: The box output that ``inputs='reg'`` compares (the final, refined one);
            None: the head has no box output to distil (CenterNet's sizes and offsets).
        box_kind: ``'boxes'`` (deltas / distances / boxes, 4 per prior) or ``'distribution'``
            (GFL's 4 (reg_max + 1) side distributions).
        prior_targets: Per-prior assigned labels for ``fit_on='anchors'``, from the head's own
            target function; None: only ``fit_on='detections'`` is supported.
        towers: Names of the head's classification and regression conv towers (module lists),
            for CrossKD; None: CrossKD is not supported.
        tail: ``(head, level, cls_feat, reg_feat) -> outputs of that level`` (in the training
            layout): what the head computes after its towers, for CrossKD.
        eval_box_stride: ``head -> bool``: whether the head's training box output is its
            eval-mode one (pixels) divided by the level's stride (FCOS with ``norm_on_bbox``,
            CenterNet-Update); asked of the student's head, the eval-mode teacher's boxes are
            divided by the stride when it says so.
    """

    outputs: Tuple[str, ...]
    eval_outputs: Optional[Tuple[str, ...]] = None
    cls_is_prob: bool = False
    score_factor: Optional[str] = None
    score_fusion: str = 'mul'
    box_output: Optional[str] = 'reg'
    box_kind: str = 'boxes'
    prior_targets: Optional[PriorTargets] = None
    towers: Optional[Tuple[str, str]] = None
    tail: Optional[Callable] = None
    eval_box_stride: Optional[Callable] = None

    def output(self, outs: Sequence, name: str):
        """The forward output called ``name`` (the layout is told apart by the output count)."""
        for names in (self.outputs, self.eval_outputs):
            if names is not None and len(outs) == len(names):
                return outs[names.index(name)]
        raise ValueError(f'The head returned {len(outs)} outputs; its declaration names '
                         f'{self.outputs} (training) and {self.eval_outputs} (eval).')


def _anchor_targets(first: int) -> Callable:
    """Labels of an anchor head's ``get_targets``: mmdet's ``AnchorHead`` (RetinaNet and
    relatives) returns them first, ``ATSSHead`` / ``GFLHead`` second (after the anchors)."""
    def targets(head, sem, outs, gt, metas, gt_ignore):
        cls_scores = sem.output(outs, 'cls')
        sizes = [s.shape[-2:] for s in cls_scores]
        anchors, valid = head.get_anchors(sizes, metas, device=cls_scores[0].device)
        labels, weights = head.get_targets(anchors, valid, gt, metas,
                                           gt_ignore)[first:first + 2]
        return list(labels), list(weights)
    return targets


_anchor_head_targets, _atss_head_targets = _anchor_targets(0), _anchor_targets(1)


def _fsaf_head_targets(head, sem, outs, gt, metas, gt_ignore):
    """``AnchorHead`` labels; FSAF weighs each class of a prior (0 where a box shadows it), so a
    prior counts where none of its classes is ignored."""
    labels, weights = _anchor_head_targets(head, sem, outs, gt, metas, gt_ignore)
    return labels, [w.amin(-1) for w in weights]


def _point_targets(labels_of: Callable) -> Callable:
    """Labels of a point head's ``get_targets``, given by ``labels_of(head, points, sizes, gt)``
    as one tensor in (level, image, y, x) order (FCOS per level, Fovea concatenated)."""
    def targets(head, sem, outs, gt, metas, gt_ignore):
        cls_scores = sem.output(outs, 'cls')
        sizes = [s.shape[-2:] for s in cls_scores]
        points = head.prior_generator.grid_priors(sizes, dtype=cls_scores[0].dtype,
                                                  device=cls_scores[0].device)
        n = len(gt)
        labels = labels_of(head, points, sizes, gt).split([n * h * w for h, w in sizes])
        labels = [lab.reshape(n, -1) for lab in labels]
        return labels, [torch.ones_like(lab, dtype=torch.float32) for lab in labels]
    return targets


_fcos_head_targets = _point_targets(lambda head, points, sizes, gt: torch.cat(
    head.get_targets(points, gt)[0]))
_fovea_head_targets = _point_targets(lambda head, points, sizes, gt: head.get_targets(
    gt, sizes, points)[0])


def _yolof_head_targets(head, sem, outs, gt, metas, gt_ignore):
    """Labels of ``YOLOFHead.get_targets`` (one level; its assigner reads the predicted boxes)."""
    cls_scores, boxes = sem.output(outs, 'cls'), sem.output(outs, 'reg')
    anchors, valid = head.get_anchors([cls_scores[0].shape[-2:]], metas,
                                      device=cls_scores[0].device)
    labels, weights = head.get_targets(levels_to_images(cls_scores), levels_to_images(boxes),
                                       [a[0] for a in anchors], [v[0] for v in valid], gt,
                                       metas, gt_ignore)[:2]
    return [labels], [weights]


def _rtmdet_head_targets(head, sem, outs, gt, metas, gt_ignore):
    """Labels of ``RTMDetHead.get_targets`` (dynamic soft-label assignment on the predictions,
    as RTMDet assigns in training)."""
    cls_scores = sem.output(outs, 'cls')
    sizes = [s.shape[-2:] for s in cls_scores]
    n = len(gt)
    anchors, valid = head.get_anchors(sizes, metas, device=cls_scores[0].device)
    flat_cls = torch.cat([c.permute(0, 2, 3, 1).reshape(n, -1, head.cls_out_channels)
                          for c in cls_scores], 1)
    boxes = torch.cat([distance2bbox(a.reshape(-1, 4), b.permute(0, 2, 3, 1).reshape(n, -1, 4))
                       for a, b in zip(anchors[0], sem.output(outs, 'reg'))], 1)
    labels, weights = head.get_targets(flat_cls, boxes, anchors, valid, gt, metas,
                                       gt_ignore)[1:3]
    return list(labels), list(weights)


def _gfl_tail(head, lvl, cls_feat, reg_feat):
    return head.gfl_cls(cls_feat), head.scales[lvl](head.gfl_reg(reg_feat)).float()


def _retina_tail(head, lvl, cls_feat, reg_feat):
    return head.retina_cls(cls_feat), head.retina_reg(reg_feat)


def _atss_tail(head, lvl, cls_feat, reg_feat):
    return (head.atss_cls(cls_feat), head.scales[lvl](head.atss_reg(reg_feat)).float(),
            head.atss_centerness(reg_feat))


_TOWERS = ('cls_convs', 'reg_convs')

DENSE_HEADS: Dict[str, DenseHeadSemantics] = {
    'RetinaHead': DenseHeadSemantics(('cls', 'reg'), prior_targets=_anchor_head_targets,
                                     towers=_TOWERS, tail=_retina_tail),
    'RPNHead': DenseHeadSemantics(('cls', 'reg'), prior_targets=_anchor_head_targets),
    'GFLHead': DenseHeadSemantics(('cls', 'reg'), box_kind='distribution',
                                  prior_targets=_atss_head_targets, towers=_TOWERS,
                                  tail=_gfl_tail),
    'ATSSHead': DenseHeadSemantics(('cls', 'reg', 'centerness'), score_factor='centerness',
                                   prior_targets=_atss_head_targets, towers=_TOWERS,
                                   tail=_atss_tail),
    # FCOS: with norm_on_bbox, eval-mode distances are in pixels, training ones in strides
    'FCOSHead': DenseHeadSemantics(('cls', 'reg', 'centerness'), score_factor='centerness',
                                   prior_targets=_fcos_head_targets,
                                   eval_box_stride=lambda head: head.norm_on_bbox),
    # RTMDet folds its optional objectness into the class logit itself (inverse_sigmoid of the
    # geometric mean), so 'cls' is already the score logit; boxes are distances x stride
    'RTMDetHead': DenseHeadSemantics(('cls', 'reg'), prior_targets=_rtmdet_head_targets),
    'RTMDetSepBNHead': DenseHeadSemantics(('cls', 'reg'), prior_targets=_rtmdet_head_targets),
    # RTMDet-Ins: RTMDet's outputs, then per-prior dynamic mask kernels and the mask features
    'RTMDetInsSepBNHead': DenseHeadSemantics(('cls', 'reg', 'kernels', 'mask_feat'),
                                             prior_targets=_rtmdet_head_targets),
    # CondInst, BoxInst: FCOS's outputs, then per-prior dynamic mask-head parameters (kernels)
    **dict.fromkeys(('CondInstBboxHead', 'BoxInstBboxHead'), DenseHeadSemantics(
        ('cls', 'reg', 'centerness', 'kernels'), score_factor='centerness',
        prior_targets=_fcos_head_targets, eval_box_stride=lambda head: head.norm_on_bbox)),
    # YOLACT (sigmoid scores only, see .zoo): RetinaNet's outputs, then mask coefficients
    'YOLACTHead': DenseHeadSemantics(('cls', 'reg', 'coeff'), prior_targets=_anchor_head_targets),
    # TOOD predicts probabilities (sigmoid_geometric_mean of its class logits and a class
    # probability map); boxes are decoded corners in stride units
    'TOODHead': DenseHeadSemantics(('cls', 'reg'), cls_is_prob=True),
    # YOLOX: score = sigmoid(cls) * sigmoid(objectness)
    'YOLOXHead': DenseHeadSemantics(('cls', 'reg', 'obj'), score_factor='obj'),
    # VFNet: IoU-aware class logits; the refined boxes are the final ones (eval drops the
    # initial ones)
    'VFNetHead': DenseHeadSemantics(('cls', 'reg_init', 'reg'), eval_outputs=('cls', 'reg')),
    # PAA: score = sqrt(sigmoid(cls) * sigmoid(iou))
    'PAAHead': DenseHeadSemantics(('cls', 'reg', 'iou'), score_factor='iou',
                                  score_fusion='sqrt_mul'),
    # DDOD: score = sigmoid(cls) * sigmoid(iou)
    'DDODHead': DenseHeadSemantics(('cls', 'reg', 'iou'), score_factor='iou'),
    # RetinaNet's outputs: per-level BN towers (NAS-FPN, FPG), distances (FSAF), free anchors
    # (FreeAnchor: its bag loss assigns no per-anchor labels)
    'RetinaSepBNHead': DenseHeadSemantics(('cls', 'reg'), prior_targets=_anchor_head_targets),
    'FSAFHead': DenseHeadSemantics(('cls', 'reg'), prior_targets=_fsaf_head_targets),
    'FreeAnchorRetinaHead': DenseHeadSemantics(('cls', 'reg')),
    # FoveaBox: sigmoid class logits; boxes are log-scale side distances
    'FoveaHead': DenseHeadSemantics(('cls', 'reg'), prior_targets=_fovea_head_targets),
    'NASFCOSHead': DenseHeadSemantics(('cls', 'reg', 'centerness'), score_factor='centerness',
                                      prior_targets=_fcos_head_targets,
                                      eval_box_stride=lambda head: head.norm_on_bbox),
    # AutoAssign: its third output is an objectness, score = sigmoid(cls) * sigmoid(obj); it
    # weights every prior inside a box softly, with no per-prior labels
    'AutoAssignHead': DenseHeadSemantics(('cls', 'reg', 'obj'), score_factor='obj'),
    # CenterNet-Update: sigmoid class logits, soft heat-map targets; eval boxes x stride
    'CenterNetUpdateHead': DenseHeadSemantics(('cls', 'reg'), eval_box_stride=lambda head: True),
    # YOLOF fuses its implicit objectness o into the class logit c in forward (c + o -
    # log(1 + e^c + e^o) = logit(sigmoid(c) sigmoid(o))), so 'cls' is the score logit already
    'YOLOFHead': DenseHeadSemantics(('cls', 'reg'), prior_targets=_yolof_head_targets),
    # RepPoints: sigmoid class logits; 9 points per location (not boxes) in training, the
    # boxes its moment transform makes of them in eval: no box output to compare
    'RepPointsHead': DenseHeadSemantics(('cls', 'pts_init', 'pts'), eval_outputs=('cls', 'box'),
                                        box_output=None),
    # CenterNet: class heat maps are probabilities; one level, no prior generator
    'CenterNetHead': DenseHeadSemantics(('cls', 'wh', 'offset'), cls_is_prob=True,
                                        box_output=None),
}


def register_dense_head(name: str, semantics: DenseHeadSemantics, force: bool = False) -> None:
    """Declare the outputs of a dense head class (by class name) so that it can be distilled.

    Args:
        name: The head's class name, as in ``bbox_head.type``.
        semantics: What its outputs mean.
        force: Replace an existing declaration.
    """
    if name in DENSE_HEADS and not force:
        raise KeyError(f'{name} is already declared; pass force=True to replace it.')
    if 'cls' not in semantics.outputs or (semantics.box_output is not None and
                                          semantics.box_output not in semantics.outputs):
        raise ValueError(f"{name}: outputs {semantics.outputs} must include 'cls' and the "
                         f'box_output {semantics.box_output!r}.')
    if semantics.score_fusion not in ('mul', 'sqrt_mul'):
        raise ValueError(f"{name}: score_fusion must be 'mul' or 'sqrt_mul', got "
                         f'{semantics.score_fusion!r}.')
    if semantics.box_kind not in ('boxes', 'distribution'):
        raise ValueError(f"{name}: box_kind must be 'boxes' or 'distribution', got "
                         f'{semantics.box_kind!r}.')
    DENSE_HEADS[name] = semantics


def cls_channels(head) -> int:
    """Class channels per prior of a dense head (``cls_out_channels``, else ``num_classes``)."""
    return int(getattr(head, 'cls_out_channels', None) or head.num_classes)


def dense_head_semantics(head) -> DenseHeadSemantics:
    """The declaration of ``head``'s class; ValueError for an undeclared head.

    Args:
        head: A dense head module (the exact class is looked up, not its bases: a subclass may
            change what its outputs mean).
    """
    name = type(head).__name__
    if name not in DENSE_HEADS:
        raise ValueError(
            f'{name} is not a declared dense head, so its outputs (logits or probabilities, fused '
            f'factors, which boxes) are unknown and it is not distilled on a guess. Declared: '
            f'{sorted(DENSE_HEADS)}. Declare it with mmkdcal.models.distillers.'
            f'register_dense_head({name!r}, DenseHeadSemantics(outputs=(...), ...)).')
    return DENSE_HEADS[name]


def score_logits(semantics: DenseHeadSemantics, outs: Sequence, num_classes: int) -> List[Tensor]:
    """Per level, the logit of the per-class detection score, laid out like the cls output.

    Args:
        semantics: The head's declaration.
        outs: The head's forward outputs (tuple of per-level lists).
        num_classes: Class channels per prior (``cls_out_channels``).

    Returns:
        list[Tensor]: (N, A*K, H, W) per level.
    """
    cls = semantics.output(outs, 'cls')
    out = []
    for lvl, c in enumerate(cls):
        if semantics.cls_is_prob:
            log_p = torch.log(c.float().clamp(min=1e-12))
            log_1mp = torch.log1p(-c.float().clamp(max=1 - 1e-7))
        else:
            log_p, log_1mp = F.logsigmoid(c), F.logsigmoid(-c)
        if semantics.score_factor is not None:
            f = semantics.output(outs, semantics.score_factor)[lvl]
            n, _, h, w = c.shape
            a = f.shape[1]
            log_p = (log_p.view(n, a, num_classes, h, w) +
                     F.logsigmoid(f).view(n, a, 1, h, w)).view(n, a * num_classes, h, w)
            if semantics.score_fusion == 'sqrt_mul':
                log_p = log_p / 2
            # log(1 - p q) from log(p q) < 0, stable for p q -> 0 and -> 1
            log_1mp = torch.log(-torch.expm1(log_p.clamp(max=-1e-7)))
        elif not semantics.cls_is_prob:
            out.append(c)
            continue
        out.append(log_p - log_1mp)
    return out
