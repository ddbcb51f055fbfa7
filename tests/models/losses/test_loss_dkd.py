"""Tests for DKDLoss (decoupled KD, Zhao et al. CVPR 2022)."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmkdcal.models.losses import DKDLoss, KDLoss


def _softmax(xs):
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [v / sum(e) for v in e]


def _kl(q, p):
    return sum(qi * math.log(qi / pi) for qi, pi in zip(q, p))


def _tckd_nckd(s, t, g, tau):
    """Plain-python TCKD and NCKD of one sample (without the tau^2 factor)."""
    p = _softmax([x / tau for x in s])
    q = _softmax([x / tau for x in t])
    tckd = _kl([q[g], 1 - q[g]], [p[g], 1 - p[g]])
    p_hat = [p[c] / (1 - p[g]) for c in range(len(s)) if c != g]
    q_hat = [q[c] / (1 - q[g]) for c in range(len(s)) if c != g]
    return tckd, _kl(q_hat, p_hat)


S = [[1.0, 2.0, 0.5], [0.2, -1.0, 1.5]]
T = [[3.0, 0.5, -1.0], [-0.5, 0.0, 2.5]]
LABELS = [0, 2]


def test_hand_computed_2x3():
    tau, alpha, beta = 2.0, 1.0, 8.0
    parts = [_tckd_nckd(s, t, g, tau) for s, t, g in zip(S, T, LABELS)]
    expected = sum(alpha * a + beta * b for a, b in parts) / 2 * tau**2
    loss = DKDLoss(alpha=alpha, beta=beta, tau=tau)(
        torch.tensor(S), torch.tensor(T), torch.tensor(LABELS))
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # The two parts separately (alpha/beta switch them on and off).
    tckd = DKDLoss(alpha=1.0, beta=0.0, tau=tau)(
        torch.tensor(S), torch.tensor(T), torch.tensor(LABELS))
    nckd = DKDLoss(alpha=0.0, beta=1.0, tau=tau)(
        torch.tensor(S), torch.tensor(T), torch.tensor(LABELS))
    assert tckd.item() == pytest.approx(sum(a for a, _ in parts) / 2 * tau**2, rel=1e-5)
    assert nckd.item() == pytest.approx(sum(b for _, b in parts) / 2 * tau**2, rel=1e-5)


def test_matches_large_negative_mask_formulation():
    # The paper's implementation: NCKD from softmax(logits / tau - 1000 * gt_mask).
    torch.manual_seed(0)
    s, t = torch.randn(6, 5), torch.randn(6, 5)
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    tau = 4.0
    gt = F.one_hot(labels, 5).float()
    nckd_ref = F.kl_div(F.log_softmax(s / tau - 1000.0 * gt, dim=1),
                        F.softmax(t / tau - 1000.0 * gt, dim=1),
                        reduction='sum') * tau**2 / 6
    ours = DKDLoss(alpha=0.0, beta=1.0, tau=tau)(s, t, labels)
    assert ours.item() == pytest.approx(nckd_ref.item(), rel=1e-4)


def test_decomposition_recovers_classic_kd():
    # Zhao et al. Eq. (4): KD = TCKD + (1 - q_g) NCKD, per sample.
    s, t, g, tau = torch.tensor([S[0]]), torch.tensor([T[0]]), torch.tensor([0]), 3.0
    q_g = F.softmax(t / tau, dim=1)[0, 0].item()
    dkd = DKDLoss(alpha=1.0, beta=1 - q_g, tau=tau)(s, t, g)
    assert dkd.item() == pytest.approx(KDLoss(tau=tau)(s, t).item(), rel=1e-5)


def test_weight_and_avg_factor():
    tau = 1.0
    parts = [_tckd_nckd(s, t, g, tau) for s, t, g in zip(S, T, LABELS)]
    per = [a + 8.0 * b for a, b in parts]
    args = (torch.tensor(S), torch.tensor(T), torch.tensor(LABELS))
    w = torch.tensor([2.0, 0.0])
    assert DKDLoss(tau=tau)(*args, weight=w).item() == pytest.approx(2 * per[0] / 2, rel=1e-5)
    assert DKDLoss(tau=tau, loss_weight=0.5)(*args, avg_factor=4.0).item() == pytest.approx(
        0.5 * sum(per) / 4.0, rel=1e-5)


def test_linear_warmup():
    args = (torch.tensor(S), torch.tensor(T), torch.tensor(LABELS))
    full = DKDLoss()(*args).item()
    loss = DKDLoss(warmup_iters=10)
    assert loss.needs_iter is True and DKDLoss().needs_iter is False
    assert loss(*args, cur_iter=4).item() == pytest.approx(0.5 * full, rel=1e-6)
    assert loss(*args, cur_iter=0).item() == pytest.approx(0.1 * full, rel=1e-6)
    assert loss(*args, cur_iter=500).item() == pytest.approx(full, rel=1e-6)
    with pytest.raises(ValueError, match='cur_iter'):
        loss(*args)
    with pytest.raises(ValueError, match='cur_iter must be a non-negative int'):
        loss(*args, cur_iter=-1)


def test_confident_teacher_stays_finite():
    # Teacher puts ~all mass on the gt class: 1 - q_g underflows towards 0.
    s = torch.randn(2, 4, requires_grad=True)
    t = torch.tensor([[80.0, 0.0, 0.0, 0.0], [0.0, 0.0, 90.0, 0.0]])
    loss = DKDLoss(tau=1.0)(s, t, torch.tensor([0, 2]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()


def test_bad_inputs():
    s, t = torch.randn(3, 4), torch.randn(3, 4)
    with pytest.raises(ValueError, match=r'\(3, 4\).*\(3, 5\)'):
        DKDLoss()(s, torch.randn(3, 5), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match='labels'):
        DKDLoss()(s, t, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r'labels must lie in \[0, 4\)'):
        DKDLoss()(s, t, torch.tensor([0, 1, 4]))
    with pytest.raises(TypeError, match='labels'):
        DKDLoss()(s, t, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match='warmup_iters'):
        DKDLoss(warmup_iters=-1)
    with pytest.raises(ValueError, match='at least 2 classes'):
        DKDLoss()(torch.randn(3, 1), torch.randn(3, 1), torch.zeros(3, dtype=torch.long))
