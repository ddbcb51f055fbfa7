"""Reliability diagrams: valid PNGs whose annotated numbers are the metrics of the data."""
import numpy as np
import pytest
import torch
from PIL import Image

from mmkdcal.calibration import (ace, binary_ece, classwise_ece, ece, reliability_diagram,
                                 reliability_diagram_before_after, reliability_stats)


def _check_png(path, min_w=300, min_h=300):
    with open(path, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        w, h = im.size
        assert min_w <= w <= 3000 and min_h <= h <= 3000
        pixels = np.asarray(im.convert('L'))
    assert pixels.std() > 10  # not a blank canvas


def test_reliability_diagram_top_label(tmp_path):
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(3000, 6, generator=g)
    labels = torch.multinomial(torch.softmax(logits / 2, 1), 1, generator=g).squeeze(1)
    probs = torch.softmax(logits, 1)
    out = reliability_diagram(probs, labels, tmp_path / 'sub' / 'r.png', n_bins=10, title='t')
    _check_png(out['path'])
    assert out['kind'] == 'top-label' and out['n'] == 3000
    assert out['ece'] == ece(probs, labels, 10)
    assert out['ace'] == ace(probs, labels, 10)
    # the bars are the per-bin accuracy / confidence of the top label
    conf, pred = probs.max(1)
    b = np.minimum((conf.numpy() * 10).astype(int), 9)
    for i in range(10):
        sel = b == i
        assert out['bin_count'][i] == sel.sum()
        if sel.any():
            assert out['bin_acc'][i] == pytest.approx((pred == labels).numpy()[sel].mean())
            assert out['bin_conf'][i] == pytest.approx(conf.numpy()[sel].mean(), rel=1e-6)
    # weighted bar gaps reproduce the ECE (no confidence is exactly 1 here)
    gaps = np.abs(np.array(out['bin_acc']) - out['bin_conf']) * out['bin_count']
    assert gaps.sum() / 3000 == pytest.approx(out['ece'], abs=1e-6)


def test_reliability_diagram_binary_and_classwise(tmp_path):
    scores = torch.tensor([0.1, 0.3, 0.35, 0.8, 0.9, 0.95])
    matched = torch.tensor([0, 1, 0, 1, 1, 0])
    out = reliability_diagram(scores, matched, str(tmp_path / 'det.png'), n_bins=2)
    _check_png(out['path'])
    assert out['kind'] == 'binary'
    assert out['bin_count'] == [3, 3]
    assert out['bin_acc'] == pytest.approx([1 / 3, 2 / 3])
    assert out['bin_conf'] == pytest.approx([0.25, 2.65 / 3])
    assert out['ece'] == pytest.approx(binary_ece(scores, matched, 2))
    assert out['ece'] == pytest.approx((abs(1 / 3 - 0.25) + abs(2 / 3 - 2.65 / 3)) / 2)
    sig = torch.rand(400, 3, generator=torch.Generator().manual_seed(1))
    tgt = (sig > 0.5).float()
    stats = reliability_stats(sig, tgt, 5)
    assert stats['kind'] == 'class-wise' and stats['n'] == 1200
    assert stats['ece'] == classwise_ece(sig, tgt, 5)


def test_before_after_reports_both_temperatures(tmp_path):
    g = torch.Generator().manual_seed(2)
    logits = 3 * torch.randn(4000, 5, generator=g)
    labels = torch.multinomial(torch.softmax(logits / 2, 1), 1, generator=g).squeeze(1)
    out = reliability_diagram_before_after(logits, labels, torch.tensor(2.0),
                                           tmp_path / 'ba.png', n_bins=15)
    _check_png(out['path'], min_w=600)
    assert out['temperature'] == 2.0
    assert out['before']['ece'] == pytest.approx(ece(torch.softmax(logits, 1), labels))
    assert out['after']['ece'] == pytest.approx(ece(torch.softmax(logits / 2, 1), labels))
    assert out['after']['ece'] < 0.3 * out['before']['ece']
    # sigmoid: 1-D detection confidences and per-class (N, K)
    targets = torch.bernoulli(torch.sigmoid(logits / 2), generator=g)
    out = reliability_diagram_before_after(logits[:, 0], targets[:, 0], 2.0, tmp_path / 's.png',
                                           mode='sigmoid')
    assert out['after']['ece'] == pytest.approx(
        binary_ece(torch.sigmoid(logits[:, 0] / 2), targets[:, 0]))
    t = torch.tensor([1.0, 2.0, 2.0, 3.0, 2.0])
    out = reliability_diagram_before_after(logits, targets, t, tmp_path / 'k.png', mode='sigmoid')
    assert out['temperature'] == t.tolist()
    assert out['after']['ece'] == pytest.approx(classwise_ece(torch.sigmoid(logits / t), targets))


def test_reliability_bad_arguments(tmp_path):
    probs = torch.softmax(torch.randn(20, 3, generator=torch.Generator().manual_seed(0)), 1)
    labels = torch.arange(20) % 3
    with pytest.raises(ValueError, match='`path` must end with .png'):
        reliability_diagram(probs, labels, tmp_path / 'r.jpg')
    with pytest.raises(ValueError, match='`temperature` must be > 0'):
        reliability_diagram_before_after(torch.randn(20, 3), labels, -1.0, tmp_path / 'r.png')
    with pytest.raises(ValueError, match='needs 3 entries'):
        reliability_diagram_before_after(torch.randn(20, 3), labels, torch.ones(2),
                                         tmp_path / 'r.png')
