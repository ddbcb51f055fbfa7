"""Calibration of a detector as an MMEngine metric (D-ECE, Kueppers et al. 2020; LaECE, LaACE)."""
import logging
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement

from mmdet.registry import METRICS

from .. import calibration as cal
from ..calibration._inputs import as_tensor

__all__ = ['DetectionCalibrationMetric']


@METRICS.register_module()
class DetectionCalibrationMetric(BaseMetric):
    """Detection calibration error of the predicted boxes, usable next to ``CocoMetric``.

    Detections with ``score >= score_thr`` are matched to the sample's ground truth (original
    coordinates, :func:`mmkdcal.calibration.match_image_detections`). Keys: ``dece``, ``dece_box``
    (with relative box features), ``laece``, ``laace``, ``num_dets``, ``precision``, ``recall``.

    Args:
        score_thr, iou_thr: Score floor; IoU of a true positive.
        n_bins: Bins per dimension (int), or one per dimension for ``dece_box``.
        box_features: Relative box features of ``dece_box`` (subset of cx, cy, w, h).
        collect_device: ``'cpu'`` or ``'gpu'``.
        prefix: Key prefix; default ``'calib'``.
    """

    default_prefix: Optional[str] = 'calib'

    def __init__(self, score_thr: float = 0.3, iou_thr: float = 0.5,
                 n_bins: Union[int, Sequence[int]] = 10, box_features: Sequence[str] = ('cx', 'cy'),
                 collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not 0 <= score_thr < 1:
            raise ValueError(f'DetectionCalibrationMetric.score_thr must be in [0, 1), got '
                             f'{score_thr!r}.')
        if not 0 < iou_thr <= 1:
            raise ValueError(f'DetectionCalibrationMetric.iou_thr must be in (0, 1], got '
                             f'{iou_thr!r}.')
        box_features = tuple(box_features)
        if (not box_features or len(set(box_features)) != len(box_features)
                or any(f not in ('cx', 'cy', 'w', 'h') for f in box_features)):
            raise ValueError('DetectionCalibrationMetric.box_features must be distinct names '
                             f"from ('cx', 'cy', 'w', 'h'), got {box_features!r}.")
        bins = list(n_bins) if isinstance(n_bins, (list, tuple)) else [n_bins]
        if isinstance(n_bins, (list, tuple)) and len(bins) != 1 + len(box_features):
            raise ValueError(f'DetectionCalibrationMetric.n_bins has {len(bins)} entries; give '
                             f'one int or {1 + len(box_features)} (confidence + {box_features}).')
        if any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in bins):
            raise ValueError(f'DetectionCalibrationMetric.n_bins must be positive ints, got '
                             f'{n_bins!r}.')
        self.score_thr = float(score_thr)
        self.iou_thr = float(iou_thr)
        self.n_bins = n_bins
        self.box_features = box_features

    def process(self, data_batch: Any,
                data_samples: Sequence[Union[dict, BaseDataElement]]) -> None:
        """Match each image's detections; store its scores, matches and box features."""
        for i, sample in enumerate(data_samples):
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            if 'pred_instances' not in sample:
                raise ValueError(f'DetectionCalibrationMetric: data_samples[{i}] has no '
                                 '`pred_instances`; run the detector in mode="predict".')
            if 'ori_shape' not in sample:
                raise ValueError(f'DetectionCalibrationMetric: data_samples[{i}] has no '
                                 '`ori_shape`; keep it in PackDetInputs meta_keys.')
            pred = sample['pred_instances']
            scores = as_tensor(pred['scores'], 'scores').cpu().numpy().astype(np.float32)
            boxes = as_tensor(pred['bboxes'], 'bboxes').cpu().numpy().astype(np.float64)
            labels = as_tensor(pred['labels'], 'labels').cpu().numpy().astype(np.int64)
            scores, boxes, labels = scores.reshape(-1), boxes.reshape(-1, 4), labels.reshape(-1)
            keep = scores >= self.score_thr
            gt = cal.ground_truth_arrays(sample)
            if gt is None:
                raise ValueError(f'DetectionCalibrationMetric: data_samples[{i}] has no ground '
                                 'truth: it needs `instances` (add "instances" to PackDetInputs '
                                 'meta_keys) or `gt_instances` (keep LoadAnnotations in the test '
                                 'pipeline).')
            gt_boxes, gt_labels, gt_ignore = gt
            self.results.append(cal.match_image_detections(
                boxes[keep], scores[keep], labels[keep], gt_boxes, gt_labels, gt_ignore,
                image_size=sample['ori_shape'][:2], iou_thr=self.iou_thr,
                box_features=self.box_features))

    def compute_metrics(self, results: List[Dict[str, Any]]) -> Dict[str, float]:
        """The metrics of the class docstring over all gathered images."""
        if not results:
            raise ValueError('DetectionCalibrationMetric: no images were processed; the '
                             'evaluation dataloader is empty.')
        scores = np.concatenate([r['scores'] for r in results])
        matched = np.concatenate([r['matched'] for r in results])
        feats = np.concatenate([r['features'] for r in results])
        num_gt = sum(r['num_gt'] for r in results)
        n = int(scores.shape[0])
        recall = float(matched.sum() / num_gt) if num_gt else float('nan')
        if n == 0:
            print_log(f'DetectionCalibrationMetric: no detection has score >= {self.score_thr} '
                      'on the evaluation set; D-ECE is nan.', logger='current',
                      level=logging.WARNING)
            return dict(dece=float('nan'), dece_box=float('nan'), laece=float('nan'),
                        laace=float('nan'), num_dets=0, precision=float('nan'), recall=recall)
        conf_bins = self.n_bins[0] if isinstance(self.n_bins, (list, tuple)) else self.n_bins
        ious, labels = (np.concatenate([r[k] for r in results]) for k in ('ious', 'labels'))
        classes = np.unique(np.concatenate([r['gt_labels'] for r in results]))
        if len(classes):
            local = dict(laece=cal.laece(scores, ious, labels, classes=classes),
                         laace=cal.laace(scores, ious, labels, classes=classes))
        else:  # no ground truth: no class to average over
            local = dict(laece=float('nan'), laace=float('nan'))
        return dict(
            **local,
            dece=cal.detection_ece(scores, matched, n_bins=conf_bins),
            dece_box=cal.detection_ece(scores, matched, features=feats, n_bins=self.n_bins),
            num_dets=n,
            precision=float(matched.mean()),
            recall=recall)
