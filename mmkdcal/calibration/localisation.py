"""Localisation-aware calibration errors of detectors: LaECE and LaACE.

Oksuz et al. (CVPR 2023), as Kuzucu et al. (ECCV 2024) evaluate them: a detection's confidence
should equal the IoU of its match (0 for a false positive); per class with ground truth, 25
equal-width bins (the first closed), averaged over classes, as the authors' ``coco_calibration.py``
(docs/calibration.md).
"""
from typing import Any, Dict, Iterable, Optional, Sequence

import numpy as np

from .detection import _labels, _np_floats, match_image_dict

__all__ = ['laece', 'laace', 'localisation_errors']


def _per_class(scores: Any, ious: Any, labels: Any,
               classes: Optional[Iterable[int]]) -> Dict[int, np.ndarray]:
    """Check the inputs; return ``{class: (2, N_c) array of [score; IoU]}`` over ``classes``."""
    s = _np_floats(scores, 'scores', (1,)).astype(np.float64)
    n = s.shape[0]
    q = _np_floats(ious, 'ious', (1,)).astype(np.float64)
    if q.shape != (n,):
        raise ValueError(f'`ious` must have shape ({n},) like `scores`, got {q.shape}.')
    for name, a in (('scores', s), ('ious', q)):
        if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
            raise ValueError(f'`{name}` must hold finite values in [0, 1].')
    lab = _labels(labels, n, 'labels').numpy()
    keep = np.unique(lab) if classes is None else np.unique(np.asarray(list(classes), int))
    return {int(c): np.stack([s[lab == c], q[lab == c]]) for c in keep if (lab == c).any()}


def _mean_over_classes(errors: Sequence[float]) -> float:
    if not errors:
        raise ValueError('No class has both detections and ground truth: the localisation-aware '
                         'calibration error is undefined; evaluate on more images.')
    return float(np.mean(errors))


def laece(scores: Any, ious: Any, labels: Any, n_bins: int = 25,
          classes: Optional[Iterable[int]] = None) -> float:
    """Localisation-aware ECE, averaged over ``classes`` (those with ground truth; default: those
    detected), of the non-ignored detections' ``scores`` (N,), their match ``ious`` (0 for a false
    positive) and ``labels``, with ``n_bins`` equal-width bins per class.
    """
    if not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f'`n_bins` must be a positive int, got {n_bins!r}.')
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    errors = []
    for sq in _per_class(scores, ious, labels, classes).values():
        idx = np.clip(np.searchsorted(edges, sq[0], side='left') - 1, 0, n_bins - 1)
        count = np.bincount(idx, minlength=n_bins)
        gap = np.bincount(idx, weights=sq[1] - sq[0], minlength=n_bins)
        errors.append(np.abs(gap[count > 0]).sum() / sq.shape[1])
    return _mean_over_classes(errors)


def laace(scores: Any, ious: Any, labels: Any, classes: Optional[Iterable[int]] = None) -> float:
    """Localisation-aware ACE (one bin per detection); arguments as :func:`laece`."""
    per_class = _per_class(scores, ious, labels, classes).values()
    return _mean_over_classes([np.abs(sq[1] - sq[0]).mean() for sq in per_class])


def localisation_errors(images: Sequence[Dict[str, Any]], iou_thr: float = 0.0,
                        n_bins: int = 25) -> Dict[str, float]:
    """``laece`` and ``laace`` of a detector over images (dicts as for
    :func:`~mmkdcal.calibration.detection.match_detections_batch`), matched at ``iou_thr``.
    """
    parts, gt_classes = [], set()
    for n, img in enumerate(images):
        _, ignored, iou = match_image_dict(n, img, iou_thr)
        use = ~ignored.numpy()
        gt_labels = _labels(img['gt_labels'], len(img['gt_labels']), 'gt_labels').numpy()
        gt_ignore = (np.zeros(len(gt_labels), bool) if img.get('gt_ignore') is None
                     else np.asarray(img['gt_ignore'], bool))
        gt_classes.update(gt_labels[~gt_ignore].tolist())
        d = len(use)
        parts.append((np.asarray(img['det_scores'], np.float64).reshape(d)[use], iou.numpy()[use],
                      _labels(img['det_labels'], d, 'det_labels').numpy()[use]))
    if not parts or not sum(len(p[0]) for p in parts):
        raise ValueError('`images` hold no (non-ignored) detection: nothing to evaluate.')
    s, q, lab = (np.concatenate([p[i] for p in parts]) for i in range(3))
    return dict(laece=laece(s, q, lab, n_bins, gt_classes), laace=laace(s, q, lab, gt_classes))
