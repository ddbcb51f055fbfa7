"""One calibration pass over a model: collect (logits, targets), fit a temperature, report.

Shared by :class:`~mmkdcal.engine.hooks.TeacherCalibrationHook` (teacher of a distiller, before
training) and ``tools/calibrate.py`` (any trained detector or classifier).

What is collected (``fit_on``):

- ``'detections'`` (dense and two-stage detectors): the model's final detections (after NMS,
  above its ``test_cfg.score_thr``), each matched one-to-one to a ground-truth box of its class at
  ``iou_thr`` (greedy by score, like COCOeval). The logit is ``log(s / (1 - s))`` of the score
  ``s``; the target is "matched". This is the detection calibration of Kueppers et al. (D-ECE).
  For heads whose score is a sigmoid of the class logit (RetinaNet, GFL, ATSS without centerness
  fusion) the inverse is the class logit itself; for FCOS/ATSS the score also folds in
  centerness, so the fitted temperature is that of the fused score.
- ``'anchors'`` (dense heads): per-prior classification logits (M, K) against the labels of the
  model's own target assignment (K = background), read from the head's classification loss call;
  at most ``max_per_batch`` priors per batch are kept, chosen uniformly at random (seeded).
- ``'rois'`` (two-stage): the RoI head's (K+1)-way logits of its sampled proposals with their
  assigned labels, read the same way. These are the RoIs that RoI-level KD distils.
- ``'logits'`` (classifiers): image logits (B, K) against labels.
"""
import json
import os
import os.path as osp
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dist import all_gather_object, broadcast_object_list, get_rank
from mmengine.utils import ProgressBar

from .. import calibration as cal

__all__ = ['FIT_ON', 'calibration_report', 'collect_calibration_data', 'default_fit_on',
           'fit_and_report', 'format_report']

FIT_ON = ('detections', 'anchors', 'rois', 'logits')


def default_fit_on(model: torch.nn.Module) -> str:
    """``'logits'`` for classifiers, ``'rois'`` for two-stage and ``'detections'`` for dense."""
    if hasattr(model, 'roi_head') and getattr(model, 'with_rpn', False):
        return 'rois'
    if hasattr(model, 'bbox_head'):
        return 'detections'
    return 'logits'


def _cls_loss_module(model: torch.nn.Module, fit_on: str) -> torch.nn.Module:
    if fit_on == 'anchors':
        head = getattr(model, 'bbox_head', None)
    else:
        head = getattr(getattr(model, 'roi_head', None), 'bbox_head', None)
    if head is None or not hasattr(head, 'loss_cls'):
        raise ValueError(f"fit_on='{fit_on}' needs a model with "
                         f"{'bbox_head' if fit_on == 'anchors' else 'roi_head.bbox_head'}"
                         f'.loss_cls; {type(model).__name__} has none. Use '
                         f"fit_on='{default_fit_on(model)}'.")
    return head.loss_cls


@contextmanager
def _capture_cls_loss(loss_module: torch.nn.Module, store: List[Dict[str, torch.Tensor]]
                      ) -> Iterator[None]:
    """Record the (logits, labels, weights) that a head passes to its classification loss."""
    original = loss_module.forward

    def forward(cls_score, target, weight=None, *args, **kwargs):
        labels = target[0] if isinstance(target, (tuple, list)) else target
        logits = cls_score.detach().reshape(labels.numel(), -1)
        labels = labels.detach().reshape(-1)
        keep = torch.ones_like(labels, dtype=torch.bool)
        if isinstance(weight, torch.Tensor) and weight.numel() == labels.numel():
            keep = weight.reshape(-1) > 0
        store.append(dict(logits=logits[keep].float().cpu(), labels=labels[keep].cpu()))
        return original(cls_score, target, weight, *args, **kwargs)

    loss_module.forward = forward
    try:
        yield
    finally:
        del loss_module.forward


def _collect_batch(model, data, fit_on, score_thr, iou_thr, max_per_batch, generator):
    inputs, samples = data['inputs'], data['data_samples']
    if fit_on == 'logits':
        logits = model(inputs, samples, mode='tensor')
        labels = torch.stack([torch.as_tensor(s.gt_label).reshape(()) for s in samples])
        return dict(logits=logits.float().cpu(), labels=labels.long().cpu())
    if fit_on == 'detections':
        results = model.predict(inputs, samples, rescale=False)
        out = dict(logits=[], matched=[], boxes=[], sizes=[])
        for res in results:
            pred, gt = res.pred_instances, res.gt_instances
            keep = pred.scores >= score_thr
            scores, labels, boxes = pred.scores[keep], pred.labels[keep], pred.bboxes[keep]
            gt_boxes, gt_labels = gt.bboxes, gt.labels
            gt_ignore = torch.zeros(len(gt_labels), dtype=torch.bool, device=gt_labels.device)
            ignore = res.get('ignored_instances', None)
            if ignore is not None and len(ignore) > 0:  # crowd boxes: matching one is neutral
                gt_boxes = torch.cat([gt_boxes, ignore.bboxes])
                gt_labels = torch.cat([gt_labels, ignore.labels])
                gt_ignore = torch.cat([gt_ignore, gt_ignore.new_ones(len(ignore))])
            matched, ignored = cal.match_detections(
                boxes, scores, labels, gt_boxes, gt_labels, iou_thr=iou_thr,
                gt_ignore=gt_ignore, return_ignored=True)
            keep_det = ~torch.as_tensor(ignored, dtype=torch.bool)
            scores, labels, boxes = scores[keep_det], labels[keep_det], boxes[keep_det]
            matched = torch.as_tensor(matched, dtype=torch.bool)[keep_det]
            out['logits'].append(torch.logit(scores.float(), eps=1e-6).cpu())
            out['matched'].append(matched.cpu())
            out['boxes'].append(boxes.float().cpu())
            h, w = res.metainfo['img_shape'][:2]
            out['sizes'].append(torch.tensor([[h, w]], dtype=torch.float32).expand(len(scores), 2))
        return {k: torch.cat(v) for k, v in out.items()}
    store: List[Dict[str, torch.Tensor]] = []
    with _capture_cls_loss(_cls_loss_module(model, fit_on), store):
        model.loss(inputs, samples)
    if not store:
        raise RuntimeError(f"fit_on='{fit_on}': the head's classification loss was not called.")
    logits = torch.cat([s['logits'] for s in store])
    labels = torch.cat([s['labels'] for s in store])
    if max_per_batch and len(labels) > max_per_batch:
        idx = torch.randperm(len(labels), generator=generator)[:max_per_batch]
        logits, labels = logits[idx], labels[idx]
    return dict(logits=logits, labels=labels)


def collect_calibration_data(model: torch.nn.Module,
                             dataloader,
                             fit_on: str,
                             data_preprocessor: Optional[torch.nn.Module] = None,
                             score_thr: float = 0.05,
                             iou_thr: float = 0.5,
                             max_per_batch: int = 4096,
                             seed: int = 0,
                             progress: bool = True) -> Dict[str, torch.Tensor]:
    """Run ``model`` once over ``dataloader`` and gather what ``fit_on`` needs from all ranks.

    Args:
        model: The model that is calibrated (a teacher, or any trained detector/classifier). It is
            run in eval mode under ``no_grad``; its mode is restored afterwards.
        dataloader: A built dataloader (in DDP, each rank sees its shard).
        fit_on: One of :data:`FIT_ON`.
        data_preprocessor: Preprocessor for the batches (default: ``model.data_preprocessor``).
        score_thr: ``'detections'``: detections below this score are ignored.
        iou_thr: ``'detections'``: IoU at which a detection matches a ground-truth box.
        max_per_batch: ``'anchors'``/``'rois'``: keep at most this many samples per batch.
        seed: Seed of that subsampling.
        progress: Show a progress bar (rank 0).

    Returns:
        Concatenated tensors on CPU, identical on every rank: ``logits`` and ``labels``
        (``'anchors'``, ``'rois'``, ``'logits'``) or ``logits``, ``matched``, ``boxes`` and
        ``sizes`` (``'detections'``).
    """
    if fit_on not in FIT_ON:
        raise ValueError(f'fit_on must be one of {FIT_ON}, got {fit_on!r}.')
    if len(dataloader) == 0:
        raise ValueError('The calibration dataloader is empty: give the hook/tool a dataset with '
                         'images (the default is the val dataloader).')
    preprocess = data_preprocessor if data_preprocessor is not None else model.data_preprocessor
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(seed + get_rank())
    bar = ProgressBar(len(dataloader)) if progress and get_rank() == 0 else None
    parts: List[Dict[str, torch.Tensor]] = []
    try:
        with torch.no_grad():
            for data in dataloader:
                data = preprocess(data, False)
                parts.append(_collect_batch(model, data, fit_on, score_thr, iou_thr,
                                            max_per_batch, generator))
                if bar is not None:
                    bar.update()
    finally:
        model.train(was_training)
    if bar is not None:
        print()
    local = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
    gathered = all_gather_object(local)
    return {k: torch.cat([g[k] for g in gathered]) for k in local}


def calibration_report(data: Dict[str, torch.Tensor], fit_on: str, t: torch.Tensor,
                       n_bins: int, score_thr: Optional[float] = None) -> Dict[str, float]:
    """Calibration errors of collected data with its logits divided by ``t`` (no fitting).

    Args:
        data: Output of :func:`collect_calibration_data`.
        fit_on: How ``data`` was collected.
        t: Temperature (0-dim or per class).
        n_bins: Bins (per dimension for D-ECE).
        score_thr: ``'detections'`` only: keep detections whose *scaled* score is at least this
            (as ``DetectionCalibrationMetric`` does on a model's output); None keeps all.

    Returns:
        ``'detections'``: ``d_ece``, ``d_ece_box`` (confidence x relative box centre, as
        ``DetectionCalibrationMetric``), ``num_dets``; ``'anchors'``: ``top_label_ece``,
        ``classwise_ece``; ``'rois'``/``'logits'``: ``ece``, ``ace``.
    """
    z = data['logits'] / t
    if fit_on == 'detections':
        p, matched = z.sigmoid(), data['matched']
        boxes, sizes = data['boxes'], data['sizes']
        if score_thr is not None:
            keep = p >= score_thr
            p, matched, boxes, sizes = p[keep], matched[keep], boxes[keep], sizes[keep]
        if len(p) == 0:
            return dict(d_ece=float('nan'), d_ece_box=float('nan'), nll=float('nan'),
                        num_dets=0)
        zk = z if score_thr is None else z[keep]
        return dict(d_ece=cal.detection_ece(p, matched, n_bins=n_bins),
                    nll=float(F.binary_cross_entropy_with_logits(zk, matched.float())),
                    d_ece_box=cal.detection_ece(p, matched, boxes=boxes, image_sizes=sizes,
                                                n_bins=n_bins),
                    num_dets=int(len(p)))
    labels = data['labels']
    if fit_on == 'anchors':
        p = z.sigmoid()
        onehot = torch.zeros_like(p)
        fg = labels < p.shape[1]
        onehot[fg, labels[fg]] = 1.0
        top_p, top_k = p.max(dim=1)
        classwise = [cal.binary_ece(p[:, k], onehot[:, k], n_bins=n_bins)
                     for k in range(p.shape[1])]
        return dict(top_label_ece=cal.binary_ece(top_p, (top_k == labels).float(),
                                                 n_bins=n_bins),
                    classwise_ece=float(np.mean(classwise)),
                    nll=float(F.binary_cross_entropy_with_logits(z, onehot, reduction='sum')
                              / len(z)))
    p = z.softmax(dim=1)
    return dict(ece=cal.ece(p, labels, n_bins=n_bins), ace=cal.ace(p, labels, n_bins=n_bins),
                nll=float(F.cross_entropy(z, labels)))


def fit_and_report(data: Dict[str, torch.Tensor],
                   fit_on: str,
                   objective: str = 'nll',
                   per_class: bool = False,
                   n_bins: int = 15,
                   out_dir: Optional[str] = None,
                   prefix: str = 'teacher_calibration') -> Dict[str, Any]:
    """Fit a temperature on collected data; report calibration before and after.

    The fit runs on rank 0 and is broadcast, so every rank gets the identical temperature.

    Args:
        data: Output of :func:`collect_calibration_data`.
        fit_on: How ``data`` was collected.
        objective: ``'nll'``, ``'ece'`` or ``'ace'``
            (see :func:`mmkdcal.calibration.fit_temperature`).
        per_class: One temperature per class (not with ``'detections'``).
        n_bins: Bins of the reported metrics.
        out_dir: Where rank 0 writes ``<prefix>.json`` and ``<prefix>.png``; None: nowhere.
        prefix: File name stem.

    Returns:
        ``dict(temperature=list or float, fit_on, objective, num_samples, before={...},
        after={...})``.
    """
    n = len(data['logits'])
    if n == 0:
        raise ValueError(f"The calibration pass collected no samples (fit_on='{fit_on}'): "
                         'with detections, the model found nothing above score_thr; check the '
                         'calibration dataloader and the model checkpoint.')
    if not torch.isfinite(data['logits']).all():
        raise FloatingPointError('The calibrated model produced NaN/inf logits on the calibration '
                                 'set: check its checkpoint and the input normalisation.')
    if per_class and fit_on == 'detections':
        raise ValueError("per_class=True needs class logits: use fit_on='anchors' (dense heads), "
                         "'rois' or 'logits'.")
    result: List[Any] = [None]
    if get_rank() == 0:
        if fit_on == 'detections':
            t = cal.fit_temperature(data['logits'], data['matched'].float(), mode='sigmoid',
                                    objective=objective, n_bins=n_bins)
        else:
            mode = 'sigmoid' if fit_on == 'anchors' else 'softmax'
            t = cal.fit_temperature(data['logits'], data['labels'], mode=mode,
                                    objective=objective, per_class=per_class, n_bins=n_bins)
        t = torch.as_tensor(t, dtype=torch.float32).detach().cpu()
        result = [dict(temperature=t.tolist(), fit_on=fit_on, objective=objective,
                       num_samples=n,
                       before=calibration_report(data, fit_on, torch.ones(()), n_bins),
                       after=calibration_report(data, fit_on, t, n_bins))]
        if out_dir is not None:
            os.makedirs(out_dir, exist_ok=True)
            with open(osp.join(out_dir, f'{prefix}.json'), 'w') as f:
                json.dump(result[0], f, indent=2)
            if fit_on == 'detections':
                logits, targets, mode = data['logits'], data['matched'].float(), 'sigmoid'
            elif fit_on == 'anchors':
                # top-label view of a sigmoid head: max class probability vs "that class is right"
                logits, top_k = data['logits'].max(dim=1)
                targets, mode = (top_k == data['labels']).float(), 'sigmoid'
            else:
                logits, targets, mode = data['logits'], data['labels'], 'softmax'
            t_plot = t if t.dim() == 0 or fit_on != 'anchors' else t.mean()
            cal.reliability_diagram_before_after(
                logits, targets, t_plot, osp.join(out_dir, f'{prefix}.png'), mode=mode)
    broadcast_object_list(result)
    return result[0]


def format_report(report: Dict[str, Any]) -> str:
    """One log line: temperature and each metric before -> after."""
    t = report['temperature']
    t_str = f'{t:.4f}' if isinstance(t, float) else '[' + ', '.join(f'{v:.3f}' for v in t) + ']'
    parts = [f'{k} {report["before"][k]:.4f} -> {report["after"][k]:.4f}'
             for k in report['before'] if k != 'num_dets']
    return (f'temperature {t_str} (fit_on={report["fit_on"]}, objective={report["objective"]}, '
            f'{report["num_samples"]} samples): ' + ', '.join(parts))
