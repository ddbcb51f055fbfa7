"""Calibration of object detectors: detection-to-ground-truth matching and D-ECE.

A detection is *matched* (a true positive) when COCO-style greedy matching assigns it a ground
truth box of its class with IoU >= ``iou_thr``. The detection calibration error D-ECE
(Kueppers et al., "Multivariate Confidence Calibration for Object Detection", CVPR Workshops
2020) bins the detections jointly over their confidence and, optionally, their relative box
position/size, and compares the precision with the mean confidence in each bin:

    D-ECE = sum_{bins b} (n_b / N) |prec_b - conf_b|

exactly as ``netcal.metrics.ECE(bins, detection=True).measure(X, matched)`` computes it for
``X = [confidence, feature_1, ...]``: every column is clipped to ``[eps, 1 - eps]`` (``eps``
the machine epsilon of its dtype) and cut into equal-width bins ``[e_j, e_{j+1})`` of [0, 1].
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
    """The ground truth of one image: boxes (G, 4), labels (G,) and ignore flags (G,).

    Reads the two layouts of MMDetection (without importing it): ``instances``, the dataset's
    annotation list (dicts with ``bbox`` as x1, y1, x2, y2, ``bbox_label`` and an optional
    ``ignore_flag``, as ``get_data_info`` gives them and ``PackDetInputs`` can keep them), else
    ``gt_instances`` plus optional ``ignored_instances`` (``bboxes`` and ``labels``: tensors,
    arrays or box structures, as ``PackDetInputs`` packs them after ``LoadAnnotations``).

    Args:
        record: A data info dict, a data sample's ``to_dict()``, or anything with those keys.

    Returns:
        tuple or None: float64 boxes, int64 labels and bool ignore flags, the ignored boxes
        after the others for ``gt_instances``; None when the record has neither layout.
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
    """Pairwise IoU (or intersection over the area of ``boxes1``) of two box sets.

    ``IoU(a, b) = |a & b| / (|a| + |b| - |a & b|)``; ``mode='iof'`` gives ``|a & b| / |a|``,
    the overlap COCOeval uses for crowd (ignored) ground truths.

    Args:
        boxes1: Boxes (M, 4) as (x1, y1, x2, y2).
        boxes2: Boxes (G, 4) as (x1, y1, x2, y2).
        mode: ``'iou'`` or ``'iof'``.

    Returns:
        torch.Tensor: float64 matrix (M, G); 0 where a union/area is 0.
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


def match_detections(det_boxes: Any,
                     det_scores: Any,
                     det_labels: Any,
                     gt_boxes: Any,
                     gt_labels: Any,
                     iou_thr: float = 0.5,
                     gt_ignore: Optional[Any] = None,
                     return_ignored: bool = False,
                     return_iou: bool = False
                     ) -> Union[torch.Tensor, Tuple[torch.Tensor, ...]]:
    """Greedy one-to-one matching of the detections of one image, as COCOeval does it.

    Detections are visited by descending score (stable order for ties). Each takes, among the
    not yet matched non-ignored ground truths of its class, the one with the highest IoU (the
    last of equal ones, as COCOeval), if that IoU is >= ``iou_thr``; with ``iou_thr=0`` any
    ground truth of the class qualifies (LaECE's ``tau = 0``). A detection left unmatched whose
    overlap ``|det & gt| / |det|`` with an ignored (crowd) ground truth of its class is
    >= ``iou_thr`` is *ignored* (neither true nor false positive); ignored ground truths can
    absorb any number of detections (COCOeval's ``iscrowd`` rule).

    Args:
        det_boxes: Detection boxes (D, 4) as (x1, y1, x2, y2).
        det_scores: Detection scores (D,).
        det_labels: Detection class indices (D,).
        gt_boxes: Ground-truth boxes (G, 4) as (x1, y1, x2, y2).
        gt_labels: Ground-truth class indices (G,).
        iou_thr: IoU threshold of a match.
        gt_ignore: Optional bool flags (G,), True for ignored (crowd) ground truths.
        return_ignored: Also return the ignored-detection mask.
        return_iou: Also return each detection's IoU with its match (float64, 0 unmatched).

    Returns:
        torch.Tensor or tuple: bool ``matched`` (D,) in the input order; with
        ``return_ignored`` also bool ``ignored`` (D,) (never True where ``matched`` is); with
        ``return_iou`` then the IoUs (D,).
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


def match_detections_batch(
        images: Sequence[Dict[str, Any]],
        iou_thr: float = 0.5,
        return_ignored: bool = False) -> Union[torch.Tensor, Tuple[torch.Tensor, torch.Tensor]]:
    """Run :func:`match_detections` on many images and concatenate the results.

    Args:
        images: One dict per image with keys ``det_boxes``, ``det_scores``, ``det_labels``,
            ``gt_boxes``, ``gt_labels`` and optionally ``gt_ignore`` (see
            :func:`match_detections`).
        iou_thr: IoU threshold of a match.
        return_ignored: Also return the concatenated ignored-detection mask.

    Returns:
        torch.Tensor or tuple: bool ``matched`` over all detections, image after image in the
        given order (and ``ignored`` with ``return_ignored``).
    """
    keys = ('det_boxes', 'det_scores', 'det_labels', 'gt_boxes', 'gt_labels')
    matched: List[torch.Tensor] = []
    ignored: List[torch.Tensor] = []
    for n, img in enumerate(images):
        if not isinstance(img, dict):
            raise TypeError(f'`images[{n}]` must be a dict with keys {keys}, '
                            f'got {type(img).__name__}.')
        missing = [k for k in keys if k not in img]
        if missing:
            raise ValueError(f'`images[{n}]` lacks the key(s) {missing}; each image needs {keys}.')
        m, ig = match_detections(*(img[k] for k in keys), iou_thr=iou_thr,
                                 gt_ignore=img.get('gt_ignore'), return_ignored=True)
        matched.append(m)
        ignored.append(ig)
    if not matched:
        raise ValueError('`images` is empty: pass at least one image.')
    if return_ignored:
        return torch.cat(matched), torch.cat(ignored)
    return torch.cat(matched)


def match_image_detections(det_boxes: Any,
                           det_scores: Any,
                           det_labels: Any,
                           gt_boxes: Any,
                           gt_labels: Any,
                           gt_ignore: Optional[Any],
                           image_size: Sequence[float],
                           iou_thr: float = 0.5,
                           box_features: Sequence[str] = ('cx', 'cy')) -> Dict[str, np.ndarray]:
    """Everything D-ECE needs from one image: the one matching both the calibration pass and
    ``DetectionCalibrationMetric`` use.

    Matches the detections to the ground truth (:func:`match_detections`, crowd rule
    included), drops the ignored ones, and computes the relative box features of the rest.
    Detections and ground truth must be in the same coordinates as ``image_size`` (mmdet's
    ``ori_shape`` with predictions rescaled to the original image).

    Args:
        det_boxes, det_scores, det_labels: The image's detections (D, 4), (D,), (D,).
        gt_boxes, gt_labels: Its ground truth (G, 4), (G,).
        gt_ignore: Bool flags (G,) of ignored (crowd) ground truths, or None.
        image_size: ``(H, W)`` of the image.
        iou_thr: IoU of a match.
        box_features: Relative box features to compute (subset of cx, cy, w, h).

    Returns:
        dict: ``scores`` float32 (D',), ``matched`` bool (D',), ``features`` float64
        (D', len(box_features)), ``ious`` (the IoU of each match, 0 unmatched) and ``labels``
        of the D' non-ignored detections, in input order; ``num_gt`` and ``gt_labels``, the
        number and labels of the non-ignored ground truths.
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
    """Box position/size relative to the image, the extra D-ECE dimensions of Kueppers et al.

    ``cx = (x1 + x2) / 2 / W``, ``cy = (y1 + y2) / 2 / H``, ``w = (x2 - x1) / W``,
    ``h = (y2 - y1) / H``.

    Args:
        boxes: Boxes (N, 4) as (x1, y1, x2, y2) in pixels.
        image_sizes: ``(H, W)`` of one image shared by all boxes, or (N, 2) per box
            (the ``ori_shape`` order of MMDetection).
        features: Subset of ``('cx', 'cy', 'w', 'h')`` in the wanted column order.

    Returns:
        torch.Tensor: float64 (N, len(features)).
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


def detection_ece(scores: Any,
                  matched: Any,
                  boxes: Optional[Any] = None,
                  image_sizes: Optional[Any] = None,
                  n_bins: Union[int, Sequence[int]] = 10,
                  box_features: Sequence[str] = ('cx', 'cy'),
                  features: Optional[Any] = None) -> float:
    """Detection ECE (D-ECE), binned over confidence and optionally relative box features.

    Reproduces ``netcal.metrics.ECE(n_bins, detection=True).measure(X, matched)`` with
    ``X = [scores]`` (no boxes), ``X = [scores, relative_box_features(boxes, image_sizes,
    box_features)]`` or ``X = [scores, features]``: each column is clipped to [eps, 1 - eps],
    binned into equal-width bins of [0, 1], and
    ``D-ECE = sum_b (n_b / N) |mean(matched in b) - mean(score in b)|`` over the joint bins.

    Args:
        scores: Detection confidences in [0, 1], shape (N,).
        matched: 0/1 or bool, shape (N,): 1 for a true positive (see :func:`match_detections`).
        boxes: Optional boxes (N, 4) (x1, y1, x2, y2) in pixels, binned by position/size.
        image_sizes: ``(H, W)`` or (N, 2) image sizes; required with ``boxes``.
        n_bins: Bins per dimension: one int for all, or one per column of X (confidence first).
        box_features: Which relative box features to bin (subset of cx, cy, w, h).
        features: Precomputed extra columns (N, F) in [0, 1] instead of ``boxes``.

    Returns:
        float: D-ECE in [0, 1].
    """
    s_conf, s_hit, n = _joint_bin_sums(
        *_detection_columns(scores, matched, boxes, image_sizes, box_features, features), n_bins)
    return float(np.abs(s_hit - s_conf).sum() / n)


def detection_ece_over_under(scores: Any,
                             matched: Any,
                             boxes: Optional[Any] = None,
                             image_sizes: Optional[Any] = None,
                             n_bins: Union[int, Sequence[int]] = 10,
                             box_features: Sequence[str] = ('cx', 'cy'),
                             features: Optional[Any] = None) -> Tuple[float, float]:
    """Split the D-ECE into its over- and under-confidence parts.

    With the bins of :func:`detection_ece`, ``D-ECE_o = sum_{b: conf_b > prec_b} (n_b / N)
    (conf_b - prec_b)`` (``prec_b``: the fraction of matched detections in bin b) and ``D-ECE_u``
    the same over the bins with ``conf_b < prec_b``, so ``D-ECE_o + D-ECE_u = D-ECE``.

    Args:
        scores: Detection confidences in [0, 1], shape (N,).
        matched: 0/1 or bool, shape (N,).
        boxes: Optional boxes (N, 4), as in :func:`detection_ece`.
        image_sizes: ``(H, W)`` or (N, 2) image sizes; required with ``boxes``.
        n_bins: Bins per dimension.
        box_features: Which relative box features to bin.
        features: Precomputed extra columns (N, F) in [0, 1] instead of ``boxes``.

    Returns:
        tuple: ``(dece_over, dece_under)`` as floats.
    """
    s_conf, s_hit, n = _joint_bin_sums(
        *_detection_columns(scores, matched, boxes, image_sizes, box_features, features), n_bins)
    gap = (s_conf - s_hit) / n
    return float(np.clip(gap, 0, None).sum()), float(np.clip(-gap, 0, None).sum())


def _np_floats(x: Any, name: str, ndim: Tuple[int, ...]) -> np.ndarray:
    """Tensor/array/sequence -> non-empty floating numpy array of an allowed rank."""
    a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.floating)
                               or np.issubdtype(a.dtype, np.integer)):
        raise TypeError(f'`{name}` must hold real numbers, got dtype {a.dtype}.')
    if not np.issubdtype(a.dtype, np.floating) or a.dtype == np.float16:
        a = a.astype(np.float32 if a.dtype == np.float16 else np.float64)
    if a.ndim not in ndim:
        raise ValueError(f'`{name}` must have {" or ".join(map(str, ndim))} dimension(s), got '
                         f'shape {a.shape}.')
    if a.shape[0] == 0:
        raise ValueError(f'`{name}` is empty: at least one detection is needed.')
    return a


def _joint_bin_sums(cols: List[np.ndarray], hit: np.ndarray,
                    n_bins: Union[int, Sequence[int]]) -> Tuple[np.ndarray, np.ndarray, int]:
    """Per-bin sums of the joint equal-width binning of ``cols`` (``cols[0]``: the confidence).

    ``cols``: F columns (N,) of one floating dtype; ``hit``: float64 0/1 outcomes (N,); ``n_bins``:
    one int, or one per column. Returns ``(sum of clipped confidences, sum of outcomes, N)``, the
    sums float64 arrays over the occupied bins (and possibly some empty ones). NumPy on purpose:
    single-threaded SIMD kernels are as fast as torch's here and do not slow down on a busy
    machine the way multi-threaded element-wise ops can.
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
