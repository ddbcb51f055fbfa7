"""BoxKDLoss against MMDetection's own L1Loss and GIoULoss, and a hand-computed GIoU."""
import pytest
import torch
from mmdet.models.losses import GIoULoss, L1Loss

from mmkdcal.models.distillers import DistillInput
from mmkdcal.models.losses import BoxKDLoss


def _boxes(n, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 50
    wh = torch.rand(n, 2, generator=g) * 30 + 1
    return torch.cat([xy, xy + wh], dim=1)


def test_giou_by_hand():
    a = torch.tensor([[0., 0., 2., 2.], [0., 0., 2., 2.], [0., 0., 1., 1.]])
    b = torch.tensor([[1., 1., 3., 3.], [0., 0., 2., 2.], [2., 0., 3., 1.]])
    giou_only = BoxKDLoss(l1_weight=0.0, giou_weight=1.0, reduction='none')
    # row 0: IoU = 1/7; enclosing box 3 x 3 = 9, union 7: GIoU = 1/7 - 2/9
    # row 1: the same box, GIoU = 1; row 2: disjoint unit boxes 1 apart, enclosing 3 x 1 = 3,
    # union 2: GIoU = 0 - 1/3
    expected = [1 - (1 / 7 - 2 / 9), 0.0, 1 + 1 / 3]
    assert giou_only(a, b).tolist() == pytest.approx(expected, abs=1e-6)


def test_equals_mmdet_l1_plus_giou_weighted():
    s, t = _boxes(12, 0).requires_grad_(), _boxes(12, 1)
    w = torch.rand(12, generator=torch.Generator().manual_seed(2))
    ours = BoxKDLoss(l1_weight=5.0, giou_weight=2.0)(s, t, weight=w, avg_factor=3.0)
    # mmdet: L1Loss averages over elements; GIoULoss takes per-box weights
    l1 = L1Loss(reduction='sum')(s, t, weight=w[:, None].expand(12, 4)) / 3.0
    giou = GIoULoss(reduction='sum')(s, t, weight=w) / 3.0
    assert ours.item() == pytest.approx((5.0 * l1 + 2.0 * giou).item(), rel=1e-5)
    ours.backward()
    assert s.grad.abs().sum() > 0


def test_giou_refused_on_raw_regression_outputs():
    raw = DistillInput('reg', 'boxes', 'per-prior box regression outputs (M, 4)')
    decoded = DistillInput('boxes', 'boxes', 'decoded boxes', box_format='xyxy')
    assert 'giou_weight=0' in BoxKDLoss(giou_weight=1.0).check_input(raw)
    assert BoxKDLoss(giou_weight=1.0).check_input(decoded) is None
    assert BoxKDLoss().check_input(raw) is None
    with pytest.raises(ValueError, match='both 0'):
        BoxKDLoss(l1_weight=0.0)
