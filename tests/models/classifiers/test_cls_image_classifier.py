"""ImageClassifier: loss / predict / tensor modes against hand-computed values."""
import math

import pytest
import torch
import torch.nn as nn
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper
from mmengine.structures import BaseDataElement

from mmdet.registry import MODELS

import mmkdcal  # noqa: F401
from mmkdcal.datasets import CIFAR100Dataset
from mmkdcal.models.classifiers import ImageClassifier

from _helpers import write_cifar100_like

torch.set_num_threads(1)


class FixedLogits(nn.Module):
    """Backbone whose logits are the first K input pixels (lets the test plant logits)."""

    def __init__(self, k):
        super().__init__()
        self.k = k
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.scale * x.flatten(1)[:, :self.k]


def _planted(logits):
    """(N, K) logits -> (N, 1, 1, K) inputs for FixedLogits."""
    return torch.tensor(logits, dtype=torch.float32).view(len(logits), 1, 1, -1)


def _samples(labels):
    return [BaseDataElement(gt_label=torch.tensor(y), metainfo=dict(sample_idx=i))
            for i, y in enumerate(labels)]


LOGITS = [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [2.0, -1.0, 0.5]]
LABELS = [2, 0, 1]


def _hand_ce(logits, labels, eps=0.0):
    total = 0.0
    for z, y in zip(logits, labels):
        lse = math.log(sum(math.exp(v) for v in z))
        nll = [lse - v for v in z]  # -log softmax per class
        total += (1 - eps) * nll[y] + eps * sum(nll) / len(z)
    return total / len(logits)


def test_loss_mode_equals_hand_cross_entropy():
    model = ImageClassifier(backbone=FixedLogits(3))
    losses = model(_planted(LOGITS), _samples(LABELS), mode='loss')
    assert set(losses) == {'loss_cls'}
    assert losses['loss_cls'].item() == pytest.approx(_hand_ce(LOGITS, LABELS), rel=1e-6)


def test_label_smoothing_equals_hand_formula():
    model = ImageClassifier(backbone=FixedLogits(3), label_smoothing=0.1)
    loss = model(_planted(LOGITS), _samples(LABELS), mode='loss')['loss_cls']
    assert loss.item() == pytest.approx(_hand_ce(LOGITS, LABELS, eps=0.1), rel=1e-6)


def test_mmdet_cross_entropy_loss_is_used_when_configured():
    model = ImageClassifier(backbone=FixedLogits(3),
                            loss=dict(type='CrossEntropyLoss', loss_weight=2.0))
    loss = model(_planted(LOGITS), _samples(LABELS), mode='loss')['loss_cls']
    assert loss.item() == pytest.approx(2.0 * _hand_ce(LOGITS, LABELS), rel=1e-6)


def test_predict_mode_fills_scores_labels_and_keeps_gt():
    model = ImageClassifier(backbone=FixedLogits(3))
    samples = _samples(LABELS)
    out = model(_planted(LOGITS), samples, mode='predict')
    assert len(out) == 3
    for z, y, s in zip(LOGITS, LABELS, out):
        denom = sum(math.exp(v) for v in z)
        assert s.pred_score.tolist() == pytest.approx([math.exp(v) / denom for v in z], rel=1e-6)
        assert s.pred_logits.tolist() == pytest.approx(z)
        assert int(s.pred_label) == max(range(3), key=lambda k: z[k])
        assert int(s.gt_label) == y
    assert out[2].metainfo['sample_idx'] == 2
    # without data samples new ones are created
    assert int(model(_planted(LOGITS), None, mode='predict')[0].pred_label) == 2


def test_tensor_mode_and_extract_logits_return_logits():
    model = ImageClassifier(backbone=FixedLogits(3))
    logits = model(_planted(LOGITS), mode='tensor')
    torch.testing.assert_close(logits, torch.tensor(LOGITS))
    torch.testing.assert_close(model.extract_logits(_planted(LOGITS)), torch.tensor(LOGITS))


@pytest.mark.parametrize('kwargs,labels,exc,match', [
    (dict(), [2, 0, 3], ValueError, r'\[0, 3\)'),
    (dict(), [2, 0], ValueError, 'per input'),
])
def test_bad_labels_fail_with_clear_message(kwargs, labels, exc, match):
    model = ImageClassifier(backbone=FixedLogits(3), **kwargs)
    with pytest.raises(exc, match=match):
        model(_planted(LOGITS), _samples(labels), mode='loss')


def test_missing_gt_label_and_bad_mode_and_conflicting_loss_config():
    model = ImageClassifier(backbone=FixedLogits(3))
    with pytest.raises(ValueError, match='gt_label'):
        model(_planted(LOGITS), [BaseDataElement() for _ in LOGITS], mode='loss')
    with pytest.raises(ValueError, match='mode'):
        model(_planted(LOGITS), mode='logits')
    with pytest.raises(ValueError, match='label_smoothing'):
        ImageClassifier(backbone=FixedLogits(3), loss=dict(type='CrossEntropyLoss'),
                        label_smoothing=0.1)
    with pytest.raises(TypeError, match='backbone'):
        ImageClassifier(backbone='CifarResNet')


def test_default_data_preprocessor_normalises_with_cifar100_statistics(tmp_path):
    """Dataset -> pseudo_collate -> ImgDataPreprocessor gives (x - 255*mean) / (255*std)."""
    planted = write_cifar100_like(str(tmp_path), n_train=3, n_test=1, seed=3)
    ds = CIFAR100Dataset(data_root=str(tmp_path), split='train',
                         pipeline=[dict(type='PackClsInputs')])
    model = MODELS.build(dict(type='ImageClassifier',
                              backbone=dict(type='CifarResNet', arch='resnet8', num_classes=100)))
    batch = model.data_preprocessor(pseudo_collate([ds[0], ds[1]]), training=False)
    mean = torch.tensor([0.5071, 0.4867, 0.4408]).view(3, 1, 1) * 255
    std = torch.tensor([0.2675, 0.2565, 0.2761]).view(3, 1, 1) * 255
    images = torch.from_numpy(planted['train'][0][:2]).permute(0, 3, 1, 2).float()
    torch.testing.assert_close(batch['inputs'], (images - mean) / std, rtol=1e-5, atol=1e-5)
    assert [int(s.gt_label) for s in batch['data_samples']] == planted['train'][1][:2].tolist()


def test_train_step_decreases_loss_on_a_fixed_batch(tmp_path):
    torch.manual_seed(0)
    write_cifar100_like(str(tmp_path), n_train=8, n_test=1, seed=0)
    ds = CIFAR100Dataset(data_root=str(tmp_path), split='train',
                         pipeline=[dict(type='PackClsInputs')])
    model = MODELS.build(dict(type='ImageClassifier',
                              backbone=dict(type='CifarResNet', arch='resnet8', num_classes=100)))
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9))
    data = pseudo_collate([ds[i] for i in range(8)])
    losses = [model.train_step(data, optim)['loss_cls'].item() for _ in range(12)]
    assert losses[0] == pytest.approx(math.log(100), abs=0.6)  # near-uniform at init
    assert losses[-1] < 0.5 * losses[0]
    outputs = model.val_step(data)
    assert len(outputs) == 8 and outputs[0].pred_score.shape == (100, )
