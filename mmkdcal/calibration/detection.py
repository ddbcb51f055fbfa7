"""Calibration of object detectors: detection-to-ground-truth matching and D-ECE.

A detection is matched (a true positive) when COCO-style greedy matching gives it a ground truth
of its class with IoU >= ``iou_thr``. D-ECE (Kueppers et al., CVPR-W 2020) bins detections over
confidence and optionally relative box features, as ``netcal.metrics.ECE(detection=True)``
(docs/calibration.md).
"""
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ._binning import equal_width_index_np
from ._inputs import as_tensor, binary_targets, check_n_bins, float_tensor

__all__ = [
    'box_iou', 'ground_truth_arrays', 'match_detections', 'match_detections_batch',
    'match_image_detections', 'relative_box_features', 'detection_ece', 'detection_ece_over_under'
]

#: Box features understood by :func:`relative_box_features` (all relative to the image size).
BOX_FEATURES = ('cx', 'cy', 'w', 'h')


def _boxes(x: Any, name: str) -> torch.Tensor:
    b = float_tensor(x, name, ndim=(1, 2), allow_empty=True).to(torch.float64)
    if b.dim() == 1 and b.numel() == 0:
        b = b.reshape(0, 4)
    if b.dim() != 2 or b.shape[1] != 4:
        raise ValueError(f'`{name}` must have shape (n, 4) in (x1, y1, x2, y2) format, got '
                         f'{tuple(b.shape)}.')
    if (b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any():
        raise ValueError(f'`{name}` must be in (x1, y1, x2, y2) format with x2 >= x1 and '
                         'y2 >= y1; convert (x, y, w, h) boxes first.')
    return b


def ground_truth_arrays(
        record: Mapping[str, Any]) -> Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The ground truth of one image: float64 boxes (G, 4), int64 labels, bool ignore flags.

    Reads mmdet's ``instances`` (dataset annotations), else ``gt_instances`` plus
    ``ignored_instances`` (packed samples; ignored boxes last); None when neither is there.
    """
    if 'instances' in record:
        inst = record['instances']
        boxes = np.asarray([a['bbox'] for a in inst], dtype=np.float64).reshape(-1, 4)
        labels = np.asarray([a['bbox_label'] for a in inst], dtype=np.int64).reshape(-1)
        ignore = np.asarray([bool(a.get('ignore_flag', 0)) for a in inst], dtype=bool)
        return boxes, labels, ignore
    parts = []
    for key, flag in (('gt_instances', False), ('ignored_instances', True)):
        inst = record.get(key)
        if inst is None or 'bboxes' not in inst:
            continue
        b = as_tensor(inst['bboxes'], f'{key}.bboxes').cpu().numpy()
        lab = as_tensor(inst['labels'], f'{key}.labels').cpu().numpy()
        parts.append((b.astype(np.float64).reshape(-1, 4), lab.astype(np.int64).reshape(-1),
                      np.full(len(lab.reshape(-1)), flag)))
    if not parts:
        return None
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))


def box_iou(boxes1: Any, boxes2: Any, mode: str = 'iou') -> torch.Tensor:
    """Pairwise IoU (M, G), float64 (0 where the union is 0), of (x1, y1, x2, y2) ``boxes1`` (M, 4)
    and ``boxes2`` (G, 4); ``mode='iof'``: intersection over the area of ``boxes1`` (crowd
    overlap).
    """
    if mode not in ('iou', 'iof'):
        raise ValueError(f"`mode` must be 'iou' or 'iof', got {mode!r}.")
    a, b = _boxes(boxes1, 'boxes1'), _boxes(boxes2, 'boxes2')
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    denom = area_a[:, None] + area_b[None, :] - inter if mode == 'iou' else area_a[:, None]
    denom = denom.expand_as(inter)
    out = torch.zeros_like(inter)
    pos = denom > 0
    out[pos] = inter[pos] / denom[pos]
    return out


def match_detections(det_boxes: Any, det_scores: Any, det_labels: Any, gt_boxes: Any,
                     gt_labels: Any, iou_thr: float = 0.5, gt_ignore: Optional[Any] = None,
                     return_ignored: bool = False,
                     return_iou: bool = False) -> Union[torch.Tensor, Tuple[torch.Tensor, ...]]:
    """Greedy one-to-one matching of one image's detections, as COCOeval does it.

    By descending score, each detection takes the unmatched, non-ignored ground truth of its class
    with the highest IoU (the last of equal ones) if it is >= ``iou_thr``. An unmatched detection
    overlapping an ignored (crowd) one of its class by ``|det & gt| / |det| >= iou_thr`` is ignored.

    Args:
        det_boxes, det_scores, det_labels: Detections (D, 4) as (x1, y1, x2, y2), (D,), (D,).
        gt_boxes, gt_labels: Ground truth (G, 4), (G,).
        iou_thr: IoU threshold of a match.
        gt_ignore: Optional bool flags (G,) of ignored (crowd) ground truths.
        return_ignored, return_iou: Also return the ignored mask / each match's IoU (0 unmatched).

    Returns:
        bool ``matched`` (D,), then ``ignored`` and the IoUs when asked.
    """
    if not 0 <= iou_thr <= 1:
        raise ValueError(f'`iou_thr` must be in [0, 1], got {iou_thr!r}.')
    db = _boxes(det_boxes, 'det_boxes').cpu()  # the greedy pass runs on the CPU
    gb = _boxes(gt_boxes, 'gt_boxes').cpu()
    d, g = db.shape[0], gb.shape[0]
    ds = float_tensor(det_scores, 'det_scores', ndim=(1,), allow_empty=True).cpu()
    if ds.shape[0] != d:
        raise ValueError(f'`det_scores` must have shape ({d},) like `det_boxes`, '
                         f'got {tuple(ds.shape)}.')
    dl = _labels(det_labels, d, 'det_labels')
    gl = _labels(gt_labels, g, 'gt_labels')
    if gt_ignore is None:
        gi = torch.zeros(g, dtype=torch.bool)
    else:
        gi_t = as_tensor(gt_ignore, 'gt_ignore')
        if tuple(gi_t.shape) != (g,):
            raise ValueError(f'`gt_ignore` must hold one bool flag per ground-truth box, shape '
                             f'({g},), got {tuple(gi_t.shape)}; append ignored (crowd) boxes to '
                             '`gt_boxes`/`gt_labels` and flag them True here.')
        gi = binary_targets(gi_t, (g,), 'gt_ignore').bool().cpu()
    matched = np.zeros(d, dtype=bool)
    ignored = np.zeros(d, dtype=bool)
    match_iou = np.zeros(d, dtype=np.float64)
    if d and g:
        same = (dl[:, None] == gl[None, :]).numpy()
        gi_np = gi.cpu().numpy()
        iou = box_iou(db, gb).numpy()
        iou[~same | gi_np[None, :]] = -1.0
        order = np.argsort(-ds.cpu().numpy().astype(np.float64), kind='stable')
        candidate = (iou >= iou_thr).any(axis=1)
        taken = np.zeros(g, dtype=bool)
        for i in order[candidate[order]]:
            row = np.where(taken, -1.0, iou[i])
            j = g - 1 - int(row[::-1].argmax())  # the last of equal IoUs, as COCOeval
            if row[j] >= iou_thr:
                matched[i] = True
                taken[j] = True
                match_iou[i] = row[j]
        if gi_np.any():
            iof = box_iou(db, gb[gi], mode='iof').numpy()
            iof[~same[:, gi_np]] = -1.0
            ignored = ~matched & (iof >= iou_thr).any(axis=1)
    out = (torch.from_numpy(matched),)
    if return_ignored:
        out += (torch.from_numpy(ignored),)
    if return_iou:
        out += (torch.from_numpy(match_iou),)
    return out if len(out) > 1 else out[0]


def _labels(x: Any, n: int, name: str) -> torch.Tensor:
    t = as_tensor(x, name)
    if t.numel() == 0:
        t = t.reshape(0).long()
    if t.is_floating_point() or t.dtype == torch.bool:
        raise TypeError(f'`{name}` must hold integer class indices, got dtype {t.dtype}.')
    if t.dim() != 1 or t.shape[0] != n:
        raise ValueError(f'`{name}` must have shape ({n},) to match the boxes, got '
                         f'{tuple(t.shape)}.')
    if n and t.min() < 0:
        raise ValueError(f'`{name}` must be non-negative class indices, got {t.min().item()}.')
    return t.long().cpu()


#: The keys of one image's dict in :func:`match_detections_batch` (optional: ``gt_ignore``).
IMAGE_KEYS = ('det_boxes', 'det_scores', 'det_labels', 'gt_boxes', 'gt_labels')


def match_image_dict(n: int, img: Dict[str, Any], iou_thr: float) -> Tuple[torch.Tensor, ...]:
    """:func:`match_detections` of ``images[n]``: ``(matched, ignored, ious)``."""
    if not isinstance(img, dict):
        raise TypeError(f'`images[{n}]` must be a dict with keys {IMAGE_KEYS}, '
                        f'got {type(img).__name__}.')
    missing = [k for k in IMAGE_KEYS if k not in img]
    if missing:
        raise ValueError(f'`images[{n}]` lacks the key(s) {missing}; each image needs '
                         f'{IMAGE_KEYS}.')
    return match_detections(*(img[k] for k in IMAGE_KEYS), iou_thr=iou_thr,
                            gt_ignore=img.get('gt_ignore'), return_ignored=True, return_iou=True)


def match_detections_batch(images: Sequence[Dict[str, Any]], iou_thr: float = 0.5,
                           return_ignored: bool = False
                           ) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
    """:func:`match_detections` over ``images`` (dicts with ``det_boxes``, ``det_scores``,
    ``det_labels``, ``gt_boxes``, ``gt_labels``, optional ``gt_ignore``), concatenated in order.
    """
    matched: List[torch.Tensor] = []
    ignored: List[torch.Tensor] = []
    for n, img in enumerate(images):
        m, ig, _ = match_image_dict(n, img, iou_thr)
        matched.append(m)
        ignored.append(ig)
    if not matched:
        raise ValueError('`images` is empty: pass at least one image.')
    if return_ignored:
        return torch.cat(matched), torch.cat(ignored)
    return torch.cat(matched)


def match_image_detections(det_boxes: Any, det_scores: Any, det_labels: Any, gt_boxes: Any,
                           gt_labels: Any, gt_ignore: Optional[Any], image_size: Sequence[float],
                           iou_thr: float = 0.5,
                           box_features: Sequence[str] = ('cx', 'cy')) -> Dict[str, np.ndarray]:
    """Everything D-ECE needs from one image (the calibration pass and the metric share it):
    matches (crowd rule included), drops the ignored detections, computes relative box features.

    Args: as :func:`match_detections`, plus ``image_size`` ``(H, W)`` (mmdet's ``ori_shape``) and
        ``box_features`` (subset of cx, cy, w, h).

    Returns:
        dict: ``scores``, ``matched``, ``features``, ``ious``, ``labels`` of the kept detections;
        ``num_gt`` and ``gt_labels`` of the non-ignored ground truth.
    """
    matched, ignored, ious = match_detections(det_boxes, det_scores, det_labels, gt_boxes,
                                              gt_labels, iou_thr=iou_thr, gt_ignore=gt_ignore,
                                              return_ignored=True, return_iou=True)
    use = ~ignored.numpy()
    scores = _np_floats(det_scores, 'det_scores', (1,)) if len(use) else np.zeros(0)
    scores = scores.astype(np.float32)[use]
    boxes = _boxes(det_boxes, 'det_boxes')[torch.from_numpy(use)]
    h, w = (float(v) for v in image_size[:2])
    feats = (relative_box_features(boxes, (h, w), box_features).numpy() if len(boxes)
             else np.zeros((0, len(box_features))))
    gts = _labels(gt_labels, as_tensor(gt_labels, 'gt_labels').numel(), 'gt_labels').numpy()
    if gt_ignore is not None:  # validated by match_detections
        gts = gts[~as_tensor(gt_ignore, 'gt_ignore').bool().numpy()]
    labels = _labels(det_labels, len(use), 'det_labels').numpy()[use]
    return dict(scores=scores, matched=matched.numpy()[use], features=feats, num_gt=len(gts),
                ious=ious.numpy()[use], labels=labels, gt_labels=gts)


def relative_box_features(boxes: Any,
                          image_sizes: Any,
                          features: Sequence[str] = ('cx', 'cy')) -> torch.Tensor:
    """Box centre/size relative to the image (``cx = (x1 + x2) / 2W``, ``w = (x2 - x1) / W``...),
    float64 (N, len(features)), of pixel ``boxes`` (N, 4) with ``image_sizes`` ``(H, W)`` or (N, 2);
    ``features`` a subset of ``('cx', 'cy', 'w', 'h')`` in column order.
    """
    b = _boxes(boxes, 'boxes')
    feats = list(features)
    if not feats or any(f not in BOX_FEATURES for f in feats) or len(set(feats)) != len(feats):
        raise ValueError(f'`features` must be distinct names from {BOX_FEATURES}, '
                         f'got {features!r}.')
    s = float_tensor(image_sizes, 'image_sizes', ndim=(1, 2)).to(torch.float64).to(b.device)
    if s.dim() == 1:
        if s.shape[0] != 2:
            raise ValueError(f'`image_sizes` must be one (H, W) pair or an (N, 2) array, got '
                             f'shape {tuple(s.shape)}.')
        s = s.expand(b.shape[0], 2)
    if s.shape != (b.shape[0], 2):
        raise ValueError(f'`image_sizes` must have shape ({b.shape[0]}, 2) (H, W per box), got '
                         f'{tuple(s.shape)}.')
    if (s <= 0).any():
        raise ValueError('`image_sizes` must be positive (H, W) pairs.')
    h, w = s[:, 0], s[:, 1]
    cols = {
        'cx': (b[:, 0] + b[:, 2]) / 2 / w,
        'cy': (b[:, 1] + b[:, 3]) / 2 / h,
        'w': (b[:, 2] - b[:, 0]) / w,
        'h': (b[:, 3] - b[:, 1]) / h,
    }
    return torch.stack([cols[f] for f in feats], dim=1)


def _detection_columns(scores: Any, matched: Any, boxes: Optional[Any],
                       image_sizes: Optional[Any], box_features: Sequence[str],
                       features: Optional[Any]) -> Tuple[List[np.ndarray], np.ndarray]:
    """Check the inputs of :func:`detection_ece`; return its binned columns and the outcomes."""
    s = _np_floats(scores, 'scores', (1,))
    lo, hi = s.min(), s.max()  # NaN propagates into both
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError('`scores` contains NaN or inf values: remove or fix those detections.')
    if lo < 0 or hi > 1:
        raise ValueError('`scores` must be confidences in [0, 1]; apply sigmoid/softmax first.')
    n = s.shape[0]
    hit = binary_targets(matched, (n, ), 'matched').cpu().numpy()
    if boxes is not None and features is not None:
        raise ValueError('Pass either `boxes` (with `image_sizes`) or `features`, not both.')
    cols = [s]
    if boxes is not None:
        if image_sizes is None:
            raise ValueError('`image_sizes` is required with `boxes` (pixel x1, y1, x2, y2) to '
                             'make the box features relative: pass (H, W) or one (H, W) per box; '
                             'pass already relative features as `features=` instead.')
        f = relative_box_features(boxes, image_sizes, box_features).cpu().numpy()
        if f.shape[0] != n:
            raise ValueError(f'`boxes` must have {n} rows like `scores`, got {f.shape[0]}.')
        cols += list(f.T)
    elif features is not None:
        f = _np_floats(features, 'features', (1, 2))
        f = f[:, None] if f.ndim == 1 else f
        if f.shape[0] != n:
            raise ValueError(f'`features` must have {n} rows like `scores`, got {f.shape[0]}.')
        if not np.isfinite(f.min()) or not np.isfinite(f.max()):
            raise ValueError('`features` contains NaN or inf values.')
        cols += list(f.T)
    if len(cols) > 1:
        # netcal stacks all columns into one array: one dtype, hence one clipping eps
        dtype = np.result_type(*cols)
        cols = [c.astype(dtype, copy=False) for c in cols]
    return cols, hit


def detection_ece(scores: Any, matched: Any, boxes: Optional[Any] = None,
                  image_sizes: Optional[Any] = None, n_bins: Union[int, Sequence[int]] = 10,
                  box_features: Sequence[str] = ('cx', 'cy'),
                  features: Optional[Any] = None) -> float:
    """D-ECE, binned over confidence and optionally relative box features (netcal's definition).

    Args:
        scores, matched: Confidences in [0, 1] (N,) and 0/1 true-positive flags (N,).
        boxes, image_sizes: Optional pixel boxes (N, 4) and ``(H, W)`` or (N, 2), binned by
            ``box_features`` (relative position/size).
        n_bins: Bins per dimension: one int, or one per column (confidence first).
        features: Precomputed extra columns (N, F) in [0, 1] instead of ``boxes``.
    """
    s_conf, s_hit, n = _joint_bin_sums(
        *_detection_columns(scores, matched, boxes, image_sizes, box_features, features), n_bins)
    return float(np.abs(s_hit - s_conf).sum() / n)


def detection_ece_over_under(scores: Any, matched: Any, boxes: Optional[Any] = None,
                             image_sizes: Optional[Any] = None,
                             n_bins: Union[int, Sequence[int]] = 10,
                             box_features: Sequence[str] = ('cx', 'cy'),
                             features: Optional[Any] = None) -> Tuple[float, float]:
    """D-ECE split into its over- and under-confident bins, ``(dece_over, dece_under)``; arguments
    as :func:`detection_ece`.
    """
    s_conf, s_hit, n = _joint_bin_sums(
        *_detection_columns(scores, matched, boxes, image_sizes, box_features, features), n_bins)
    gap = (s_conf - s_hit) / n
    return float(np.clip(gap, 0, None).sum()), float(np.clip(-gap, 0, None).sum())


def _np_floats(x: Any, name: str, ndim: Tuple[int, ...]) -> np.ndarray:
    """:func:`float_tensor` of ``x`` (NaN/inf allowed) as a numpy array; integers as float64."""
    t = as_tensor(x, name)
    if not (t.is_floating_point() or t.dtype == torch.bool):
        t = t.double()
    return float_tensor(t, name, ndim=ndim, finite=False).cpu().numpy()


def _joint_bin_sums(cols: List[np.ndarray], hit: np.ndarray,
                    n_bins: Union[int, Sequence[int]]) -> Tuple[np.ndarray, np.ndarray, int]:
    """Per-bin sums ``(clipped confidence, outcomes, N)`` of the joint equal-width binning of
    ``cols`` (confidence first); numpy on purpose (single-threaded, steady on a busy machine).
    """
    f, n = len(cols), cols[0].shape[0]
    if isinstance(n_bins, (list, tuple)):
        if len(n_bins) != f:
            raise ValueError(f'`n_bins` has {len(n_bins)} entries but there are {f} binned '
                             'dimensions (confidence + box features): give one per dimension '
                             'or a single int.')
        bins = [check_n_bins(b) for b in n_bins]
    else:
        bins = [check_n_bins(n_bins)] * f
    size = int(np.prod(bins))
    if size >= 2**53:
        raise ValueError(f'`n_bins` {bins} make {size} joint bins; use fewer bins per dimension.')
    eps = np.finfo(cols[0].dtype).eps
    conf = np.clip(cols[0], eps, 1 - eps)  # netcal clips to [eps, 1 - eps] in the stacked dtype
    flat = None
    for j, (c, b) in enumerate(zip(cols, bins)):
        # clipping a feature only moves values < eps or > 1 - eps into the edge bins, which the
        # index clip below does as well; so only the confidence (whose mean counts) is clipped
        edges = np.linspace(0.0, 1.0, b + 1)  # netcal's edges
        idx = equal_width_index_np(conf if j == 0 else np.ascontiguousarray(c), edges, b)
        np.clip(idx, 0, b - 1, out=idx)
        if flat is None:
            flat = idx
        else:
            flat *= b  # exact integers in float64
            flat += idx
    flat = flat.astype(np.int64)
    if size > 4 * n + 1024:  # sparse joint grid: compact the occupied bins first
        _, flat = np.unique(flat, return_inverse=True)
        size = int(flat.max()) + 1
    s_conf = np.bincount(flat, weights=conf, minlength=size)
    s_hit = np.bincount(flat, weights=hit, minlength=size)
    return s_conf, s_hit, n
