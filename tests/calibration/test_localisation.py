"""LaECE and LaACE: hand-computed cases and the authors' evaluation code."""
import numpy as np
import pytest

from mmkdcal.calibration import laace, laece, localisation_errors, match_detections
from tools.analysis.check_laece_reference import ours, random_set

# class 0: scores 0.9 (IoU 0.8), 0.5 (false positive), 0.51 (IoU 0.6); class 1: 0.3 (IoU 0.9)
SCORES = [0.9, 0.5, 0.51, 0.3]
IOUS = [0.8, 0.0, 0.6, 0.9]
LABELS = [0, 0, 0, 1]


def test_laece_hand_value():
    # class 0: bin (0.88, 0.92]: |0.8 - 0.9| * 1/3; bin (0.48, 0.52]: |0.6/2 - 0.505| * 2/3
    class0 = 0.1 / 3 + 0.205 * 2 / 3
    assert laece(SCORES, IOUS, LABELS) == pytest.approx((class0 + 0.6) / 2, abs=1e-12)
    # one bin per detection
    assert laace(SCORES, IOUS, LABELS) == pytest.approx(((0.1 + 0.5 + 0.09) / 3 + 0.6) / 2)


def test_laece_bins_are_open_on_the_left_except_the_first():
    # 0.0 and 0.04 share the first bin [0, 0.04]: |(0.5 - 0) + (0 - 0.04)| / 2 = 0.23; were 0.04
    # in a bin of its own, the error would be (0.5 + 0.04) / 2 = 0.27
    assert laece([0.0, 0.04], [0.5, 0.0], [3, 3]) == pytest.approx(0.23, abs=1e-12)


def test_laece_averages_over_the_given_classes_only():
    # class 1 has a detection but no ground truth: the authors' evaluation leaves it out
    assert laece(SCORES, IOUS, LABELS, classes=[0]) == pytest.approx(0.1 / 3 + 0.205 * 2 / 3)
    with pytest.raises(ValueError, match='No class has both detections and ground truth'):
        laace(SCORES, IOUS, LABELS, classes=[7])
    with pytest.raises(ValueError, match='`ious` must hold finite values in \\[0, 1\\]'):
        laece(SCORES, [0.8, 0.0, 1.6, 0.9], LABELS)


def test_match_detections_returns_the_iou_of_the_match():
    gt = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], float)
    det = np.array([[0, 0, 10, 5], [40, 40, 50, 50], [20, 0, 30, 10]], float)
    matched, iou = match_detections(det, [0.9, 0.8, 0.7], [0, 0, 0], gt, [0, 0], iou_thr=0.0,
                                    return_iou=True)
    # with tau = 0 the far detection still takes the ground truth left, at IoU 0, so the last
    # detection (an exact copy of that box) finds none: COCOeval's rule, which LaECE_0 uses
    assert matched.tolist() == [True, True, False]
    np.testing.assert_allclose(iou.numpy(), [0.5, 0.0, 0.0])


# The authors' values: fiveai/detection_calibration at bf59c92 (``CalibrationCOCO`` with 25 bins,
# maxDets 100, as its ``evaluate_calibration`` runs LaECE_0 and LaACE_0), on the sets that
# ``random_set(seed)`` builds, printed by
#   python tools/analysis/check_laece_reference.py --reference PATH/src --tau TAU
# which ran both implementations side by side; they agreed to 2e-16.
REFERENCE = {
    (0, 0.0): (0.426710831159, 0.439462831895),
    (1, 0.0): (0.424007640158, 0.429841837678),
    (2, 0.0): (0.390523923753, 0.415642844320),
    (0, 0.5): (0.456357447453, 0.480701575193),
    (1, 0.5): (0.443113766150, 0.464130234182),
    (2, 0.5): (0.442111311514, 0.472556639678),
}


@pytest.mark.parametrize('seed,tau', sorted(REFERENCE))
def test_laece_and_laace_equal_the_authors_code(seed, tau):
    gt, dets = random_set(seed)
    got = ours(gt, dets, tau)
    want_laece, want_laace = REFERENCE[seed, tau]
    assert got['laece'] == pytest.approx(want_laece, abs=1e-6)
    assert got['laace'] == pytest.approx(want_laace, abs=1e-6)


def test_localisation_errors_leave_out_ignored_detections():
    gt = np.array([[0, 0, 10, 10], [50, 50, 90, 90]], float)
    det = np.array([[0, 0, 10, 10], [55, 55, 85, 85]], float)
    image = dict(det_boxes=det, det_scores=np.array([0.7, 0.9]), det_labels=np.array([0, 0]),
                 gt_boxes=gt, gt_labels=np.array([0, 0]), gt_ignore=np.array([False, True]))
    # the second detection lies inside a crowd box: neither a hit nor a false positive
    out = localisation_errors([image], iou_thr=0.5)
    assert out['laece'] == pytest.approx(0.3)
    assert out['laace'] == pytest.approx(0.3)
