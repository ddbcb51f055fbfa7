"""Tests for KDLoss (softmax KD, Hinton et al. 2015)."""
import math

import pytest
import torch
from mmdet.models.losses import KnowledgeDistillationKLDivLoss

from mmkdcal.models.losses import KDLoss


def _softmax(xs):
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [v / sum(e) for v in e]


def _kd(s, t, tau):
    """Plain-python KL(softmax(t/tau) || softmax(s/tau)) * tau^2."""
    p = _softmax([x / tau for x in s])
    q = _softmax([x / tau for x in t])
    return tau**2 * sum(qi * math.log(qi / pi) for qi, pi in zip(q, p))


def test_hand_computed_two_classes():
    # q = (1/4, 3/4), p = (1/2, 1/2): KL = 1/4 ln(1/2) + 3/4 ln(3/2) = 0.1308120...
    expected = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    loss = KDLoss(tau=1.0)(torch.zeros(1, 2), torch.tensor([[0.0, math.log(3.0)]]))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(0.1308120, abs=1e-6)
    # tau=2 on doubled teacher logits: same softmax, times tau^2 = 4.
    loss2 = KDLoss(tau=2.0)(torch.zeros(1, 2), torch.tensor([[0.0, 2 * math.log(3.0)]]))
    assert loss2.item() == pytest.approx(4 * expected, rel=1e-6)


def test_plain_math_batch_with_weights_and_avg_factor():
    s = [[0.3, -1.2, 2.0], [1.0, 0.0, -0.5]]
    t = [[1.5, 0.2, -0.7], [0.1, 0.4, 2.2]]
    w = [0.5, 2.0]
    tau = 3.0
    per = [_kd(a, b, tau) for a, b in zip(s, t)]
    loss_fn = KDLoss(tau=tau, loss_weight=1.5)
    st, tt, wt = torch.tensor(s), torch.tensor(t), torch.tensor(w)
    assert loss_fn(st, tt).item() == pytest.approx(1.5 * sum(per) / 2, rel=1e-5)
    assert loss_fn(st, tt, wt).item() == pytest.approx(
        1.5 * (w[0] * per[0] + w[1] * per[1]) / 2, rel=1e-5)
    assert loss_fn(st, tt, wt, avg_factor=4.0).item() == pytest.approx(
        1.5 * (w[0] * per[0] + w[1] * per[1]) / 4.0, rel=1e-5)
    none = KDLoss(tau=tau, reduction='none')(st, tt, wt)
    assert none.tolist() == pytest.approx([w[0] * per[0], w[1] * per[1]], rel=1e-5)
    total = KDLoss(tau=tau, reduction='sum')(st, tt)
    assert total.item() == pytest.approx(sum(per), rel=1e-5)


@pytest.mark.parametrize('tau', [1.0, 4.0])
def test_matches_mmdet_kl_div_loss_times_num_classes(tau):
    # mmdet averages the KL over classes; ours sums it (a true KL divergence).
    torch.manual_seed(0)
    s, t = torch.randn(7, 5) * 3, torch.randn(7, 5) * 3
    w = torch.rand(7)
    ref = KnowledgeDistillationKLDivLoss(T=tau)
    ours = KDLoss(tau=tau)
    assert ours(s, t, w).item() == pytest.approx(5 * ref(s, t, w).item(), rel=1e-5)
    assert ours(s, t, w, avg_factor=3.0).item() == pytest.approx(
        5 * ref(s, t, w, avg_factor=3.0).item(), rel=1e-5)
    assert KDLoss(tau=tau, reduction='none')(s, t).numpy() == pytest.approx(
        5 * ref(s, t, reduction_override='none').numpy(), rel=1e-5)


def test_identical_logits_give_zero_and_loss_is_non_negative():
    torch.manual_seed(1)
    x = torch.randn(4, 6)
    assert KDLoss()(x, x.clone()).item() == pytest.approx(0.0, abs=1e-6)
    assert KDLoss(reduction='none')(torch.randn(50, 6), torch.randn(50, 6)).min() >= 0


def test_empty_batch_gives_connected_zero():
    s = torch.zeros(0, 4, requires_grad=True)
    loss = KDLoss()(s, torch.zeros(0, 4))
    loss.backward()
    assert loss.item() == 0.0 and s.grad.shape == (0, 4)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r'\(3, 4\).*\(3, 5\)'):
        KDLoss()(torch.randn(3, 4), torch.randn(3, 5))
    with pytest.raises(ValueError, match='student_logits'):
        KDLoss()(torch.randn(3, 4, 2), torch.randn(3, 4, 2))
    with pytest.raises(ValueError, match='weight'):
        KDLoss()(torch.randn(3, 4), torch.randn(3, 4), torch.ones(4))
    with pytest.raises(ValueError, match='avg_factor'):
        KDLoss(reduction='sum')(torch.randn(3, 4), torch.randn(3, 4), avg_factor=2.0)
    with pytest.raises(TypeError, match='teacher_logits'):
        KDLoss()(torch.randn(3, 4), torch.ones(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match='tau'):
        KDLoss(tau=0.0)
    with pytest.raises(ValueError, match='reduction'):
        KDLoss(reduction='avg')
    with pytest.raises(ValueError, match='loss_weight'):
        KDLoss(loss_weight=-1.0)
