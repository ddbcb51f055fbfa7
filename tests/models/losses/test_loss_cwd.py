"""Tests for CWDLoss (channel-wise distillation, Shu et al. ICCV 2021)."""
import math

import pytest
import torch

from mmkdcal.models.losses import CWDLoss


def test_hand_computed():
    # N=1, C=2, H=1, W=2. Channel 0: q = (1/4, 3/4) vs p = (1/2, 1/2); channel 1 equal.
    kl = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    s = torch.zeros(1, 2, 1, 2)
    t = torch.zeros(1, 2, 1, 2)
    t[0, 0, 0, 1] = math.log(3.0)
    assert CWDLoss(tau=1.0)(s, t).item() == pytest.approx(kl / 2, rel=1e-6)
    # tau=4 on 4x logits: same distributions, times tau^2 = 16.
    assert CWDLoss(tau=4.0, loss_weight=0.5)(s, 4 * t).item() == pytest.approx(
        0.5 * 16 * kl / 2, rel=1e-6)


def test_normalised_by_batch_and_channels():
    torch.manual_seed(0)
    s, t = torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)
    one = CWDLoss()(s, t).item()
    # Repeating the same sample / channels leaves the per-(n, c) average unchanged.
    assert CWDLoss()(s.repeat(2, 2, 1, 1), t.repeat(2, 2, 1, 1)).item() == pytest.approx(
        one, rel=1e-5)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r'\(2, 3, 4, 4\).*\(2, 3, 2, 2\)'):
        CWDLoss()(torch.randn(2, 3, 4, 4), torch.randn(2, 3, 2, 2))
    with pytest.raises(ValueError, match='tau'):
        CWDLoss(tau=0)


def test_standardise_makes_the_loss_invariant_to_per_channel_affine_changes():
    torch.manual_seed(3)
    s, t = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    scale = torch.tensor([0.1, 3.0, 10.0]).view(1, 3, 1, 1)
    shift = torch.tensor([5.0, -2.0, 0.5]).view(1, 3, 1, 1)
    loss = CWDLoss(standardise=True)
    assert loss(s * scale + shift, t).item() == pytest.approx(loss(s, t).item(), rel=1e-4)
    # and equals plain CWD on hand-standardised maps (over N, H, W, population std)

    def z(x):
        return (x - x.mean((0, 2, 3), keepdim=True)) / (
            x.var((0, 2, 3), unbiased=False, keepdim=True).sqrt() + 1e-6)
    assert loss(s, t).item() == pytest.approx(CWDLoss()(z(s), z(t)).item(), rel=1e-5)
    # without standardisation a scale change does change the spatial softmax
    assert CWDLoss()(s * scale, t).item() != pytest.approx(CWDLoss()(s, t).item(), rel=1e-2)
    with pytest.raises(TypeError, match='standardise'):
        CWDLoss(standardise=1)


def test_adapter_maps_student_width_to_teacher_width():
    torch.manual_seed(4)
    s, t = torch.randn(1, 2, 3, 3), torch.randn(1, 3, 3, 3)
    loss = CWDLoss(student_channels=2, teacher_channels=3, tau=2.0)
    assert loss.adapter.weight.shape == (3, 2, 1, 1) and loss.adapter.bias is None
    a = torch.tensor([[0.5, 0.0], [0.0, -1.0], [2.0, 1.0]])
    with torch.no_grad():
        loss.adapter.weight.copy_(a[..., None, None])
    mixed = torch.einsum('oc,nchw->nohw', a, s)
    assert loss(s, t).item() == pytest.approx(CWDLoss(tau=2.0)(mixed, t).item(), rel=1e-6)
    with pytest.raises(ValueError, match='different channel counts'):
        CWDLoss()(torch.randn(1, 2, 3, 3), t)
