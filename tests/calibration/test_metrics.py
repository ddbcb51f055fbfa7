"""Classification calibration metrics against torchmetrics, numpy references and hand values."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import (binary_calibration_error,
                                                    multiclass_calibration_error)

from mmkdcal.calibration import (ace, ace_over_under, binary_ece, brier, classwise_ece, ece,
                                 ece_over_under, mce, nll)
from mmkdcal.calibration._binning import equal_width_index, equal_width_index_np


def _softmax_data(n=1000, k=7, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    probs = (scale * torch.randn(n, k, generator=g)).softmax(1)
    labels = torch.randint(0, k, (n,), generator=g)
    return probs, labels


def _ace_reference(probs, targets, n_bins):
    """Nixon et al. 2019 written the slow way: per class, sort, numpy.array_split, average."""
    probs = np.asarray(probs, dtype=np.float64)
    targets = np.asarray(targets)
    if targets.ndim == 1:
        targets = np.eye(probs.shape[1])[targets]
    gaps = []
    for k in range(probs.shape[1]):
        order = np.argsort(probs[:, k], kind='stable')
        for p, y in zip(np.array_split(probs[order, k], n_bins),
                        np.array_split(targets[order, k], n_bins)):
            gaps.append(abs(y.mean() - p.mean()))
    return float(np.mean(gaps))


@pytest.mark.parametrize('n_bins', [1, 2, 10, 15, 33])
def test_ece_and_mce_equal_torchmetrics(n_bins):
    probs, labels = _softmax_data()
    for norm, fn in (('l1', ece), ('max', mce)):
        ref = multiclass_calibration_error(probs, labels, probs.shape[1], n_bins=n_bins, norm=norm)
        assert fn(probs, labels, n_bins) == pytest.approx(ref.item(), abs=1e-6)
    # exact float64 reference (torchmetrics accumulates in float32, hence its 1e-6 tolerance)
    conf, pred = probs.double().max(1)
    correct = (pred == labels).double().numpy()
    edges = np.linspace(0, 1, n_bins + 1)
    b = np.searchsorted(edges, conf.numpy(), side='right') - 1
    gaps = [abs(correct[b == i].mean() - conf.numpy()[b == i].mean()) for i in np.unique(b)]
    weights = [np.mean(b == i) for i in np.unique(b)]
    assert ece(probs.double(), labels, n_bins) == pytest.approx(np.dot(gaps, weights), abs=1e-12)
    assert mce(probs.double(), labels, n_bins) == pytest.approx(max(gaps), abs=1e-12)


def test_ece_bin_edges_and_saturated_confidences_follow_torchmetrics():
    # confidences exactly on bin edges and exactly 1.0 (torchmetrics gives 1.0 a bin of its own)
    k = 4
    conf = torch.tensor([1.0, 1.0, 1.0, 0.5, 0.5, 0.4, 0.6, 0.3, 0.9, 0.8], dtype=torch.float32)
    rest = (1 - conf) / (k - 1)
    probs = rest[:, None].repeat(1, k)
    probs[:, 0] = conf
    labels = torch.tensor([0, 0, 1, 0, 2, 0, 1, 0, 0, 3])
    for n_bins in (2, 5, 10):
        ref = multiclass_calibration_error(probs, labels, k, n_bins=n_bins, norm='l1').item()
        assert ece(probs, labels, n_bins) == pytest.approx(ref, abs=1e-7)
    # hand value, n_bins=2: bin [0.5, 1) holds 0.5, 0.5, 0.6, 0.9, 0.8 (acc 2/5, conf 0.66),
    # bin [0, 0.5) holds 0.4, 0.3 (acc 1, conf 0.35), bin {1.0} holds three (acc 2/3, conf 1)
    hand = (5 * abs(0.4 - 0.66) + 2 * abs(1 - 0.35) + 3 * abs(2 / 3 - 1)) / 10
    assert ece(probs, labels, 2) == pytest.approx(hand, abs=1e-7)


def test_top_label_ties_follow_torchmetrics():
    # tied maxima: the first maximal class is the prediction (torch.max / numpy.argmax)
    probs = torch.tensor([[0.5, 0.5, 0.0], [0.4, 0.2, 0.4], [0.25, 0.5, 0.25], [0.5, 0.5, 0.0]])
    labels = torch.tensor([1, 0, 1, 0])  # wrong, right, right, right
    ref = multiclass_calibration_error(probs, labels, 3, n_bins=4, norm='l1').item()
    assert ece(probs, labels, 4) == pytest.approx(ref, abs=1e-7)
    # bin [0.25, 0.5): 0.4 right -> 0.6; bin [0.5, 0.75): three at 0.5, two right -> 1/6
    assert ece(probs, labels, 4) == pytest.approx((0.6 + 3 * (2 / 3 - 0.5)) / 4)


def test_ece_over_under_splits_ece():
    probs, labels = _softmax_data(scale=4.0, seed=1)  # over-confident: random labels
    e_o, e_u = ece_over_under(probs, labels, 15)
    assert e_o + e_u == pytest.approx(ece(probs, labels, 15), abs=1e-12)
    assert e_o > 0.3 and e_u < 0.01
    # hand case, 2 bins: bin0 conf 0.4 acc 1 (under), bin1 conf 0.8 acc 0 (over)
    probs = torch.tensor([[0.4, 0.3, 0.3], [0.8, 0.1, 0.1]])
    labels = torch.tensor([0, 1])
    assert ece_over_under(probs, labels, 2) == pytest.approx((0.8 / 2, 0.6 / 2))
    assert mce(probs, labels, 2) == pytest.approx(0.8)


def test_binary_and_classwise_ece_equal_torchmetrics():
    g = torch.Generator().manual_seed(3)
    p = torch.rand(3000, generator=g)
    y = (torch.rand(3000, generator=g) < p**2).long()
    for n_bins in (5, 15):
        ref = binary_calibration_error(p, y, n_bins=n_bins, norm='l1').item()
        assert binary_ece(p, y, n_bins) == pytest.approx(ref, abs=1e-6)
        assert binary_ece(p.numpy(), y.bool().numpy(), n_bins) == pytest.approx(ref, abs=1e-6)
    probs, labels = _softmax_data(seed=4)
    onehot = F.one_hot(labels, probs.shape[1])
    ref = np.mean([binary_calibration_error(probs[:, k], onehot[:, k], n_bins=15).item()
                   for k in range(probs.shape[1])])
    assert classwise_ece(probs, labels) == pytest.approx(ref, abs=1e-6)
    assert classwise_ece(probs, onehot) == pytest.approx(ref, abs=1e-6)
    # independent sigmoid scores with multi-label targets
    sig = torch.rand(500, 3, generator=g)
    tgt = (torch.rand(500, 3, generator=g) < sig).float()
    ref = np.mean([binary_calibration_error(sig[:, k], tgt[:, k].long(), n_bins=10).item()
                   for k in range(3)])
    assert classwise_ece(sig, tgt, 10) == pytest.approx(ref, abs=1e-6)


@pytest.mark.parametrize('n,n_bins', [(1003, 15), (20, 3), (15, 15)])
def test_ace_equals_nixon_reference(n, n_bins):
    probs, labels = _softmax_data(n=n, k=5, scale=2.0, seed=n)
    assert ace(probs.double(), labels, n_bins) == pytest.approx(
        _ace_reference(probs.double(), labels, n_bins), abs=1e-12)


def test_ace_hand_value():
    # one class column p = [0.1, 0.2, 0.7, 0.9], y = [0, 1, 1, 1]; two groups of two
    # group 1: |0.5 - 0.15| = 0.35, group 2: |1 - 0.8| = 0.2 ; the other class mirrors it
    probs = torch.tensor([[0.1, 0.9], [0.2, 0.8], [0.7, 0.3], [0.9, 0.1]], dtype=torch.float64)
    labels = torch.tensor([1, 0, 0, 0])  # class 0 is right for rows 1..3
    # class 0: p sorted [0.1,0.2,0.7,0.9] y [0,1,1,1] -> 0.35, 0.2
    # class 1: p sorted [0.1,0.3,0.8,0.9] y [0,0,0,1] -> |0-0.2|=0.2, |0.5-0.85|=0.35
    assert ace(probs, labels, 2) == pytest.approx((0.35 + 0.2 + 0.2 + 0.35) / 4)
    with pytest.raises(ValueError, match='n_bins'):
        ace(probs, labels, 5)


def test_ace_over_under_hand_value_and_split():
    # one score column p = [0.9, 0.8, 0.3, 0.2], targets [1, 0, 0, 1], two groups of two:
    # sorted [0.2, 0.3 | 0.8, 0.9]: conf 0.25 < acc 0.5 (under 0.25), conf 0.85 > acc 0.5
    # (over 0.35); ACE = (0.25 + 0.35) / 2
    probs = torch.tensor([[0.9], [0.8], [0.3], [0.2]], dtype=torch.float64)
    targets = torch.tensor([[1], [0], [0], [1]])
    assert ace(probs, targets, 2) == pytest.approx(0.30)
    assert ace_over_under(probs, targets, 2) == pytest.approx((0.35 / 2, 0.25 / 2))
    probs, labels = _softmax_data(n=600, k=5, scale=4.0, seed=7)  # over-confident
    a_o, a_u = ace_over_under(probs, labels, 10)
    assert a_o + a_u == pytest.approx(ace(probs, labels, 10), abs=1e-12)
    assert a_o > a_u
    with pytest.raises(ValueError, match='n_bins'):
        ace_over_under(probs[:4], labels[:4], 5)


def test_nll_and_brier():
    probs, labels = _softmax_data(n=300, seed=5)
    ref = F.nll_loss(probs.double().log(), labels).item()
    assert nll(probs, labels) == pytest.approx(ref, rel=1e-6)
    # eps floor: a zero probability on the true class costs -log(eps)
    p0 = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    assert nll(p0, torch.tensor([1, 0]), eps=1e-8) == pytest.approx(
        (-np.log(1e-8) - np.log(0.5)) / 2)
    # Brier hand value: rows (0.7, 0.2, 0.1) y=0 -> 0.09+0.04+0.01; (0.5,0.5,0) y=2 -> .25+.25+1
    p = torch.tensor([[0.7, 0.2, 0.1], [0.5, 0.5, 0.0]])
    assert brier(p, torch.tensor([0, 2])) == pytest.approx((0.14 + 1.5) / 2)
    ref = ((probs.double() - F.one_hot(labels, 7))**2).sum(1).mean().item()
    assert brier(probs.numpy(), labels.numpy()) == pytest.approx(ref, rel=1e-9)
    # multi-label targets: rows need not sum to one
    assert brier(torch.tensor([[0.9, 0.8]]), torch.tensor([[1, 0]])) == pytest.approx(0.01 + 0.64)


def test_bad_inputs_fail_with_named_argument():
    probs, labels = _softmax_data(n=50)
    with pytest.raises(ValueError, match='`probs`.*\\[0, 1\\]'):
        ece(torch.randn(50, 7), labels)
    with pytest.raises(ValueError, match='sum to 1'):
        ece(torch.rand(50, 7), labels)
    with pytest.raises(ValueError, match='NaN'):
        ece(torch.full((50, 7), float('nan')), labels)
    with pytest.raises(ValueError, match='`labels` must lie in'):
        ece(probs, labels + 7)
    with pytest.raises(ValueError, match='`labels` must have shape'):
        ece(probs, labels[:10])
    with pytest.raises(TypeError, match='`labels` must hold integer'):
        nll(probs, labels.float())
    with pytest.raises(ValueError, match='`n_bins`'):
        ece(probs, labels, 0)
    with pytest.raises(ValueError, match='empty'):
        ece(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match='`targets` must be binary'):
        binary_ece(torch.rand(5), torch.tensor([0, 1, 2, 0, 1]))


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('n_bins', [1, 3, 10, 15, 100])
def test_fast_binning_equals_bucketize_on_edges(dtype, n_bins):
    for edges in (torch.linspace(0, 1, n_bins + 1, dtype=dtype),
                  torch.from_numpy(np.linspace(0, 1, n_bins + 1))):
        e = edges.to(dtype)
        x = torch.cat([e, torch.nextafter(e, torch.tensor(2.0, dtype=dtype)),
                       torch.nextafter(e, torch.tensor(-1.0, dtype=dtype)),
                       torch.rand(20000, dtype=dtype)]).clamp(0, 1)
        common = torch.promote_types(dtype, edges.dtype)
        ref = torch.bucketize(x.to(common), edges.to(common), right=True) - 1
        assert torch.equal(equal_width_index(x, edges, n_bins), ref)

        if edges.dtype == torch.float64:  # the numpy twin, against numpy's searchsorted
            xn, en = x.numpy(), edges.numpy()
            np.testing.assert_array_equal(equal_width_index_np(xn, en, n_bins),
                                          np.searchsorted(en, xn, side='right') - 1)
