"""ClassificationCalibrationMetric against the functional API and torchmetrics."""
import math

import pytest
import torch
from mmengine.structures import BaseDataElement
from torchmetrics.functional.classification import multiclass_calibration_error

import mmkdcal  # noqa: F401  (registers the metrics)
from mmdet.registry import METRICS
from mmkdcal import calibration as cal


def _data(n=600, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = 3 * torch.randn(n, k, generator=g)
    labels = torch.multinomial(torch.softmax(logits / 2, 1), 1, generator=g).squeeze(1)
    return logits, labels


def test_metric_equals_functional_api():
    logits, labels = _data()
    probs = torch.softmax(logits, 1)
    metric = METRICS.build(dict(type='ClassificationCalibrationMetric', n_bins=10))
    samples = [dict(pred_score=p, gt_label=torch.tensor([y])) for p, y in zip(probs, labels)]
    # data elements (as MMEngine passes them) work too
    samples[:50] = [BaseDataElement(pred_score=s['pred_score'], gt_label=s['gt_label'])
                    for s in samples[:50]]
    for i in range(0, len(samples), 64):  # batches
        metric.process(None, samples[i:i + 64])
    out = metric.evaluate(len(samples))
    e_o, e_u = cal.ece_over_under(probs, labels, 10)
    expected = dict(ece=cal.ece(probs, labels, 10), ece_over=e_o, ece_under=e_u,
                    mce=cal.mce(probs, labels, 10), ace=cal.ace(probs, labels, 10),
                    classwise_ece=cal.classwise_ece(probs, labels, 10),
                    nll=cal.nll(probs, labels), brier=cal.brier(probs, labels),
                    accuracy=(probs.argmax(1) == labels).float().mean().item())
    assert set(out) == {f'calib/{k}' for k in expected}
    for k, v in expected.items():
        assert out[f'calib/{k}'] == pytest.approx(v, abs=1e-6), k
    ref = multiclass_calibration_error(probs, labels, 5, n_bins=10).item()
    assert out['calib/ece'] == pytest.approx(ref, abs=1e-6)
    assert out['calib/ece_over'] > out['calib/ece_under']  # T=2 planted: over-confident


def test_logits_are_softmaxed_and_prefix_is_used():
    logits, labels = _data(n=100, seed=1)
    a = METRICS.build(dict(type='ClassificationCalibrationMetric', prefix='teacher'))
    a.process(None, [dict(pred_logits=z, gt_label=y) for z, y in zip(logits, labels)])
    out = a.evaluate(100)
    assert out['teacher/nll'] == pytest.approx(
        torch.nn.functional.cross_entropy(logits.double(), labels).item(), rel=1e-5)


def test_bad_samples_fail_clearly_and_small_sets_give_nan_ace():
    metric = METRICS.build(dict(type='ClassificationCalibrationMetric'))
    with pytest.raises(ValueError, match='neither `pred_score`'):
        metric.process(None, [dict(gt_label=torch.tensor(1))])
    with pytest.raises(ValueError, match='no `gt_label`'):
        metric.process(None, [dict(pred_score=torch.tensor([0.5, 0.5]))])
    with pytest.raises(ValueError, match='n_bins'):
        METRICS.build(dict(type='ClassificationCalibrationMetric', n_bins=0))
    metric.process(None, [dict(pred_score=torch.tensor([0.9, 0.1]), gt_label=torch.tensor(0)),
                          dict(pred_score=torch.tensor([0.3, 0.7]), gt_label=torch.tensor(0))])
    out = metric.evaluate(2)
    assert math.isnan(out['calib/ace'])
    # hand value: bins of 1/15; confidences 0.9 (right) and 0.7 (wrong) in different bins
    assert out['calib/ece'] == pytest.approx((0.1 + 0.7) / 2)
    with pytest.raises(ValueError, match='no samples'):
        metric.evaluate(0)
