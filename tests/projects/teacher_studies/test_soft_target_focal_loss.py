"""SoftTargetFocalLoss: mmdet's FocalLoss at pos_target=1, and a hand-computed soft case."""
import math

import pytest
import torch

from projects.teacher_studies.studies.soft_target_focal_loss import SoftTargetFocalLoss


def test_equals_mmdet_focal_loss_with_hard_targets():
    from mmdet.models.losses import FocalLoss
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(50, 4, generator=g, dtype=torch.float64) * 3
    labels = torch.randint(0, 5, (50, ), generator=g)  # 4 = background
    weight = torch.rand(50, generator=g, dtype=torch.float64)
    ref = FocalLoss(use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.5)
    ours = SoftTargetFocalLoss(gamma=2.0, alpha=0.25, pos_target=1.0, loss_weight=1.5)
    for kw in (dict(), dict(weight=weight), dict(weight=weight, avg_factor=7.0)):
        assert float(ours(pred, labels, **kw)) == pytest.approx(float(ref(pred, labels, **kw)),
                                                                rel=1e-12)
    # GFLHead passes (labels, IoU scores): the scores are ignored
    iou = torch.rand(50, generator=g)
    assert float(ours(pred, (labels, iou), weight, avg_factor=7.0)) == pytest.approx(
        float(ref(pred, labels, weight, avg_factor=7.0)), rel=1e-12)


def test_soft_target_hand_case():
    # one prior, two classes, logits 0 (p = 0.5), label 0, pos_target 0.7:
    # positive entry: BCE(0.5, 0.7) = ln 2, focal |0.7 - 0.5|^2 = 0.04, alpha 0.25
    # negative entry: BCE(0.5, 0) = ln 2, focal 0.25, 1 - alpha = 0.75
    loss = SoftTargetFocalLoss(gamma=2.0, alpha=0.25, pos_target=0.7)
    value = float(loss(torch.zeros(1, 2, dtype=torch.float64), torch.tensor([0]),
                       avg_factor=1.0))
    # (mmdet's 'mean' divides by avg_factor + float32 eps, hence rel 1e-6)
    assert value == pytest.approx(math.log(2) * (0.25 * 0.04 + 0.75 * 0.25), rel=1e-6)
    # the gradient pushes the positive logit towards logit(0.7), not beyond
    x = torch.tensor([[math.log(0.7 / 0.3)]], dtype=torch.float64, requires_grad=True)
    loss(x, torch.tensor([0])).backward()
    assert abs(float(x.grad)) < 1e-12


def test_bad_arguments_fail_early():
    for kw, field in ((dict(pos_target=0.0), 'pos_target'), (dict(use_sigmoid=False),
                                                             'use_sigmoid'),
                      (dict(alpha=1.5), 'alpha'), (dict(reduction='avg'), 'reduction')):
        with pytest.raises(ValueError, match=field):
            SoftTargetFocalLoss(**kw)
    with pytest.raises(ValueError, match='labels'):
        SoftTargetFocalLoss()(torch.zeros(3, 2), torch.tensor([0, 1]))
