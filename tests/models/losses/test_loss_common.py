"""Behaviours shared by every distillation loss: reductions, fp16 teachers, no teacher grad."""
import pytest
import torch
from mmdet.models.losses.utils import weight_reduce_loss

from mmkdcal.models.losses import (BinaryKDLoss, BoxKDLoss, CWDLoss, DKDLoss, FeatureMSELoss,
                                   KDLoss, LDLoss, MLKDLoss, PKDLoss)
from mmkdcal.models.losses.utils import weighted_reduce

LOGIT_CASES = [
    (KDLoss, (6, 5), {}),
    (BinaryKDLoss, (6, 5), {}),
    (DKDLoss, (6, 5), {'labels': torch.tensor([0, 1, 2, 3, 4, 0])}),
    (MLKDLoss, (6, 5), {}),
    (LDLoss, (6, 4 * 9), {}),
    (BoxKDLoss, (6, 4), {}),
    (FeatureMSELoss, (2, 3, 4, 4), {}),
    (PKDLoss, (2, 3, 4, 4), {}),
    (CWDLoss, (2, 3, 4, 4), {}),
]


@pytest.mark.parametrize('cls,shape,extra', LOGIT_CASES)
def test_fp16_teacher_is_cast_to_student_dtype(cls, shape, extra):
    torch.manual_seed(0)
    s = torch.randn(shape, requires_grad=True)
    t16 = torch.randn(shape).half()
    loss = cls()(s, t16, **extra)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(cls()(s, t16.float(), **extra).item(), rel=1e-6)
    loss.backward()
    assert s.grad.abs().sum() > 0


@pytest.mark.parametrize('cls,shape,extra', LOGIT_CASES)
def test_teacher_never_receives_gradient(cls, shape, extra):
    torch.manual_seed(1)
    s = torch.randn(shape, requires_grad=True)
    t = torch.randn(shape, requires_grad=True)
    cls()(s, t, **extra).backward()
    assert t.grad is None
    assert s.grad.abs().sum() > 0


def test_weighted_reduce():
    loss = torch.tensor([1.0, 2.0, 3.0])
    w = torch.tensor([1.0, 0.0, 2.0])
    assert weighted_reduce(loss, w).item() == pytest.approx(7.0 / 3)
    assert weighted_reduce(loss, w, 'sum').item() == pytest.approx(7.0)
    assert weighted_reduce(loss, w, 'none').tolist() == [1.0, 0.0, 6.0]
    assert weighted_reduce(loss, w, avg_factor=2.0).item() == pytest.approx(3.5)
    # avg_factor=0 (no positives) does not divide by zero.
    assert weighted_reduce(torch.zeros(3), avg_factor=0.0).item() == 0.0
    with pytest.raises(ValueError, match='avg_factor'):
        weighted_reduce(loss, reduction='none', avg_factor=2.0)
    with pytest.raises(ValueError, match='avg_factor must be non-negative'):
        weighted_reduce(loss, avg_factor=-1.0)
    with pytest.raises(ValueError, match='reduction'):
        weighted_reduce(loss, reduction='max')


# Planted losses [1, 2, 3] with weights [1, 0, 2]: weighted [1, 0, 6], sum 7, mean 7/3.
EPS32 = 1.1920928955078125e-07  # float32 machine epsilon, mmdet's guard against avg_factor=0
AGREE = [
    (dict(), 7.0 / 3),
    (dict(reduction='sum'), 7.0),
    (dict(reduction='none'), [1.0, 0.0, 6.0]),
    (dict(avg_factor=2.0), 7.0 / (2.0 + EPS32)),
    (dict(avg_factor=torch.tensor(4.0)), 7.0 / (4.0 + EPS32)),
    (dict(avg_factor=0.0), 7.0 / EPS32),
]


@pytest.mark.parametrize('kwargs,expected', AGREE)
def test_weighted_reduce_is_mmdets_weight_reduce_loss(kwargs, expected):
    """Where the semantics agree, ours, mmdet's and the hand-computed value are one number."""
    loss = torch.tensor([1.0, 2.0, 3.0])
    w = torch.tensor([1.0, 0.0, 2.0])
    ours = weighted_reduce(loss, w, **kwargs)
    theirs = weight_reduce_loss(loss, w, **kwargs)
    assert torch.equal(ours, theirs)
    assert ours.tolist() == pytest.approx(expected, rel=1e-6)


def test_weighted_reduce_broadcasts_row_weights_like_mmdet():
    loss = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    w = torch.tensor([[2.0], [0.5]])  # per row: rows weigh 2*3 and 0.5*7, sum 9.5
    assert weighted_reduce(loss, w, 'sum').item() == pytest.approx(9.5)
    assert torch.equal(weighted_reduce(loss, w), weight_reduce_loss(loss, w))
    assert weighted_reduce(loss, w).item() == pytest.approx(9.5 / 4)


def test_weighted_reduce_departs_from_mmdet_where_documented():
    # empty batch, mean: mmdet's mean of nothing is NaN; ours is a zero on the graph
    empty = torch.zeros(0, requires_grad=True)
    assert torch.isnan(weight_reduce_loss(empty, None, 'mean'))
    zero = weighted_reduce(empty)
    assert zero.item() == 0.0 and zero.requires_grad
    zero.backward()
    assert empty.grad.shape == (0, )
    # avg_factor with reduction='none': mmdet ignores it silently; ours refuses
    loss = torch.tensor([1.0, 2.0, 3.0])
    assert weight_reduce_loss(loss, None, 'none', avg_factor=2.0).tolist() == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match='avg_factor is only used with reduction="mean"'):
        weighted_reduce(loss, reduction='none', avg_factor=2.0)
    # a float32 weight keeps an fp16 loss in fp16 (mmdet's product promotes it to float32)
    half = torch.tensor([1.0, 2.0, 3.0]).half()
    w32 = torch.tensor([1.0, 0.0, 2.0])
    assert weight_reduce_loss(half, w32, 'sum').dtype == torch.float32
    ours = weighted_reduce(half, w32, 'sum')
    assert ours.dtype == torch.float16 and ours.item() == 7.0
