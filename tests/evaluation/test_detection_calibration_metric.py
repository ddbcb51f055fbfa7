"""DetectionCalibrationMetric on hand-built mmdet data samples."""
import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import InstanceData

import mmkdcal  # noqa: F401  (registers the metrics)
from mmdet.registry import METRICS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmkdcal import calibration as cal


def _pred(boxes, scores, labels):
    return InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float32),
                        scores=torch.tensor(scores, dtype=torch.float32),
                        labels=torch.tensor(labels))


def _hand_samples():
    # image 1 (200 x 100): ground truth as raw `instances`
    s1 = dict(img_id=1, ori_shape=(100, 200),
              instances=[dict(bbox=[0, 0, 50, 50], bbox_label=0, ignore_flag=0),
                         dict(bbox=[100, 0, 150, 50], bbox_label=1, ignore_flag=0)],
              pred_instances=_pred([[0, 0, 50, 50], [2, 2, 50, 50], [100, 0, 150, 50],
                                    [0, 0, 50, 48]],
                                   [0.9, 0.8, 0.6, 0.2], [0, 0, 1, 0]))
    # image 2 (100 x 100): a DetDataSample with gt_instances + ignored_instances (crowd)
    s2 = DetDataSample(metainfo=dict(img_id=2, ori_shape=(100, 100)))
    s2.gt_instances = InstanceData(bboxes=HorizontalBoxes(torch.tensor([[10., 10., 40., 40.]])),
                                   labels=torch.tensor([0]))
    s2.ignored_instances = InstanceData(
        bboxes=HorizontalBoxes(torch.tensor([[50., 50., 100., 100.]])), labels=torch.tensor([0]))
    s2.pred_instances = _pred([[10, 10, 40, 40], [60, 60, 80, 80], [0, 60, 20, 80]],
                              [0.7, 0.5, 0.4], [0, 0, 0])
    return [s1, s2]


def test_hand_computed_values():
    metric = METRICS.build(dict(type='DetectionCalibrationMetric', score_thr=0.3, n_bins=2))
    metric.process(None, [_hand_samples()[0], _hand_samples()[1].to_dict()])
    out = metric.evaluate(2)
    # kept: 0.9 TP, 0.8 duplicate FP, 0.6 TP (class 1), [0.2 below thr]; 0.7 TP, [0.5 in crowd:
    # ignored], 0.4 FP. Bins [0, .5): {0.4: FP} -> 0.4; [.5, 1): acc 3/4 = conf mean 0.75 -> 0
    assert out['calib/num_dets'] == 5
    assert out['calib/precision'] == pytest.approx(3 / 5)
    assert out['calib/recall'] == pytest.approx(3 / 3)
    assert out['calib/dece'] == pytest.approx(0.4 / 5)
    # (conf, cx, cy) bins: cx of 0.9/0.8/0.6 = .125/.13/.625 (W=200), 0.7 -> .25, 0.4 -> .1;
    # cy all < .5 except 0.4 (cy .7). Bins: (hi, lo, lo) {.9 TP, .8 FP, .7 TP} ->
    # |2/3 - 0.8| * 3; (hi, hi, lo) {.6 TP} -> .4; (lo, lo, hi) {.4 FP} -> .4
    assert out['calib/dece_box'] == pytest.approx((abs(2 / 3 - 0.8) * 3 + 0.4 + 0.4) / 5)
    # LaECE (25 bins per class, target the IoU of the match): class 0 {.9: IoU 1, .8: FP, .7:
    # IoU 1, .4: FP}, each alone in its bin -> (.1 + .8 + .3 + .4) / 4; class 1 {.6: IoU 1} -> .4
    assert out['calib/laece'] == pytest.approx(0.4, abs=1e-6)
    assert out['calib/laace'] == pytest.approx(0.4, abs=1e-6)


def test_laece_and_laace_differ_where_one_bin_mixes_over_and_under_confidence():
    # 0.62 matches at IoU 0.5 (a half box), the duplicate 0.61 of the whole box is then a false
    # positive: both in the bin [0.60, 0.64). LaECE: |mean IoU - mean score| = |0.25 - 0.615|;
    # LaACE: the mean of |IoU - score| = (0.12 + 0.61) / 2.
    sample = dict(img_id=1, ori_shape=(100, 100),
                  instances=[dict(bbox=[0, 0, 50, 50], bbox_label=0, ignore_flag=0)],
                  pred_instances=_pred([[0, 0, 50, 25], [0, 0, 50, 50]], [0.62, 0.61], [0, 0]))
    metric = METRICS.build(dict(type='DetectionCalibrationMetric', score_thr=0.3))
    metric.process(None, [sample])
    out = metric.evaluate(1)
    assert out['calib/laece'] == pytest.approx(abs(0.25 - 0.615), abs=1e-6)
    assert out['calib/laace'] == pytest.approx((0.12 + 0.61) / 2, abs=1e-6)


def test_equals_functional_pipeline_on_random_images():
    rng = np.random.default_rng(0)
    samples, images, sizes, kept = [], [], [], []
    for i in range(12):
        h, w = int(rng.integers(200, 600)), int(rng.integers(200, 600))
        g = int(rng.integers(1, 6))
        gxy = rng.uniform(0, min(h, w) - 100, (g, 2))
        gt = np.concatenate([gxy, gxy + rng.uniform(20, 100, (g, 2))], 1)
        gl = rng.integers(0, 3, g)
        src = rng.integers(0, g, 8)
        det = gt[src] + rng.normal(0, 8, (8, 4))
        det[:, 2:] = np.maximum(det[:, 2:], det[:, :2] + 1)
        scores = rng.random(8).astype(np.float32)
        labels = gl[src]
        samples.append(dict(img_id=i, ori_shape=(h, w), pred_instances=_pred(det, scores, labels),
                            instances=[dict(bbox=b.tolist(), bbox_label=int(c), ignore_flag=0)
                                       for b, c in zip(gt, gl)]))
        keep = scores >= 0.3
        images.append(dict(det_boxes=det[keep], det_scores=scores[keep], det_labels=labels[keep],
                           gt_boxes=gt, gt_labels=gl))
        sizes.append(np.tile([h, w], (keep.sum(), 1)))
        kept.append((det[keep].astype(np.float32), scores[keep]))
    metric = METRICS.build(dict(type='DetectionCalibrationMetric', box_features=('cx', 'cy', 'w')))
    metric.process(None, samples)
    out = metric.evaluate(len(samples))
    matched = cal.match_detections_batch(images)
    scores = np.concatenate([k[1] for k in kept])
    boxes = np.concatenate([k[0] for k in kept])
    assert out['calib/num_dets'] == len(scores)
    assert out['calib/precision'] == pytest.approx(matched.float().mean().item())
    assert out['calib/dece'] == pytest.approx(cal.detection_ece(scores, matched), abs=1e-12)
    assert out['calib/dece_box'] == pytest.approx(cal.detection_ece(
        scores, matched, boxes, np.concatenate(sizes), box_features=('cx', 'cy', 'w')),
        abs=1e-12)


def test_next_to_coco_metric_in_one_evaluator():
    evaluator = Evaluator([dict(type='mmdet.CocoMetric', metric='bbox', format_only=False),
                           dict(type='DetectionCalibrationMetric', score_thr=0.3, n_bins=2)])
    evaluator.dataset_meta = dict(classes=('a', 'b'))
    samples = _hand_samples()
    s2 = samples[1]
    samples[1] = dict(img_id=2, ori_shape=(100, 100), pred_instances=s2.pred_instances,
                      instances=[dict(bbox=[10, 10, 40, 40], bbox_label=0, ignore_flag=0),
                                 dict(bbox=[50, 50, 100, 100], bbox_label=0, ignore_flag=1)])
    evaluator.process(samples)
    out = evaluator.evaluate(2)
    assert out['calib/dece'] == pytest.approx(0.4 / 5)
    assert 'coco/bbox_mAP' in out and out['coco/bbox_mAP'] > 0.5


def test_bad_configuration_and_samples():
    with pytest.raises(ValueError, match='score_thr'):
        METRICS.build(dict(type='DetectionCalibrationMetric', score_thr=1.5))
    with pytest.raises(ValueError, match='box_features'):
        METRICS.build(dict(type='DetectionCalibrationMetric', box_features=('x',)))
    with pytest.raises(ValueError, match='n_bins has 2 entries'):
        METRICS.build(dict(type='DetectionCalibrationMetric', n_bins=[10, 10]))
    metric = METRICS.build(dict(type='DetectionCalibrationMetric'))
    pred = _pred([[0, 0, 5, 5]], [0.9], [0])
    with pytest.raises(ValueError, match='no ground truth'):
        metric.process(None, [dict(ori_shape=(10, 10), pred_instances=pred)])
    with pytest.raises(ValueError, match='`ori_shape`'):
        metric.process(None, [dict(pred_instances=pred, instances=[])])
    # nothing above the threshold: nan D-ECE, not a crash
    metric.process(None, [dict(ori_shape=(10, 10), pred_instances=_pred([[0, 0, 5, 5]], [0.1], [0]),
                               instances=[dict(bbox=[0, 0, 5, 5], bbox_label=0)])])
    out = metric.evaluate(1)
    assert out['calib/num_dets'] == 0 and np.isnan(out['calib/dece'])
    assert out['calib/recall'] == 0.0
