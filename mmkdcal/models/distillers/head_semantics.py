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

__all__ = ['DenseHeadSemantics', 'dense_head_semantics', 'register_dense_head',
           'score_logits', 'DENSE_HEADS']

#: (head, cls_scores, batch_gt_instances, batch_img_metas, batch_gt_instances_ignore)
#: -> (labels, weights): per level, (N, P_l) tensors with the priors in (y, x, prior) order.
PriorTargets = Callable[..., Tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class DenseHeadSemantics:
    """The meaning of a dense head's forward outputs.

    Args:
        outputs: Names of the forward outputs in order; ``'cls'`` and the name in
            ``box_output`` must be among them.
        cls_is_prob: The ``'cls'`` output holds probabilities, not logits (e.g. TOOD).
        score_factor: Name of an output fused multiplicatively into the score as
            ``sigmoid(factor)`` (centerness, objectness), one channel per prior.
        box_output: The box output that ``inputs='reg'`` compares (the final, refined one).
        box_kind: ``'boxes'`` (deltas / distances / boxes, 4 per prior) or ``'distribution'``
            (GFL's 4 (reg_max + 1) side distributions).
        prior_targets: Per-prior assigned labels for ``fit_on='anchors'``, from the head's own
            target function; None: only ``fit_on='detections'`` is supported.
    """

    outputs: Tuple[str, ...]
    cls_is_prob: bool = False
    score_factor: Optional[str] = None
    box_output: str = 'reg'
    box_kind: str = 'boxes'
    prior_targets: Optional[PriorTargets] = None

    def output(self, outs: Sequence, name: str):
        """The forward output called ``name``."""
        return outs[self.outputs.index(name)]


def _anchor_head_targets(head, cls_scores, gt, metas, gt_ignore):
    """Labels of mmdet's ``AnchorHead.get_targets`` (RetinaNet and relatives)."""
    sizes = [s.shape[-2:] for s in cls_scores]
    anchors, valid = head.get_anchors(sizes, metas, device=cls_scores[0].device)
    labels, weights = head.get_targets(anchors, valid, gt, metas, gt_ignore)[:2]
    return list(labels), list(weights)


def _atss_head_targets(head, cls_scores, gt, metas, gt_ignore):
    """Labels of ``ATSSHead.get_targets`` / ``GFLHead.get_targets`` (anchors come first)."""
    sizes = [s.shape[-2:] for s in cls_scores]
    anchors, valid = head.get_anchors(sizes, metas, device=cls_scores[0].device)
    labels, weights = head.get_targets(anchors, valid, gt, metas, gt_ignore)[1:3]
    return list(labels), list(weights)


def _fcos_head_targets(head, cls_scores, gt, metas, gt_ignore):
    """Labels of ``FCOSHead.get_targets`` (per level, the images concatenated)."""
    sizes = [s.shape[-2:] for s in cls_scores]
    points = head.prior_generator.grid_priors(sizes, dtype=cls_scores[0].dtype,
                                              device=cls_scores[0].device)
    n = len(gt)
    labels = [lab.reshape(n, -1) for lab in head.get_targets(points, gt)[0]]
    return labels, [torch.ones_like(lab, dtype=torch.float32) for lab in labels]


DENSE_HEADS: Dict[str, DenseHeadSemantics] = {
    'RetinaHead': DenseHeadSemantics(('cls', 'reg'), prior_targets=_anchor_head_targets),
    'RPNHead': DenseHeadSemantics(('cls', 'reg'), prior_targets=_anchor_head_targets),
    'GFLHead': DenseHeadSemantics(('cls', 'reg'), box_kind='distribution',
                                  prior_targets=_atss_head_targets),
    'ATSSHead': DenseHeadSemantics(('cls', 'reg', 'centerness'), score_factor='centerness',
                                   prior_targets=_atss_head_targets),
    'FCOSHead': DenseHeadSemantics(('cls', 'reg', 'centerness'), score_factor='centerness',
                                   prior_targets=_fcos_head_targets),
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
    if 'cls' not in semantics.outputs or semantics.box_output not in semantics.outputs:
        raise ValueError(f"{name}: outputs {semantics.outputs} must include 'cls' and the "
                         f'box_output {semantics.box_output!r}.')
    if semantics.box_kind not in ('boxes', 'distribution'):
        raise ValueError(f"{name}: box_kind must be 'boxes' or 'distribution', got "
                         f'{semantics.box_kind!r}.')
    DENSE_HEADS[name] = semantics


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
            # log(1 - p q) from log(p q) < 0, stable for p q -> 0 and -> 1
            log_1mp = torch.log(-torch.expm1(log_p.clamp(max=-1e-7)))
        elif not semantics.cls_is_prob:
            out.append(c)
            continue
        out.append(log_p - log_1mp)
    return out
