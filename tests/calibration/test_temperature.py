"""Temperature scaling recovers planted temperatures and rejects degenerate input."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmkdcal.calibration import (TemperatureScaler, ace, classwise_ece, ece, fit_temperature)

N, K = 200_000, 10


@pytest.fixture(scope='module')
def logits():
    torch.set_num_threads(1)
    return 3 * torch.randn(N, K, generator=torch.Generator().manual_seed(0))


def _softmax_labels(z, t, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.multinomial(torch.softmax(z / t, dim=1), 1, generator=g).squeeze(1)


def _bernoulli(z, t, seed=2):
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.sigmoid(z / t), generator=g)


def test_softmax_nll_recovers_planted_temperature(logits):
    labels = _softmax_labels(logits, 2.0)
    t = fit_temperature(logits, labels)
    assert t.shape == () and t.dtype == torch.float32
    assert abs(t.item() - 2.0) / 2.0 < 0.02
    # the fit is the NLL minimum: no temperature on a fine grid around it does better
    z = logits.double()
    best = F.cross_entropy(z / t.double(), labels).item()
    grid = torch.tensor([0.98, 0.995, 0.999, 1.001, 1.005, 1.02], dtype=torch.float64) * t
    assert best <= min(F.cross_entropy(z / g, labels).item() for g in grid) + 1e-12


def test_sigmoid_nll_recovers_planted_temperature(logits):
    targets = _bernoulli(logits, 2.0)
    t = fit_temperature(logits, targets, mode='sigmoid')
    assert abs(t.item() - 2.0) / 2.0 < 0.02
    # 1-D logits with binary targets (one confidence per detection)
    t1 = fit_temperature(logits[:, 0], targets[:, 0].bool(), mode='sigmoid')
    assert abs(t1.item() - 2.0) / 2.0 < 0.05
    # numpy input gives the same answer
    assert fit_temperature(logits[:5000].numpy(), targets[:5000].numpy(), mode='sigmoid') \
        .item() == pytest.approx(fit_temperature(logits[:5000], targets[:5000],
                                                 mode='sigmoid').item(), rel=1e-6)


def test_sigmoid_int_labels_with_background_equal_onehot_targets(logits):
    z = logits[:20000]
    with_bg = torch.cat([z, torch.zeros(20000, 1)], 1)  # background logit 0, label K
    labels = _softmax_labels(with_bg, 2.0, seed=3)
    assert 0 < (labels == K).sum() < 20000
    onehot = F.one_hot(labels, K + 1)[:, :K]  # label K = background = all-zero row
    for objective in ('nll', 'ece'):
        a = fit_temperature(z, labels, mode='sigmoid', objective=objective)
        b = fit_temperature(z, onehot, mode='sigmoid', objective=objective)
        assert a.item() == pytest.approx(b.item(), rel=1e-6)


def test_per_class_temperatures_are_recovered(logits):
    planted = torch.linspace(0.5, 3.0, K)
    labels = _softmax_labels(logits, planted)
    t = fit_temperature(logits, labels, per_class=True)
    assert t.shape == (K,)
    assert ((t - planted).abs() / planted).max() < 0.05
    targets = _bernoulli(logits, planted)
    t = fit_temperature(logits, targets, mode='sigmoid', per_class=True)
    assert ((t - planted).abs() / planted).max() < 0.05
    z, targets = logits[:100000], targets[:100000]  # the searches are slower than L-BFGS
    for objective in ('ece', 'ace'):
        t = fit_temperature(z, targets, mode='sigmoid', objective=objective, per_class=True)
        assert ((t - planted).abs() / planted).max() < 0.08, objective


def test_ece_objective_recovers_planted_temperature_and_minimises_ece(logits):
    labels = _softmax_labels(logits, 2.0)
    targets = _bernoulli(logits, 2.0)
    t = fit_temperature(logits, labels, objective='ece')
    assert abs(t.item() - 2.0) / 2.0 < 0.03
    t = fit_temperature(logits, targets, mode='sigmoid', objective='ece')
    assert abs(t.item() - 2.0) / 2.0 < 0.03
    # the search finds the minimum of the metric itself: no point of a fine grid does better
    z, labels, targets = logits[:20000], labels[:20000], targets[:20000]
    grid = torch.exp(torch.linspace(np.log(0.05), np.log(20), 61))
    t = fit_temperature(z, labels, objective='ece')
    found = ece(torch.softmax(z / t, 1), labels)
    assert found <= min(ece(torch.softmax(z / g, 1), labels) for g in grid) + 1e-6
    t = fit_temperature(z, targets, mode='sigmoid', objective='ece')
    found = classwise_ece(torch.sigmoid(z / t), targets)
    assert found <= min(classwise_ece(torch.sigmoid(z / g), targets) for g in grid) + 1e-6


def test_ace_objective_recovers_planted_temperature(logits):
    z = logits[:30000]  # softmax ACE sorts the probabilities at every step of the search
    labels = _softmax_labels(z, 2.0)
    t = fit_temperature(z, labels, objective='ace')
    assert abs(t.item() - 2.0) / 2.0 < 0.05
    # bounded search: the fitted T is at least as good as T=1 and T=4
    found = ace(torch.softmax(z / t, 1), labels)
    assert found <= min(ace(torch.softmax(z / g, 1), labels) for g in (1.0, 1.8, 2.2, 4.0))
    t = fit_temperature(logits, _bernoulli(logits, 2.0), mode='sigmoid', objective='ace')
    assert abs(t.item() - 2.0) / 2.0 < 0.03


def test_temperature_scaler_wraps_fit(logits):
    z = logits[:20000]
    labels = _softmax_labels(z, 1.5)
    scaler = TemperatureScaler()
    with pytest.raises(RuntimeError, match='not fitted'):
        scaler.temperature
    out = scaler.fit_transform(z, labels)
    assert scaler.temperature.item() == pytest.approx(fit_temperature(z, labels).item())
    torch.testing.assert_close(out, z / scaler.temperature)
    per_class = TemperatureScaler(per_class=True).fit(z, labels)
    torch.testing.assert_close(per_class.transform(z[:3]), z[:3] / per_class.temperature)
    with pytest.raises(ValueError, match='K=10'):
        per_class.transform(z[:, :5])


def test_degenerate_inputs_fail_clearly():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(100, 4, generator=g)
    y = torch.randint(0, 4, (100,), generator=g)
    with pytest.raises(ValueError, match='`logits` is empty'):
        fit_temperature(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match='single class'):
        fit_temperature(z, torch.full((100,), 2))
    with pytest.raises(ValueError, match='no positive'):
        fit_temperature(z, torch.zeros(100, 4), mode='sigmoid')
    with pytest.raises(ValueError, match='no positive'):
        fit_temperature(z, torch.full((100,), 4), mode='sigmoid')  # all background
    bad = z.clone()
    bad[3, 1] = float('nan')
    with pytest.raises(ValueError, match='`logits` contains NaN'):
        fit_temperature(bad, y)
    bad[3, 1] = float('inf')
    with pytest.raises(ValueError, match='`logits` contains NaN or inf'):
        fit_temperature(bad, y)
    with pytest.raises(ValueError, match=r'`targets` must have shape \(100,\)'):
        fit_temperature(z, y[:50])
    with pytest.raises(ValueError, match=r'`targets` must have shape \(100, 4\)'):
        fit_temperature(z, torch.zeros(100, 3), mode='sigmoid')
    with pytest.raises(ValueError, match=r'`targets` must lie in \[0, 3\]'):
        fit_temperature(z, y + 1)
    with pytest.raises(ValueError, match=r'`targets` must lie in \[0, 4\]'):
        fit_temperature(z, y + 2, mode='sigmoid')
    with pytest.raises(ValueError, match='classes \\[3\\] have no sample'):
        fit_temperature(z, y % 3, per_class=True)
    with pytest.raises(ValueError, match="objective='nll' only"):
        fit_temperature(z, y, per_class=True, objective='ece')
    with pytest.raises(ValueError, match='`mode`'):
        fit_temperature(z, y, mode='relu')
    with pytest.raises(ValueError, match='`objective`'):
        fit_temperature(z, y, objective='mse')
    with pytest.raises(ValueError, match='`bounds`'):
        fit_temperature(z, y, objective='ece', bounds=(2.0, 1.0))
    with pytest.raises(ValueError, match='K >= 2'):
        fit_temperature(z[:, :1], torch.zeros(100, dtype=torch.long))
    # perfectly separated data: the NLL falls forever as T -> 0
    sep = torch.zeros(100, 4)
    sep[torch.arange(100), y] = 5.0
    with pytest.raises(ValueError, match='perfectly separated'):
        fit_temperature(sep, y)
    with pytest.raises(ValueError, match='perfectly separated'):
        fit_temperature(sep - 2.5, F.one_hot(y, 4), mode='sigmoid')
    # ... a bounded objective still works there
    assert fit_temperature(sep, y, objective='ece').item() == pytest.approx(0.05, rel=1e-6)
    # inverted signal (the label is always the lowest logit): the optimum runs off to T -> inf
    z = torch.randn(2000, 4, generator=g)
    with pytest.raises(ValueError, match='degenerate'):
        fit_temperature(z, z.argmin(1))
    with pytest.raises(ValueError, match='degenerate'):
        fit_temperature(z, (z < 0).float(), mode='sigmoid')
