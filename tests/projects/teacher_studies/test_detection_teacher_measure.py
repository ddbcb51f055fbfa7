"""D-ECE split into over/under-confident parts, and the per-temperature detection summary."""
import math

import numpy as np
import pytest

from projects.teacher_studies.studies.detection_teacher_measure import (
    dece_over_under, detection_summary)


def test_dece_over_under_hand_case():
    # bin [0.9, 1): two detections of score 0.95, one matched: conf - acc = 0.45, weight 2/6;
    # bin [0.1, 0.2): two of 0.15, none matched: +0.15, weight 2/6;
    # bin [0.5, 0.6): two of 0.55, both matched: -0.45, weight 2/6
    s = [0.95, 0.95, 0.15, 0.15, 0.55, 0.55]
    m = [1, 0, 0, 0, 1, 1]
    d, over, under = dece_over_under(s, m, n_bins=10)
    assert over == pytest.approx((0.45 + 0.15) * 2 / 6, abs=1e-12)
    assert under == pytest.approx(0.45 * 2 / 6, abs=1e-12)
    assert d == pytest.approx(over + under, abs=1e-15)
    assert all(math.isnan(v) for v in dece_over_under([], [], 10))
    with pytest.raises(ValueError, match='scores'):
        dece_over_under([1.5], [1], 10)


def test_dece_equals_the_library_detection_ece():
    from mmkdcal.calibration import detection_ece
    rng = np.random.default_rng(0)
    s = rng.beta(2, 3, 5000)
    s[:7] = [0.0, 1.0, 0.1, 0.2, 0.5, 0.3, 0.9]  # edges and extremes
    m = (rng.random(5000) < s ** 1.5).astype(np.float64)
    for bins in (10, 15):
        d, over, under = dece_over_under(s, m, bins)
        assert d == pytest.approx(detection_ece(s, m, n_bins=bins), abs=1e-12)
        assert over > under  # matched with probability s^1.5 < s: over-confident


def test_detection_summary_temperature_threshold_and_nll():
    z = np.array([2.0, -1.0, 0.5, -3.0])
    m = np.array([1, 0, 0, 0])
    t = 0.5
    out = detection_summary(z, m, t, n_bins=10)
    zt = z / t
    p = 1 / (1 + np.exp(-zt))
    nll = -np.mean(m * np.log(p) + (1 - m) * np.log(1 - p))
    assert out['nll'] == pytest.approx(nll, rel=1e-12)
    assert out['num_dets'] == 4 and out['precision'] == 0.25
    assert out['mean_score'] == pytest.approx(p.mean(), rel=1e-12)
    # the threshold applies to the scaled scores: sigmoid(4) and sigmoid(1) stay
    thr = detection_summary(z, m, t, n_bins=10, score_thr=0.6)
    assert thr['num_dets'] == 2 and thr['precision'] == 0.5
