"""Tests for FeatureMSELoss (FitNets hint loss)."""
import pytest
import torch

from mmkdcal.models.losses import FeatureMSELoss


def test_hand_computed_without_adapter():
    s = torch.full((2, 3, 2, 2), 2.0)
    t = torch.zeros(2, 3, 2, 2)
    t[0, 0, 0, 0] = 6.0  # one element with squared error 16, the other 23 with 4
    loss = FeatureMSELoss(loss_weight=0.5)(s, t)
    assert loss.item() == pytest.approx(0.5 * (16 + 23 * 4) / 24, rel=1e-6)
    assert FeatureMSELoss().adapter is None
    assert FeatureMSELoss(student_channels=3, teacher_channels=3).adapter is None


def test_adapter_created_when_channels_differ_and_applied():
    loss = FeatureMSELoss(student_channels=2, teacher_channels=3)
    assert isinstance(loss.adapter, torch.nn.Conv2d)
    assert loss.adapter.weight.shape == (3, 2, 1, 1)
    with torch.no_grad():  # planted adapter: out = A @ in + b per pixel
        loss.adapter.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])[..., None,
                                                                                     None])
        loss.adapter.bias.copy_(torch.tensor([0.0, 1.0, -1.0]))
    s = torch.zeros(1, 2, 1, 2)
    s[0, :, 0, 0] = torch.tensor([1.0, 2.0])  # pixel 0 -> (1, 5, 2); pixel 1 -> (0, 1, -1)
    s.requires_grad_(True)
    t = torch.zeros(1, 3, 1, 2)
    out = loss(s, t)
    assert out.item() == pytest.approx((1 + 25 + 4 + 0 + 1 + 1) / 6, rel=1e-6)
    out.backward()
    assert loss.adapter.weight.grad.abs().sum() > 0
    assert FeatureMSELoss(student_channels=4, teacher_channels=4, adapter=True).adapter \
        is not None


def test_bad_inputs():
    with pytest.raises(ValueError, match=r'\(2, 3, 4, 4\).*\(2, 3, 8, 8\)'):
        FeatureMSELoss()(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r'\(2, 3, 4, 4\).*\(2, 5, 4, 4\).*student_channels'):
        FeatureMSELoss()(torch.randn(2, 3, 4, 4), torch.randn(2, 5, 4, 4))
    with pytest.raises(ValueError, match='student_channels=2'):
        FeatureMSELoss(student_channels=2, teacher_channels=3)(torch.randn(1, 4, 2, 2),
                                                               torch.randn(1, 3, 2, 2))
    with pytest.raises(ValueError, match='adapter=False'):
        FeatureMSELoss(student_channels=2, teacher_channels=3, adapter=False)
    with pytest.raises(ValueError, match='adapter=True'):
        FeatureMSELoss(adapter=True)
