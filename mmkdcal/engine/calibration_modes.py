"""The calibration modes (``fit_on``), one record each, and their registry.

A :class:`CalibrationMode` holds what the pass does with one kind of output; a new mode is one
record given to :func:`register_calibration_mode`. Ground truth comes from the dataset's
annotations (original coordinates), mapped into the input frame with the batch's own
``scale_factor`` and ``flip`` where needed; each image counts once, keyed by its sample index,
and random choices are seeded per image (docs/distillation_protocol.md).
"""
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox_flip, scale_boxes

from .. import calibration as cal
from ..models.distillers.head_semantics import (DENSE_HEADS, cls_channels, dense_head_semantics,
                                                score_logits)
from ..models.distillers.roi_head_stages import roi_stage
from .calibration_annotations import check_calibration_annotations, dropped_note

__all__ = ['CALIBRATION_MODES', 'CalibrationContext', 'CalibrationMode', 'GroundTruthIndex',
           'calibration_mode_names', 'default_fit_on', 'get_calibration_mode',
           'register_calibration_mode']

#: One image's contribution: (key, {name: tensor}).
ImageRecord = Tuple[Tuple[str, Any], Dict[str, Tensor]]


@dataclass(frozen=True)
class CalibrationMode:
    """Everything the calibration pass does for one ``fit_on`` mode.

    Args:
        name, description: The ``fit_on`` value; half a sentence for logs and docs.
        supports: ``model -> None`` if the mode applies, else the reason.
        collect: ``(model, data, ctx) -> [ImageRecord]`` for one preprocessed batch.
        fit_kind: ``'sigmoid'`` or ``'softmax'``.
        fit_data, iou_data: ``data -> (logits, targets)`` for ``target='tp'`` / ``'iou'`` (None:
            ``'tp'`` only).
        report: ``(data, t, n_bins, score_thr) -> {metric: value}`` after calibrator ``t``.
        plot_view: ``data -> (logits, targets, kind)`` for the reliability diagram.
        per_class: Whether one temperature per class can be fitted.
        needs_ground_truth: Whether it reads the dataset's boxes.
        default_rank: Preference of :func:`default_fit_on` (0: never a default).
        sample_classes: ``data -> classes (N,)`` when the logits are one score per sample.
        selection: The report metric ``calibrator='auto'`` minimises, per target.
    """

    name: str
    description: str
    supports: Callable[[torch.nn.Module], Optional[str]]
    collect: Callable[..., List[ImageRecord]]
    fit_kind: str
    fit_data: Callable[[Dict[str, Tensor]], Tuple[Tensor, Tensor]]
    report: Callable[..., Dict[str, float]]
    plot_view: Callable[[Dict[str, Tensor]], Tuple[Tensor, Tensor, str]]
    per_class: bool = False
    needs_ground_truth: bool = True
    default_rank: int = 0
    iou_data: Optional[Callable[[Dict[str, Tensor]], Tuple[Tensor, Tensor]]] = None
    sample_classes: Optional[Callable[[Dict[str, Tensor]], Tensor]] = None
    selection: Dict[str, str] = field(default_factory=lambda: {'tp': 'nll'})


@dataclass
class CalibrationContext:
    """What ``collect`` functions need besides the model and the batch."""

    score_thr: float = 0.05
    iou_thr: float = 0.5
    max_per_image: int = 1024
    seed: int = 0
    box_features: Tuple[str, ...] = ('cx', 'cy')
    ground_truth: Optional['GroundTruthIndex'] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    def generator(self, key: Any) -> torch.Generator:
        """A generator seeded by the pass seed and the image key (same on every rank)."""
        return torch.Generator().manual_seed(self.seed * 1_000_003 + key_hash(key))


#: Metainfo fields that identify an image, in order of preference.
KEY_FIELDS = ('sample_idx', 'img_id', 'img_path')


def key_hash(key: Tuple[str, Any]) -> int:
    """A stable non-negative integer for an image key."""
    return zlib.crc32(repr(key).encode())


def image_key(sample) -> Tuple[str, Any]:
    """The identity of a data sample: ``('sample_idx', i)``, else ``('img_id', id)``, else
    ``('img_path', path)`` (named, so that an index and an id never collide)."""
    meta = sample.metainfo if hasattr(sample, 'metainfo') else sample
    for name in KEY_FIELDS:
        if name in meta:
            value = meta[name]
            return name, int(value) if isinstance(value, (int, np.integer)) else str(value)
    raise ValueError(
        'A calibration data sample has no sample_idx, img_id or img_path in its metainfo, so '
        "its ground truth cannot be found: keep 'img_id' in the pipeline's PackDetInputs "
        'meta_keys.')


class GroundTruthIndex:
    """Ground-truth boxes per image (original coordinates) from a detection dataset's
    ``get_data_info(i)`` (``instances`` and ``img_id``).
    """

    def __init__(self, dataset) -> None:
        self.by_key: Dict[Any, Tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        audit = check_calibration_annotations(dataset)  # warns or refuses on invalid boxes
        n_boxes = 0
        for i in range(len(dataset)):
            info = dataset.get_data_info(i)
            gt = cal.ground_truth_arrays(info)
            if gt is None:
                raise ValueError(
                    f'The calibration dataset ({type(dataset).__name__}) gives no `instances` '
                    'for its images, so there is no ground truth to calibrate against; use an '
                    'annotated split (a COCO-format ann_file with boxes).')
            n_boxes += int((~gt[2]).sum())
            self.by_key[('sample_idx', i)] = gt
            for name in KEY_FIELDS[1:]:
                if name in info:
                    value = info[name]
                    value = int(value) if isinstance(value, (int, np.integer)) else str(value)
                    self.by_key[(name, value)] = gt
        if n_boxes == 0:
            raise ValueError(
                f'There are no ground-truth boxes in the calibration split ({len(dataset)} '
                f'images, 0 boxes): calibrating needs annotated objects; check its ann_file.'
                f'{dropped_note(audit)}')

    def get(self, sample) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(boxes (G, 4), labels (G,), ignore (G,)) of one data sample, original coordinates."""
        key = image_key(sample)
        if key not in self.by_key:
            raise KeyError(f'The calibration dataset has no annotation for image {key!r}.')
        return self.by_key[key]

    def in_input_frame(self, sample) -> Tuple[Tensor, Tensor, Tensor]:
        """The sample's boxes mapped into the network's input frame (scale_factor, flip)."""
        boxes, labels, ignore = self.get(sample)
        meta = sample.metainfo
        b = scale_boxes(torch.as_tensor(boxes, dtype=torch.float32),
                        meta.get('scale_factor', (1.0, 1.0))[:2])
        if meta.get('flip', False):
            b = bbox_flip(b, meta['img_shape'][:2], meta.get('flip_direction', 'horizontal'))
        return b, torch.as_tensor(labels), torch.as_tensor(ignore)


def _supports_detector(model) -> Optional[str]:
    if hasattr(model, 'predict') and not hasattr(model, 'extract_logits'):
        return None
    return f'{type(model).__name__} is not a detector (predict() giving pred_instances)'


def _collect_detections(model, data, ctx: CalibrationContext) -> List[ImageRecord]:
    results = model.predict(data['inputs'], data['data_samples'], rescale=True)
    records = []
    for res in results:
        pred = res.pred_instances
        if not torch.isfinite(pred.scores).all():
            raise FloatingPointError(
                'The calibrated model produced NaN/inf detection scores: check its checkpoint '
                'and the input normalisation (data_preprocessor).')
        keep = pred.scores >= ctx.score_thr
        gt_boxes, gt_labels, gt_ignore = ctx.ground_truth.get(res)
        boxes = pred.bboxes[keep]
        # an untrained head can return x2 < x1: such a box has no area and matches nothing
        boxes = torch.cat([boxes[:, :2], torch.maximum(boxes[:, 2:], boxes[:, :2])], dim=1)
        m = cal.match_image_detections(
            boxes, pred.scores[keep], pred.labels[keep], gt_boxes, gt_labels,
            gt_ignore, image_size=res.metainfo['ori_shape'][:2], iou_thr=ctx.iou_thr,
            box_features=ctx.box_features)
        records.append((image_key(res), dict(
            logits=torch.logit(torch.as_tensor(m['scores'], dtype=torch.float32), eps=1e-6),
            matched=torch.as_tensor(m['matched']),
            features=torch.as_tensor(m['features'], dtype=torch.float32),
            iou=torch.as_tensor(m['ious'], dtype=torch.float32),
            labels=torch.as_tensor(m['labels'], dtype=torch.long),
            gt_labels=torch.as_tensor(m['gt_labels'], dtype=torch.long))))
    return records


def _report_detections(data, t, n_bins, score_thr=None) -> Dict[str, float]:
    z = data['logits'] / t
    matched, feats = data['matched'], data['features']
    if score_thr is not None:
        keep = z.sigmoid() >= score_thr
        z, matched, feats = z[keep], matched[keep], feats[keep]
    if len(z) == 0:
        nan = float('nan')
        return dict(dece=nan, dece_over=nan, dece_under=nan, dece_box=nan, nll=nan, num_dets=0)
    p = z.sigmoid()
    over, under = cal.detection_ece_over_under(p, matched, n_bins=n_bins)
    out = dict(dece=cal.detection_ece(p, matched, n_bins=n_bins), dece_over=over,
               dece_under=under,
               dece_box=cal.detection_ece(p, matched, features=feats, n_bins=n_bins),
               nll=float(F.binary_cross_entropy_with_logits(z, matched.float())),
               num_dets=int(len(z)))
    if 'iou' in data:  # LaECE / LaACE (25 bins, the authors' setting) over the classes with
        iou, labels = data['iou'], data['labels']  # ground truth in these images
        if score_thr is not None:
            iou, labels = iou[keep], labels[keep]
        classes = torch.unique(data['gt_labels']).tolist()
        try:
            out.update(laece=cal.laece(p, iou, labels, classes=classes),
                       laace=cal.laace(p, iou, labels, classes=classes))
        except ValueError:  # no class with both detections and ground truth
            out.update(laece=float('nan'), laace=float('nan'))
    return out


DETECTIONS = CalibrationMode(
    name='detections',
    description="final detections' scores vs matched to ground truth at iou_thr (D-ECE)",
    supports=_supports_detector,
    collect=_collect_detections,
    fit_kind='sigmoid',
    fit_data=lambda d: (d['logits'], d['matched'].float()),
    report=_report_detections,
    plot_view=lambda d: (d['logits'], d['matched'].float(), 'sigmoid'),
    default_rank=1,
    iou_data=lambda d: (d['logits'], d['iou']),
    sample_classes=lambda d: d.get('labels'),
    selection={'tp': 'dece', 'iou': 'laece'})


def _supports_anchors(model) -> Optional[str]:
    head = getattr(model, 'bbox_head', None)
    if head is None or hasattr(model, 'roi_head'):
        return f'{type(model).__name__} has no dense bbox_head'
    sem = DENSE_HEADS.get(type(head).__name__)
    if sem is None or sem.prior_targets is None:
        return (f'{type(head).__name__} declares no per-prior target function, so only '
                "fit_on='detections' is supported for it")
    return None


def _gt_batch(data, ctx, device: torch.device):
    """The batch's ground truth in the input frame on ``device``: (kept, ignored) InstanceData
    per image."""
    gts, ignores = [], []
    for sample in data['data_samples']:
        boxes, labels, ignore = ctx.ground_truth.in_input_frame(sample)
        gts.append(InstanceData(bboxes=boxes[~ignore], labels=labels[~ignore]).to(device))
        ignores.append(InstanceData(bboxes=boxes[ignore], labels=labels[ignore]).to(device))
    return gts, ignores


def _collect_anchors(model, data, ctx: CalibrationContext) -> List[ImageRecord]:
    head = model.bbox_head
    sem = dense_head_semantics(head)
    samples = data['data_samples']
    outs = head(model.extract_feat(data['inputs']))
    k = cls_channels(head)
    scores = score_logits(sem, outs, k)
    gts, ignores = _gt_batch(data, ctx, scores[0].device)
    metas = [s.metainfo for s in samples]
    labels, weights = sem.prior_targets(head, sem, outs, gts, metas, ignores)
    records = []
    for i, sample in enumerate(samples):
        z = torch.cat([s[i].permute(1, 2, 0).reshape(-1, k) for s in scores]).float().cpu()
        y = torch.cat([lab[i].reshape(-1) for lab in labels]).long().cpu()
        w = torch.cat([wt[i].reshape(-1) for wt in weights]).cpu()
        z, y = z[w > 0], y[w > 0]
        key = image_key(sample)
        if ctx.max_per_image and len(y) > ctx.max_per_image:
            idx = torch.randperm(len(y), generator=ctx.generator(key))[:ctx.max_per_image]
            z, y = z[idx], y[idx]
        records.append((key, dict(logits=z, labels=y)))
    return records


def _report_anchors(data, t, n_bins, score_thr=None) -> Dict[str, float]:
    z, labels = data['logits'] / t, data['labels']
    p = z.sigmoid()
    onehot = torch.zeros_like(p)
    fg = labels < p.shape[1]
    onehot[fg, labels[fg]] = 1.0
    top_p, top_k = p.max(dim=1)
    return dict(top_label_ece=cal.binary_ece(top_p, (top_k == labels).float(), n_bins=n_bins),
                classwise_ece=cal.classwise_ece(p, onehot, n_bins=n_bins),
                nll=float(F.binary_cross_entropy_with_logits(z, onehot, reduction='sum') / len(z)))


def _plot_anchors(data):
    # top-label view of a sigmoid head: max class probability vs "that class is right"
    logits, top_k = data['logits'].max(dim=1)
    return logits, (top_k == data['labels']).float(), 'sigmoid'


#: What the sigmoid class-logit modes (priors, queries) share: (M, K) logits vs labels (K: none).
SIGMOID_LOGITS = dict(fit_kind='sigmoid', fit_data=lambda d: (d['logits'], d['labels']),
                      report=_report_anchors, plot_view=_plot_anchors, per_class=True,
                      selection={'tp': 'classwise_ece'})

ANCHORS = CalibrationMode(
    name='anchors',
    description="per-prior score logits vs the head's own target assignment",
    supports=_supports_anchors,
    collect=_collect_anchors,
    **SIGMOID_LOGITS)


def _supports_rois(model) -> Optional[str]:
    roi_head = getattr(model, 'roi_head', None)
    if roi_head is None or not getattr(model, 'with_rpn', False):
        return f'{type(model).__name__} is not a two-stage detector with an RPN'
    if not hasattr(roi_head, 'bbox_assigner'):
        return (f'{type(roi_head).__name__} has no bbox assigner/sampler; use '
                "fit_on='detections'")
    if model.train_cfg is None or 'rcnn' not in model.train_cfg or 'rpn' not in model.train_cfg:
        return ("the model's config has no train_cfg.rpn and train_cfg.rcnn (the training path "
                "that samples the RoIs); use fit_on='detections' or add them")
    return None


class _FirstStageDone(Exception):
    """Ends the training path once the first RoI stage has classified its sampled RoIs."""


def _collect_rois(model, data, ctx: CalibrationContext) -> List[ImageRecord]:
    """Run the model's own ``loss()`` with the dataset's ground truth and record what the first
    RoI stage's ``loss_and_target`` receives (sampled RoI logits) and returns (their labels).
    """
    device = data['inputs'].device
    gts, ignores = _gt_batch(data, ctx, device)
    samples = [DetDataSample(metainfo=s.metainfo, gt_instances=g, ignored_instances=ig)
               for s, g, ig in zip(data['data_samples'], gts, ignores)]
    keys = iter([image_key(s) for s in samples])
    sampler = roi_stage(model.roi_head.bbox_sampler, 0)
    bbox_head = roi_stage(model.roi_head.bbox_head, 0)
    sample, loss_and_target = sampler.sample, bbox_head.loss_and_target
    calls = []

    def seeded_sample(*args, **kwargs):
        torch.manual_seed(ctx.seed * 1_000_003 + key_hash(next(keys)))
        return sample(*args, **kwargs)

    def record_and_stop(cls_score, bbox_pred, rois, sampling_results, *args, **kwargs):
        out = loss_and_target(cls_score, bbox_pred, rois, sampling_results, *args, **kwargs)
        calls.append((cls_score, sampling_results, out['bbox_targets'][0]))
        raise _FirstStageDone

    if 'sample' in vars(sampler) or 'loss_and_target' in vars(bbox_head):
        raise RuntimeError("The RoI head's first-stage sampler or bbox head is already wrapped.")
    sampler.sample, bbox_head.loss_and_target = seeded_sample, record_and_stop
    devices = [device] if device.type == 'cuda' else []
    try:
        with torch.random.fork_rng(devices=devices):
            model.loss(data['inputs'], samples)
    except _FirstStageDone:
        pass
    finally:
        del sampler.sample, bbox_head.loss_and_target
    if not calls:
        raise RuntimeError(f"{type(model.roi_head).__name__}.loss did not classify sampled RoIs "
                           "in its first stage; use fit_on='detections'.")
    cls_score, sampling_results, labels = calls[0]
    sizes = [len(r.priors) for r in sampling_results]
    return [(image_key(s), dict(logits=z.float().cpu(), labels=y.long().cpu()))
            for s, z, y in zip(samples, cls_score.split(sizes), labels.split(sizes))]


def _report_softmax(data, t, n_bins, score_thr=None) -> Dict[str, float]:
    z, labels = data['logits'] / t, data['labels']
    p = z.softmax(dim=1)
    over, under = cal.ece_over_under(p, labels, n_bins=n_bins)
    ace_over, ace_under = cal.ace_over_under(p, labels, n_bins=n_bins)
    return dict(ece=cal.ece(p, labels, n_bins=n_bins), ece_over=over, ece_under=under,
                ace=cal.ace(p, labels, n_bins=n_bins), ace_over=ace_over, ace_under=ace_under,
                nll=float(F.cross_entropy(z, labels)))


#: What the softmax modes (RoIs, image logits) share: fit, report and diagram on (K[+1])-way logits.
SOFTMAX_LOGITS = dict(fit_kind='softmax', fit_data=lambda d: (d['logits'], d['labels']),
                      report=_report_softmax,
                      plot_view=lambda d: (d['logits'], d['labels'], 'softmax'), per_class=True,
                      selection={'tp': 'ece'})

ROIS = CalibrationMode(
    name='rois',
    description=("RoI head softmax logits of its sampled proposals vs their assigned labels "
                 "(a cascade: its first stage, which samples the RPN proposals)"),
    supports=_supports_rois,
    collect=_collect_rois,
    default_rank=2,
    **SOFTMAX_LOGITS)


def _supports_queries(activation: str):
    other = {'sigmoid': 'queries_softmax', 'softmax': 'queries'}[activation]

    def supports(model) -> Optional[str]:
        head = getattr(model, 'bbox_head', None)
        if not hasattr(model, 'forward_transformer') or not hasattr(head, 'get_targets'):
            return f'{type(model).__name__} is not a DETR-family detector (no forward_transformer)'
        if getattr(head, 'assigner', None) is None:
            return (f'its {type(head).__name__} has no assigner (the model config has no '
                    "train_cfg.assigner); add it or use fit_on='detections'")
        own = 'sigmoid' if getattr(head.loss_cls, 'use_sigmoid', False) else 'softmax'
        if own != activation:
            return (f'{type(head).__name__} scores classes with {own}, this mode fits '
                    f"{activation} logits; use fit_on='{other}'")
        return None
    return supports


def _collect_queries(model, data, ctx: CalibrationContext) -> List[ImageRecord]:
    samples = data['data_samples']
    head = model.bbox_head
    head_inputs = model.forward_transformer(model.extract_feat(data['inputs']), samples)
    cls_scores, bbox_preds = head(**head_inputs)
    cls_scores, bbox_preds = cls_scores[-1], bbox_preds[-1]  # the layer predict() uses
    # ignored boxes are left out: their queries are background
    gts, _ = _gt_batch(data, ctx, cls_scores.device)
    labels = head.get_targets(list(cls_scores), list(bbox_preds), gts,
                              [s.metainfo for s in samples])[0]
    return [(image_key(s), dict(logits=cls_scores[i].float().cpu(),
                                labels=labels[i].long().cpu()))
            for i, s in enumerate(samples)]


QUERIES = CalibrationMode(
    name='queries',
    description=("DETR-family sigmoid class logits of every decoder query (final layer) vs the "
                 "head's own Hungarian assignment (unmatched: background)"),
    supports=_supports_queries('sigmoid'),
    collect=_collect_queries,
    **SIGMOID_LOGITS)

QUERIES_SOFTMAX = CalibrationMode(
    name='queries_softmax',
    description=("DETR's (K+1)-way softmax logits of every decoder query (final layer) vs the "
                 "head's own Hungarian assignment (unmatched: the no-object class)"),
    supports=_supports_queries('softmax'),
    collect=_collect_queries,
    **SOFTMAX_LOGITS)


def _supports_logits(model) -> Optional[str]:
    if hasattr(model, 'extract_logits'):
        return None
    return f'{type(model).__name__} is not an image classifier (no extract_logits)'


def _collect_logits(model, data, ctx: CalibrationContext) -> List[ImageRecord]:
    samples = data['data_samples']
    logits = model(data['inputs'], samples, mode='tensor').float().cpu()
    return [(image_key(s), dict(logits=logits[i:i + 1],
                                labels=torch.as_tensor(s.gt_label).reshape(1).long().cpu()))
            for i, s in enumerate(samples)]


LOGITS = CalibrationMode(
    name='logits',
    description='image logits vs labels',
    supports=_supports_logits,
    collect=_collect_logits,
    needs_ground_truth=False,
    default_rank=3,
    **SOFTMAX_LOGITS)

#: The registered modes by name.
CALIBRATION_MODES: Dict[str, CalibrationMode] = {}


def register_calibration_mode(mode: CalibrationMode, force: bool = False) -> None:
    """Make ``mode`` available as ``fit_on=mode.name`` (``force``: replace one of that name)."""
    if mode.name in CALIBRATION_MODES and not force:
        raise KeyError(f'calibration mode {mode.name!r} exists; pass force=True to replace it.')
    if mode.fit_kind not in ('sigmoid', 'softmax'):
        raise ValueError(f"{mode.name}: fit_kind must be 'sigmoid' or 'softmax'.")
    CALIBRATION_MODES[mode.name] = mode


for _mode in (DETECTIONS, ANCHORS, ROIS, QUERIES, QUERIES_SOFTMAX, LOGITS):
    register_calibration_mode(_mode)


def calibration_mode_names() -> Tuple[str, ...]:
    """The ``fit_on`` values registered now, in registration order."""
    return tuple(CALIBRATION_MODES)


def get_calibration_mode(fit_on: str, model: Optional[torch.nn.Module] = None,
                         per_class: bool = False) -> CalibrationMode:
    """The record of ``fit_on``; ValueError if unknown, without class logits for ``per_class``, or
    not applicable to ``model`` (naming the modes that are).
    """
    if fit_on not in CALIBRATION_MODES:
        raise ValueError(f'fit_on must be one of {list(CALIBRATION_MODES)}, got {fit_on!r}.')
    mode = CALIBRATION_MODES[fit_on]
    if per_class and not (mode.per_class or mode.sample_classes):
        modes = [m.name for m in CALIBRATION_MODES.values() if m.per_class or m.sample_classes]
        raise ValueError(f"A per-class calibrator needs class logits or each sample's class; "
                         f"fit_on='{fit_on}' has neither (use one of {modes}).")
    if model is not None:
        reason = mode.supports(model)
        if reason is not None:
            ok = [m.name for m in CALIBRATION_MODES.values() if m.supports(model) is None]
            raise ValueError(f"fit_on='{fit_on}' does not apply: {reason}. Modes that apply to "
                             f'{type(model).__name__}: {ok}.')
    return mode


def default_fit_on(model: torch.nn.Module) -> str:
    """The supporting mode of highest ``default_rank`` (``'logits'`` for classifiers, ``'rois'``
    for two-stage, ``'detections'`` for other detectors); ValueError if none applies.
    """
    ranked = [m for m in CALIBRATION_MODES.values()
              if m.default_rank > 0 and m.supports(model) is None]
    if not ranked:
        raise ValueError(f'No calibration mode applies to {type(model).__name__} by default; '
                         f'pass fit_on (registered: {list(CALIBRATION_MODES)}).')
    return max(ranked, key=lambda m: m.default_rank).name
