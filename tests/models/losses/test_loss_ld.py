"""Tests for LDLoss (localization distillation, Zheng et al. CVPR 2022)."""
import math

import pytest
import torch
from mmdet.models.losses import KnowledgeDistillationKLDivLoss

from mmkdcal.models.losses import LDLoss


def test_hand_computed_one_box():
    # Two bins per side (reg_max=1). Side 0: q = (1/4, 3/4), p = (1/2, 1/2); sides 1-3 agree.
    # KL / bins = (1/4 ln 1/2 + 3/4 ln 3/2) / 2; mean over 4 sides divides by 4.
    s = torch.zeros(1, 8)
    t = torch.zeros(1, 8)
    t[0, 1] = math.log(3.0)
    kl = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    loss = LDLoss(tau=1.0, loss_weight=1.0, reg_max=1)(s, t)
    assert loss.item() == pytest.approx(kl / 2 / 4, rel=1e-6)
    # tau=2 on doubled logits: same distributions, times tau^2 = 4.
    loss2 = LDLoss(tau=2.0, loss_weight=1.0)(s, 2 * t)
    assert loss2.item() == pytest.approx(4 * kl / 2 / 4, rel=1e-6)


def test_matches_mmdet_ld_head_usage():
    # mmdet's LDHead: KnowledgeDistillationKLDivLoss on (4M, n+1) rows, per-box weight
    # repeated over the 4 sides, avg_factor=4.
    torch.manual_seed(0)
    m, reg_max, tau = 5, 7, 10.0
    s = torch.randn(m, 4 * (reg_max + 1)) * 5
    t = torch.randn(m, 4 * (reg_max + 1)) * 5
    w = torch.rand(m)
    ref = KnowledgeDistillationKLDivLoss(loss_weight=0.25, T=tau)(
        s.reshape(-1, reg_max + 1), t.reshape(-1, reg_max + 1),
        weight=w[:, None].expand(-1, 4).reshape(-1), avg_factor=4.0)
    ours = LDLoss(tau=tau, loss_weight=0.25, reg_max=reg_max)(s, t, w, avg_factor=1.0)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)
    # Default mean reduction: the same sum divided by the number of boxes.
    assert LDLoss(tau=tau, loss_weight=0.25)(s, t, w).item() == pytest.approx(
        ref.item() / m, rel=1e-5)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r'\(3, 68\).*\(3, 64\)'):
        LDLoss()(torch.randn(3, 68), torch.randn(3, 64))
    with pytest.raises(ValueError, match='reg_max=16'):
        LDLoss(reg_max=16)(torch.randn(3, 64), torch.randn(3, 64))
    with pytest.raises(ValueError, match='4 \\* \\(reg_max \\+ 1\\)'):
        LDLoss()(torch.randn(3, 66), torch.randn(3, 66))
    with pytest.raises(ValueError, match='reg_max'):
        LDLoss(reg_max=0)
