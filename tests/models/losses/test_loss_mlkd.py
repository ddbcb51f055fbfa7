"""Tests for MLKDLoss (multi-level logit distillation, Jin et al. CVPR 2023)."""
import math

import pytest
import torch

from mmkdcal.models.losses import MLKDLoss


def _softmax(xs):
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [v / sum(e) for v in e]


S = [[0.0, 1.0], [2.0, 0.0]]
T = [[1.0, 0.0], [0.0, math.log(3.0)]]


def _parts(s, t, tau, keep=None):
    """Plain-python instance, batch and class terms for one temperature."""
    p = [_softmax([x / tau for x in row]) for row in s]
    q = [_softmax([x / tau for x in row]) for row in t]
    b, c = len(s), len(s[0])
    keep = list(range(b)) if keep is None else keep
    kl = [tau**2 * sum(qi * math.log(qi / pi) for qi, pi in zip(q[i], p[i])) for i in range(b)]
    instance = sum(kl[i] for i in keep) / len(keep) if keep else 0.0

    def gram(a, i, j):  # (P P^T)_ij
        return sum(a[i][k] * a[j][k] for k in range(c))

    def corr(a, k, m):  # (P^T P)_km
        return sum(a[i][k] * a[i][m] for i in range(b))

    batch = sum((gram(q, i, j) - gram(p, i, j))**2 for i in range(b) for j in range(b)) / b
    klass = sum((corr(q, k, m) - corr(p, k, m))**2 for k in range(c) for m in range(c)) / c
    return instance, batch, klass


@pytest.mark.parametrize('tau', [1.0, 2.0])
def test_each_part_hand_computed(tau):
    inst, batch, klass = _parts(S, T, tau)
    comps = MLKDLoss(temperatures=(tau, )).components(torch.tensor(S), torch.tensor(T))
    assert comps['instance'].item() == pytest.approx(inst, rel=1e-5)
    assert comps['batch'].item() == pytest.approx(batch, rel=1e-5)
    assert comps['class'].item() == pytest.approx(klass, rel=1e-5)


def test_non_square_batch_uses_batch_and_class_normalisers():
    # B=3 samples, C=2 classes: the batch term divides by B, the class term by C.
    s = [[0.0, 1.0], [2.0, 0.0], [0.5, -0.5]]
    t = [[1.0, 0.0], [0.0, math.log(3.0)], [-1.0, 1.0]]
    inst, batch, klass = _parts(s, t, 3.0)
    comps = MLKDLoss(temperatures=(3.0, )).components(torch.tensor(s), torch.tensor(t))
    assert comps['instance'].item() == pytest.approx(inst, rel=1e-5)
    assert comps['batch'].item() == pytest.approx(batch, rel=1e-5)
    assert comps['class'].item() == pytest.approx(klass, rel=1e-5)


def test_explicit_numbers():
    # Uniform student p = (1/2, 1/2); teacher q0 = (1/4, 3/4), q1 = (3/4, 1/4); tau = 1.
    # instance: KL = 1/4 ln(1/2) + 3/4 ln(3/2) for both rows.
    # batch: G^s = 1/2 everywhere; G^t = [[10/16, 6/16], [6/16, 10/16]] -> 4 * (1/8)^2 / B=2.
    # class: M^s = 1/2 everywhere; M^t = [[10/16, 6/16], [6/16, 10/16]] -> 4 * (1/8)^2 / C=2.
    s = torch.zeros(2, 2)
    t = torch.tensor([[0.0, math.log(3.0)], [math.log(3.0), 0.0]])
    comps = MLKDLoss(temperatures=(1.0, )).components(s, t)
    assert comps['instance'].item() == pytest.approx(
        0.25 * math.log(0.5) + 0.75 * math.log(1.5), rel=1e-6)
    assert comps['batch'].item() == pytest.approx(0.03125, rel=1e-6)
    assert comps['class'].item() == pytest.approx(0.03125, rel=1e-6)


def test_weights_and_temperature_average():
    temps = (1.0, 2.0, 3.0)
    parts = [_parts(S, T, tau) for tau in temps]
    inst = sum(p[0] for p in parts) / 3
    batch = sum(p[1] for p in parts) / 3
    klass = sum(p[2] for p in parts) / 3
    loss = MLKDLoss(temperatures=temps, instance_weight=0.5, batch_weight=2.0,
                    class_weight=3.0, loss_weight=0.1)(torch.tensor(S), torch.tensor(T))
    assert loss.item() == pytest.approx(0.1 * (0.5 * inst + 2.0 * batch + 3.0 * klass),
                                        rel=1e-5)


def test_confidence_mask_excludes_unconfident_samples_from_instance_term():
    # Teacher max probs: row 0 softmax(1, 0) -> 0.731; row 1 -> 0.75.
    s, t = torch.tensor(S), torch.tensor(T)
    only_row1 = MLKDLoss(temperatures=(2.0, ), min_teacher_conf=0.74).components(s, t)
    inst, batch, klass = _parts(S, T, 2.0, keep=[1])
    assert only_row1['instance'].item() == pytest.approx(inst, rel=1e-5)
    # The batch and class terms still use the whole batch.
    _, batch_all, class_all = _parts(S, T, 2.0)
    assert only_row1['batch'].item() == pytest.approx(batch_all, rel=1e-5)
    assert only_row1['class'].item() == pytest.approx(class_all, rel=1e-5)
    none_kept = MLKDLoss(temperatures=(2.0, ), min_teacher_conf=0.9).components(s, t)
    assert none_kept['instance'].item() == 0.0


def test_identical_logits_give_zero():
    x = torch.randn(4, 5)
    assert MLKDLoss()(x, x.clone()).item() == pytest.approx(0.0, abs=1e-6)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r'\(4, 3\).*\(4, 2\)'):
        MLKDLoss()(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match='non-empty batch'):
        MLKDLoss()(torch.randn(0, 3), torch.randn(0, 3))
    with pytest.raises(ValueError, match='temperatures'):
        MLKDLoss(temperatures=())
    with pytest.raises(ValueError, match=r'temperatures\[1\]'):
        MLKDLoss(temperatures=(1.0, 0.0))
    with pytest.raises(ValueError, match='min_teacher_conf'):
        MLKDLoss(min_teacher_conf=1.5)
