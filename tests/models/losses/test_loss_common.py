"""Behaviours shared by every distillation loss: reductions, fp16 teachers, no teacher grad."""
import pytest
import torch

from mmkdcal.models.losses import (BinaryKDLoss, BoxKDLoss, CWDLoss, DKDLoss, FeatureMSELoss,
                                   KDLoss, LDLoss, MLKDLoss, PKDLoss)
from mmkdcal.models.losses._utils import weighted_reduce

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
