"""Tests for PKDLoss (Pearson-correlation feature distillation)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmkdcal.models.losses import PKDLoss


def test_hand_built_correlations():
    # Channel 0: identical ramps (r = 1); channel 1: reversed ramp (r = -1).
    # loss = mean_c (1 - r_c) = (0 + 2) / 2 = 1.
    ramp = torch.tensor([1.0, 2.0, 3.0, 4.0])
    s = torch.stack([ramp, ramp]).view(1, 2, 1, 4)
    t = torch.stack([ramp, ramp.flip(0)]).view(1, 2, 1, 4)
    assert PKDLoss()(s, t).item() == pytest.approx(1.0, abs=1e-5)
    assert PKDLoss(loss_weight=2.0)(s, t).item() == pytest.approx(2.0, abs=1e-5)


def test_equals_one_minus_pearson_r():
    torch.manual_seed(0)
    s = torch.randn(2, 3, 4, 5)
    t = 0.6 * s + torch.randn(2, 3, 4, 5)
    r = [np.corrcoef(s[:, c].flatten().numpy(), t[:, c].flatten().numpy())[0, 1]
         for c in range(3)]
    assert PKDLoss()(s, t).item() == pytest.approx(float(np.mean([1 - v for v in r])),
                                                   abs=1e-5)


def test_invariant_to_per_channel_affine_change_of_student():
    torch.manual_seed(1)
    s, t = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    a = torch.tensor([0.1, 5.0, 30.0]).view(1, 3, 1, 1)
    b = torch.tensor([-2.0, 0.0, 100.0]).view(1, 3, 1, 1)
    assert PKDLoss()(a * s + b, t).item() == pytest.approx(PKDLoss()(s, t).item(), abs=1e-5)
    # A plain MSE is not invariant, so the test would catch a missing normalisation.
    assert F.mse_loss(a * s + b, t).item() != pytest.approx(F.mse_loss(s, t).item(), rel=0.1)


def test_resizes_student_or_teacher():
    torch.manual_seed(2)
    s, t = torch.randn(1, 2, 2, 2), torch.randn(1, 2, 4, 4)
    up = F.interpolate(s, size=(4, 4), mode='bilinear', align_corners=False)
    assert PKDLoss()(s, t).item() == pytest.approx(PKDLoss()(up, t).item(), abs=1e-6)
    down = F.interpolate(t, size=(2, 2), mode='bilinear', align_corners=False)
    assert PKDLoss(resize_stu=False)(s, t).item() == pytest.approx(
        PKDLoss()(s, down).item(), abs=1e-6)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r'\(2, 3, 4, 4\).*\(2, 5, 4, 4\)'):
        PKDLoss()(torch.randn(2, 3, 4, 4), torch.randn(2, 5, 4, 4))
    with pytest.raises(ValueError, match='teacher_feat'):
        PKDLoss()(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4))
    with pytest.raises(TypeError, match='resize_stu'):
        PKDLoss(resize_stu='yes')


def test_adapter_maps_student_width_to_teacher_width():
    """A planted 1x1 adapter: PKD of the adapted student equals PKD of the hand-mixed map."""
    torch.manual_seed(2)
    s, t = torch.randn(2, 2, 3, 3), torch.randn(2, 3, 3, 3)
    loss = PKDLoss(student_channels=2, teacher_channels=3)
    assert loss.adapter.weight.shape == (3, 2, 1, 1) and loss.adapter.bias is None
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, -1.0]])
    with torch.no_grad():
        loss.adapter.weight.copy_(a[..., None, None])
    mixed = torch.einsum('oc,nchw->nohw', a, s)
    assert loss(s, t).item() == pytest.approx(PKDLoss()(mixed, t).item(), rel=1e-6)
    s.requires_grad_(True)
    loss(s, t).backward()
    assert loss.adapter.weight.grad.abs().sum() > 0 and s.grad.abs().sum() > 0
    # widths that the adapter does not map are refused, with the fix named
    with pytest.raises(ValueError, match='student_channels=2'):
        loss(torch.randn(2, 4, 3, 3), t)
    with pytest.raises(ValueError, match='adapter=False'):
        PKDLoss(student_channels=2, teacher_channels=3, adapter=False)
