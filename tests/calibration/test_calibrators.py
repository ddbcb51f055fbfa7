"""The calibrator family: planted parameters and scikit-learn's isotonic fit."""
import io

import numpy as np
import pytest
import torch
from sklearn.isotonic import IsotonicRegression

from mmkdcal.calibration import classwise_ece
from mmkdcal.calibration.calibrators import apply_calibrator, fit_calibrator, isotonic_fit

A = torch.tensor([0.5, 1.5, 2.5], dtype=torch.float64)
B = torch.tensor([-1.0, 0.5, 1.5], dtype=torch.float64)


def _planted(n, seed, prob):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 3, generator=g, dtype=torch.float64) * 2
    p = prob(z)
    return z, p, torch.bernoulli(p, generator=g)


def test_platt_recovers_planted_per_class_maps():
    z, p, y = _planted(200_000, 0, lambda z: torch.sigmoid(A * z + B))
    s = fit_calibrator('platt', z, y, 'sigmoid')
    np.testing.assert_allclose(s['a'].numpy(), A.numpy(), rtol=0.02)
    np.testing.assert_allclose(s['b'].numpy(), B.numpy(), rtol=0.02)
    # soft targets (the IoU-style target) are matched exactly at the planted maps
    s = fit_calibrator('platt', z[:5000], p[:5000], 'sigmoid')
    np.testing.assert_allclose(s['a'].numpy(), A.numpy(), rtol=1e-4)
    np.testing.assert_allclose(apply_calibrator(s, z[:4]), A * z[:4] + B, rtol=1e-4, atol=1e-4)


def test_platt_is_vector_scaling_for_softmax_heads():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(200_000, 3, generator=g, dtype=torch.float64) * 2
    y = torch.multinomial(torch.softmax(A * z + B, 1), 1, generator=g).squeeze(1)
    s = fit_calibrator('platt', z, y, 'softmax')
    np.testing.assert_allclose(s['a'].numpy(), A.numpy(), rtol=0.02)
    # softmax does not see a common shift of b
    np.testing.assert_allclose((s['b'] - s['b'].mean()).numpy(), (B - B.mean()).numpy(),
                               atol=0.02)


def test_platt_keeps_the_identity_for_a_class_without_positives():
    z, _, y = _planted(2000, 2, lambda z: torch.sigmoid(A * z + B))
    y[:, 1] = 0
    s = fit_calibrator('platt', z, y, 'sigmoid')
    assert s['identity_classes'] == [1]
    assert (s['a'][1].item(), s['b'][1].item()) == (1.0, 0.0)


def test_isotonic_fit_equals_scikit_learn():
    rng = np.random.default_rng(0)
    x = np.round(rng.random(3000), 3)  # ties, as scores have
    y = (rng.random(3000) < x**2).astype(float)
    xs, ys = isotonic_fit(x, y)
    ref = IsotonicRegression(out_of_bounds='clip').fit(x, y)
    probe = np.linspace(-0.1, 1.1, 5001)
    np.testing.assert_allclose(np.interp(probe, xs, ys), ref.predict(probe), atol=1e-12)
    assert np.all(np.diff(ys) >= 0) and np.all(np.diff(xs) > 0)


def test_isotonic_undoes_a_planted_monotone_distortion_on_held_out_data():
    # the teacher reports sigmoid(z) but the truth is sigmoid(z) ** 3 (over-confident)
    z, p, y = _planted(100_000, 3, lambda z: torch.sigmoid(z) ** 3)
    s = fit_calibrator('isotonic', z[:50_000], y[:50_000], 'sigmoid')
    held_z, held_y = z[50_000:], y[50_000:]
    assert classwise_ece(torch.sigmoid(held_z), held_y) > 0.15
    calibrated = torch.sigmoid(apply_calibrator(s, held_z))
    assert classwise_ece(calibrated, held_y) <= 0.01
    # the probabilities the losses see are the fitted map's, clamped
    xs, ys = s['x'][0].numpy(), s['y'][0].numpy()
    want = np.clip(np.interp(torch.sigmoid(held_z[:50, 0]).numpy(), xs, ys), 1e-6, 1 - 1e-6)
    np.testing.assert_allclose(calibrated[:50, 0].numpy(), want, rtol=1e-9)


def test_isotonic_one_vs_rest_for_softmax_renormalises():
    g = torch.Generator().manual_seed(4)
    z = torch.randn(5000, 4, generator=g, dtype=torch.float64)
    y = torch.multinomial(torch.softmax(3 * z, 1), 1, generator=g).squeeze(1)
    s = fit_calibrator('isotonic', z, y, 'softmax')
    p = torch.softmax(apply_calibrator(s, z[:100]), 1)
    np.testing.assert_allclose(p.sum(1).numpy(), 1.0, atol=1e-9)
    # one class's probability is the renormalised map of its raw probability
    raw = torch.softmax(z[:100], 1).numpy()
    mapped = np.stack([np.clip(np.interp(raw[:, c], s['x'][c].numpy(), s['y'][c].numpy()),
                               1e-6, None) for c in range(4)], 1)
    np.testing.assert_allclose(p.numpy(), mapped / mapped.sum(1, keepdims=True), rtol=1e-9)


def test_calibrator_state_survives_a_weights_only_checkpoint():
    z, _, y = _planted(3000, 5, lambda z: torch.sigmoid(z) ** 2)
    for name in ('temperature', 'class_temperature', 'platt', 'isotonic'):
        s = fit_calibrator(name, z, y, 'sigmoid')
        buf = io.BytesIO()
        torch.save(s, buf)
        buf.seek(0)
        back = torch.load(buf, weights_only=True)
        assert back['calibrator'] == name
        torch.testing.assert_close(apply_calibrator(back, z[:10]), apply_calibrator(s, z[:10]))


def test_per_class_calibrators_on_one_score_per_detection():
    # detections of 3 classes, each with its own planted map of its one score logit
    g = torch.Generator().manual_seed(9)
    cls = torch.randint(0, 3, (150_000,), generator=g)
    z = torch.randn(150_000, generator=g, dtype=torch.float64) * 2
    y = torch.bernoulli(torch.sigmoid(A[cls] * z + B[cls]), generator=g)
    s = fit_calibrator('platt', z, y, 'sigmoid', classes=cls, num_classes=4)
    np.testing.assert_allclose(s['a'][:3].numpy(), A.numpy(), rtol=0.03)
    np.testing.assert_allclose(s['b'][:3].numpy(), B.numpy(), rtol=0.03)
    assert s['identity_classes'] == [3] and (s['a'][3].item(), s['b'][3].item()) == (1.0, 0.0)
    t = fit_calibrator('class_temperature', z, y, 'sigmoid', classes=cls, num_classes=4)['t']
    assert t.shape == (4,) and t[3].item() == 1.0
    # each class's temperature is the one fitted on that class's detections alone
    ref = fit_calibrator('temperature', z[cls == 1], y[cls == 1], 'sigmoid')['t']
    assert t[1].item() == pytest.approx(ref.item(), rel=1e-6)
    iso = fit_calibrator('isotonic', z, y, 'sigmoid', classes=cls, num_classes=4)
    logits = torch.stack([z[:20]] * 4, 1)  # the distiller applies it to (..., K) class logits
    out = torch.sigmoid(apply_calibrator(iso, logits))
    xs, ys = isotonic_fit(torch.sigmoid(z[cls == 2]).numpy(), y[cls == 2].numpy())
    want = np.clip(np.interp(torch.sigmoid(z[:20]).numpy(), xs, ys), 1e-6, 1 - 1e-6)
    np.testing.assert_allclose(out[:, 2].numpy(), want, rtol=1e-9)
    np.testing.assert_allclose(out[:, 3].numpy(), torch.sigmoid(z[:20]).numpy(), rtol=1e-9)
