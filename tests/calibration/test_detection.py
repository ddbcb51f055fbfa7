"""Detection matching against pycocotools' COCOeval, D-ECE against netcal, hand cases."""
import contextlib
import io

import numpy as np
import pytest
import torch
from netcal.metrics import ECE as NetcalECE

from mmkdcal.calibration import (box_iou, detection_ece, detection_ece_over_under,
                                 ground_truth_arrays, match_detections, match_detections_batch,
                                 relative_box_features)


def test_box_iou_hand_values():
    a = torch.tensor([[0., 0., 2., 2.], [1., 1., 3., 3.]])
    b = torch.tensor([[1., 1., 3., 3.], [10., 10., 11., 11.], [0., 0., 1., 4.]])
    iou = box_iou(a, b)
    assert iou[0, 0].item() == pytest.approx(1 / 7)  # inter 1, union 4 + 4 - 1
    assert iou[1, 0].item() == pytest.approx(1.0)
    assert iou[0, 1].item() == 0.0
    assert iou[0, 2].item() == pytest.approx(2 / 6)  # inter 1x2, union 4 + 4 - 2
    assert box_iou(a, b, mode='iof')[0, 2].item() == pytest.approx(2 / 4)
    assert box_iou(a, torch.zeros(0, 4)).shape == (2, 0)


def test_match_detections_hand_case():
    gt = torch.tensor([[0., 0., 10., 10.], [20., 0., 30., 10.]])
    gt_labels = torch.tensor([0, 0])
    det = torch.tensor([
        [0., 0., 10., 10.],   # 0: exact on gt0, low score -> loses gt0 to det 1
        [0., 0., 10., 9.],    # 1: IoU 0.9 with gt0, highest score -> takes gt0
        [21., 0., 30., 10.],  # 2: IoU 0.9 with gt1 but class 1 -> unmatched
        [20., 0., 29., 10.],  # 3: IoU 0.9 with gt1, class 0 -> matched
        [20., 0., 24., 10.],  # 4: IoU 0.4 with gt1 -> below threshold
    ])
    scores = torch.tensor([0.5, 0.9, 0.8, 0.7, 0.95])
    labels = torch.tensor([0, 0, 1, 0, 0])
    matched = match_detections(det, scores, labels, gt, gt_labels, iou_thr=0.5)
    assert matched.tolist() == [False, True, False, True, False]
    # lower threshold: det 4 (score 0.95) now comes first and takes gt1 from det 3
    matched = match_detections(det, scores, labels, gt, gt_labels, iou_thr=0.3)
    assert matched.tolist() == [False, True, False, False, True]
    # box structures exposing `.tensor` (as mmdet's HorizontalBoxes do) are accepted

    class Boxes:
        def __init__(self, t):
            self.tensor = t

    assert torch.equal(match_detections(Boxes(det), scores, labels, Boxes(gt), gt_labels,
                                        iou_thr=0.3), matched)
    # no gt / no det
    assert match_detections(det, scores, labels, torch.zeros(0, 4), []).tolist() == [False] * 5
    assert match_detections(torch.zeros(0, 4), [], [], gt, gt_labels).shape == (0,)


def test_match_detections_ignored_ground_truth():
    gt = torch.tensor([[0., 0., 10., 10.], [0., 0., 100., 100.]])
    gt_labels = torch.tensor([0, 0])
    ignore = torch.tensor([False, True])
    det = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 10.], [50., 50., 60., 60.],
                        [0., 0., 100., 100.], [200., 200., 210., 210.]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
    matched, ignored = match_detections(det, scores, torch.zeros(5, dtype=torch.long), gt,
                                        gt_labels, gt_ignore=ignore, return_ignored=True)
    # det 0 takes the regular gt; dets 1-3 lie inside the crowd box (overlap/area(det) = 1)
    assert matched.tolist() == [True, False, False, False, False]
    assert ignored.tolist() == [False, True, True, True, False]


def _coco_matches(images, iou_thr):
    """dtMatches / dtIgnore of pycocotools' COCOeval for our per-image dicts."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gts, dts, info, cats = [], [], [], set()
    for img_id, img in enumerate(images, 1):
        info.append(dict(id=img_id, width=1000, height=1000))
        for b, lab, ig in zip(img['gt_boxes'], img['gt_labels'], img['gt_ignore']):
            x1, y1, x2, y2 = b.tolist()
            cats.add(int(lab))
            gts.append(dict(id=len(gts) + 1, image_id=img_id, category_id=int(lab) + 1,
                            bbox=[x1, y1, x2 - x1, y2 - y1], area=(x2 - x1) * (y2 - y1),
                            iscrowd=int(ig)))
        for b, s, lab in zip(img['det_boxes'], img['det_scores'], img['det_labels']):
            x1, y1, x2, y2 = b.tolist()
            dts.append(dict(id=len(dts) + 1, image_id=img_id, category_id=int(lab) + 1,
                            bbox=[x1, y1, x2 - x1, y2 - y1], score=float(s),
                            area=(x2 - x1) * (y2 - y1)))
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = dict(images=info, annotations=gts,
                            categories=[dict(id=c + 1) for c in range(5)])
        coco.createIndex()
        coco_dt = coco.loadRes(dts)
        ev = COCOeval(coco, coco_dt, 'bbox')
        ev.params.iouThrs = np.array([iou_thr])
        ev.params.areaRng = [[0, 1e10]]
        ev.params.areaRngLbl = ['all']
        ev.params.maxDets = [10000]
        ev.evaluate()
    matched = np.zeros(len(dts), dtype=bool)
    ignored = np.zeros(len(dts), dtype=bool)
    for e in ev.evalImgs:
        if e is None:
            continue
        for dt_id, m, ig in zip(e['dtIds'], e['dtMatches'][0], e['dtIgnore'][0]):
            matched[dt_id - 1] = m > 0 and not ig
            ignored[dt_id - 1] = bool(ig)
    return matched, ignored


# 0.0: any ground truth of the class qualifies, so which of equal (zero) IoUs is taken matters
@pytest.mark.parametrize('iou_thr', [0.0, 0.5, 0.75])
def test_match_detections_equals_cocoeval(iou_thr):
    rng = np.random.default_rng(0)
    images = []
    for _ in range(25):
        g = int(rng.integers(0, 8))
        gxy = rng.uniform(0, 800, (g, 2))
        gt_boxes = np.concatenate([gxy, gxy + rng.uniform(20, 150, (g, 2))], 1)
        gt_labels = rng.integers(0, 3, g)
        # detections: jittered copies of the gts (several per gt) plus random boxes
        src = rng.integers(0, max(g, 1), 3 * g) if g else np.zeros(0, dtype=int)
        jit = gt_boxes[src] + rng.normal(0, 12, (len(src), 4)) if g else np.zeros((0, 4))
        rnd_xy = rng.uniform(0, 800, (5, 2))
        rnd = np.concatenate([rnd_xy, rnd_xy + rng.uniform(20, 150, (5, 2))], 1)
        det_boxes = np.concatenate([jit, rnd])
        det_boxes[:, 2:] = np.maximum(det_boxes[:, 2:], det_boxes[:, :2] + 1)
        det_labels = np.concatenate([gt_labels[src] if g else np.zeros(0, int),
                                     rng.integers(0, 3, 5)])
        det_labels[rng.random(len(det_labels)) < 0.1] = 2  # some wrong classes
        images.append(dict(det_boxes=det_boxes, det_scores=rng.random(len(det_boxes)),
                           det_labels=det_labels, gt_boxes=gt_boxes, gt_labels=gt_labels,
                           gt_ignore=rng.random(g) < 0.15))
    ref_matched, ref_ignored = _coco_matches(images, iou_thr)
    matched, ignored = match_detections_batch(images, iou_thr=iou_thr, return_ignored=True)
    assert 20 < ref_matched.sum() < len(ref_matched) - 20  # a non-trivial case
    assert ref_ignored.sum() > 0
    np.testing.assert_array_equal(matched.numpy(), ref_matched)
    np.testing.assert_array_equal(ignored.numpy(), ref_ignored)


def _detections(n, seed=0):
    rng = np.random.default_rng(seed)
    scores = rng.random(n).astype(np.float32)
    matched = rng.random(n) < scores**1.5
    xy = rng.random((n, 2)) * [[600, 440]]
    wh = rng.random((n, 2)) * [[300, 200]] + 1
    boxes = np.concatenate([xy, xy + wh], 1)
    return scores, matched, boxes


def test_detection_ece_equals_netcal_confidence_only():
    scores, matched, _ = _detections(20000)
    for bins in (10, 15):
        ref = NetcalECE(bins, detection=True).measure(scores, matched)
        assert detection_ece(scores, matched, n_bins=bins) == pytest.approx(ref, abs=1e-9)
    # also with float64 scores and exact 0 / 1 confidences (netcal clips them to [eps, 1-eps])
    s64 = scores.astype(np.float64)
    s64[:50] = 1.0
    s64[50:100] = 0.0
    ref = NetcalECE(10, detection=True).measure(s64, matched)
    assert detection_ece(torch.from_numpy(s64), torch.from_numpy(matched)) == pytest.approx(
        ref, abs=1e-12)


def test_detection_ece_equals_netcal_with_box_features():
    scores, matched, boxes = _detections(20000, seed=1)
    size = (480, 640)  # (H, W)
    cx = (boxes[:, 0] + boxes[:, 2]) / 2 / 640
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 / 480
    w = (boxes[:, 2] - boxes[:, 0]) / 640
    h = (boxes[:, 3] - boxes[:, 1]) / 480
    x = np.stack([scores.astype(np.float64), cx, cy], 1)
    ref = NetcalECE(10, detection=True).measure(x, matched)
    assert detection_ece(scores, matched, boxes, size) == pytest.approx(ref, abs=1e-9)
    x = np.stack([scores.astype(np.float64), cx, cy, w, h], 1)
    bins = [10, 5, 5, 4, 4]
    ref = NetcalECE(bins, detection=True).measure(x, matched)
    got = detection_ece(scores, matched, boxes, np.tile([480, 640], (len(boxes), 1)),
                        n_bins=bins, box_features=('cx', 'cy', 'w', 'h'))
    assert got == pytest.approx(ref, abs=1e-9)
    assert detection_ece(scores, matched, features=x[:, 1:], n_bins=bins) == pytest.approx(
        ref, abs=1e-9)
    np.testing.assert_allclose(
        relative_box_features(boxes, size, ('w', 'h', 'cx', 'cy')).numpy(),
        np.stack([w, h, cx, cy], 1), rtol=1e-12)


def test_detection_ece_hand_value():
    # 2 bins over confidence: [0, .5): scores .2 .4 (one matched) -> |0.5 - 0.3| * 2/5
    # [.5, 1): .6 .8 .9 (two matched) -> |2/3 - 2.3/3| * 3/5
    scores = torch.tensor([0.2, 0.4, 0.6, 0.8, 0.9], dtype=torch.float64)
    matched = torch.tensor([1, 0, 1, 1, 0])
    hand = 0.2 * 2 / 5 + abs(2 / 3 - 2.3 / 3) * 3 / 5
    assert detection_ece(scores, matched, n_bins=2) == pytest.approx(hand)
    # split by cx into two halves: every (conf, cx) bin is now examined alone
    boxes = torch.tensor([[0., 0, 2, 2], [8, 0, 10, 2], [0, 0, 2, 2], [8, 0, 10, 2], [8, 0, 10, 2]])
    hand = (abs(1 - .2) + abs(0 - .4) + abs(1 - .6) + abs(0.5 - 1.7 / 2) * 2) / 5
    got = detection_ece(scores, matched, boxes, (10, 10), n_bins=[2, 2], box_features=('cx',))
    assert got == pytest.approx(hand)


def test_detection_ece_over_under_hand_value_and_split():
    # 2 bins: [0.2, 0.3] precision 0.5 > conf 0.25 (under 0.25 * 2/4), [0.8, 0.9] precision
    # 0.5 < conf 0.85 (over 0.35 * 2/4)
    scores, matched = np.array([0.9, 0.8, 0.3, 0.2]), np.array([1, 0, 0, 1])
    assert detection_ece_over_under(scores, matched, n_bins=2) == pytest.approx((0.175, 0.125))
    rng = np.random.default_rng(5)
    s = rng.uniform(size=2000)
    hit = rng.uniform(size=2000) < s ** 2  # over-confident
    xy = np.sort(rng.uniform(0, 100, size=(2000, 2, 2)), axis=1)  # (min, max) of x and y
    boxes = xy.transpose(0, 2, 1).reshape(2000, 4)[:, [0, 2, 1, 3]]
    for kw in (dict(), dict(boxes=boxes, image_sizes=(100, 100), n_bins=5)):
        over, under = detection_ece_over_under(s, hit, **kw)
        assert over + under == pytest.approx(detection_ece(s, hit, **kw), abs=1e-12)
        assert over > 10 * under


def test_detection_inputs_fail_clearly():
    scores, matched, boxes = _detections(10)
    with pytest.raises(ValueError, match='`image_sizes` is required'):
        detection_ece(scores, matched, boxes)
    with pytest.raises(ValueError, match='`scores` must be confidences'):
        detection_ece(scores * 3, matched)
    with pytest.raises(ValueError, match='`matched` must have shape'):
        detection_ece(scores, matched[:5])
    with pytest.raises(ValueError, match='`n_bins` has 2 entries'):
        detection_ece(scores, matched, boxes, (480, 640), n_bins=[10, 10])
    with pytest.raises(ValueError, match='x2 >= x1'):
        match_detections(boxes[:, [2, 1, 0, 3]], scores, np.zeros(10, int), boxes,
                         np.zeros(10, int))
    with pytest.raises(ValueError, match='`det_labels` must have shape'):
        match_detections(boxes, scores, np.zeros(3, int), boxes, np.zeros(10, int))
    with pytest.raises(ValueError, match='one bool flag per ground-truth box'):
        match_detections(boxes, scores, np.zeros(10, int), boxes, np.zeros(10, int),
                         gt_ignore=boxes[:2])
    with pytest.raises(ValueError, match='lacks the key'):
        match_detections_batch([dict(det_boxes=boxes)])
    with pytest.raises(ValueError, match='`features` must be distinct names'):
        relative_box_features(boxes, (10, 10), ('cx', 'area'))


class _Boxes:
    """A box structure: the boxes in ``.tensor`` (as MMDetection's ``HorizontalBoxes``)."""

    def __init__(self, tensor):
        self.tensor = tensor


def test_ground_truth_arrays_reads_both_layouts_alike():
    """The dataset's ``instances`` and the packed ``gt_instances`` + ``ignored_instances`` of the
    same image give the same arrays (ignored boxes last in the packed layout)."""
    info = dict(instances=[dict(bbox=[0, 0, 10, 10], bbox_label=2, ignore_flag=0),
                           dict(bbox=[5, 5, 8, 9], bbox_label=1),
                           dict(bbox=[1, 2, 3, 4], bbox_label=0, ignore_flag=1)])
    boxes = _Boxes(torch.tensor([[0., 0., 10., 10.], [5., 5., 8., 9.]]))
    packed = dict(gt_instances=dict(bboxes=boxes, labels=torch.tensor([2, 1])),
                  ignored_instances=dict(bboxes=np.array([[1., 2., 3., 4.]]),
                                         labels=np.array([0])))
    for record in (info, packed):
        boxes, labels, ignore = ground_truth_arrays(record)
        assert boxes.dtype == np.float64 and labels.dtype == np.int64 and ignore.dtype == bool
        assert boxes.tolist() == [[0, 0, 10, 10], [5, 5, 8, 9], [1, 2, 3, 4]]
        assert labels.tolist() == [2, 1, 0] and ignore.tolist() == [False, False, True]
    boxes, labels, ignore = ground_truth_arrays(dict(instances=[]))
    assert boxes.shape == (0, 4) and labels.shape == ignore.shape == (0,)
    assert ground_truth_arrays(dict(img_id=3)) is None
