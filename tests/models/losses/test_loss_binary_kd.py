"""Tests for BinaryKDLoss (per-class sigmoid KD, BCKD / QFL-style)."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.losses.gfocal_loss import quality_focal_loss_tensor_target

from mmkdcal.models.losses import BinaryKDLoss


def test_hand_computed_single_element():
    # s=0 -> p=1/2; t=ln 3 -> q=3/4. BCE = -(3/4 ln 1/2 + 1/4 ln 1/2) = ln 2.
    s, t = torch.zeros(1, 1), torch.tensor([[math.log(3.0)]])
    assert BinaryKDLoss(beta=0.0)(s, t).item() == pytest.approx(math.log(2.0), rel=1e-6)
    # beta=2: times |3/4 - 1/2|^2 = 1/16.
    assert BinaryKDLoss(beta=2.0)(s, t).item() == pytest.approx(math.log(2.0) / 16, rel=1e-6)
    # beta=1 with the teacher below the student: q = 1/4, p = 1/2, factor |1/4 - 1/2| = 1/4.
    assert BinaryKDLoss(beta=1.0)(s, -t).item() == pytest.approx(math.log(2.0) / 4, rel=1e-6)
    # tau=2 with doubled logits gives the same probabilities (no tau^2 factor).
    assert BinaryKDLoss(tau=2.0, beta=2.0)(s, 2 * t).item() == pytest.approx(
        math.log(2.0) / 16, rel=1e-6)


def test_sums_over_classes_and_averages_over_samples():
    # Row 0: classes (s=0,t=ln3) -> ln 2 and (s=0,t=0) -> ln 2; row 1: (s=0,t=0) twice.
    s = torch.zeros(2, 2)
    t = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]])
    assert BinaryKDLoss()(s, t).item() == pytest.approx(2 * math.log(2.0), rel=1e-6)
    per = BinaryKDLoss(beta=2.0, reduction='none')(s, t)
    assert per.tolist() == pytest.approx([math.log(2.0) / 16, 0.0], abs=1e-7)


@pytest.mark.parametrize('avg_factor', [None, 3.0])
def test_beta2_tau1_matches_mmdet_soft_target_qfl(avg_factor):
    torch.manual_seed(0)
    s, t = torch.randn(6, 4) * 2, torch.randn(6, 4) * 2
    w = torch.rand(6)
    ref = quality_focal_loss_tensor_target(
        s, t.sigmoid(), w, reduction='mean', avg_factor=avg_factor, beta=2.0)
    ours = BinaryKDLoss(tau=1.0, beta=2.0)(s, t, w, avg_factor=avg_factor)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)


def test_beta0_matches_torch_bce_with_soft_target():
    torch.manual_seed(1)
    s, t = torch.randn(5, 3) * 3, torch.randn(5, 3) * 3
    tau = 2.0
    ref = F.binary_cross_entropy_with_logits(s / tau, (t / tau).sigmoid(),
                                             reduction='none').sum(1).mean()
    assert BinaryKDLoss(tau=tau)(s, t).item() == pytest.approx(ref.item(), rel=1e-6)


def test_per_class_and_per_sample_weights():
    torch.manual_seed(2)
    s, t = torch.randn(4, 3), torch.randn(4, 3)
    w = torch.tensor([0.0, 1.0, 2.0, 0.5])
    loss = BinaryKDLoss(beta=2.0)
    assert loss(s, t, w).item() == pytest.approx(
        loss(s, t, w[:, None].expand(4, 3)).item(), rel=1e-6)
    # A (M, K) weight that zeroes classes 1..2 leaves only class 0.
    wk = torch.zeros(4, 3)
    wk[:, 0] = 1.0
    assert loss(s, t, wk).item() == pytest.approx(loss(s[:, :1], t[:, :1]).item(), rel=1e-6)


def test_saturated_logits_stay_finite():
    s = torch.tensor([[100.0]], requires_grad=True)
    loss = BinaryKDLoss()(s, torch.tensor([[-100.0]]))
    loss.backward()
    # BCE(logit 100, target ~0) = 100 + log(1 + e^-100) ~ 100.
    assert loss.item() == pytest.approx(100.0, rel=1e-5)
    assert torch.isfinite(s.grad).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match=r'\(3, 4\).*\(2, 4\)'):
        BinaryKDLoss()(torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match='weight'):
        BinaryKDLoss()(torch.randn(3, 4), torch.randn(3, 4), torch.ones(3, 5))
    with pytest.raises(ValueError, match='beta'):
        BinaryKDLoss(beta=0.5)
    with pytest.raises(ValueError, match='tau'):
        BinaryKDLoss(tau=-1.0)
