"""TopKAccuracy against a hand-computed case and torchmetrics."""
import pytest
import torch
from mmengine.structures import BaseDataElement
from torchmetrics.classification import MulticlassAccuracy

import mmkdcal  # noqa: F401
from mmdet.registry import METRICS
from mmkdcal.evaluation.topk_accuracy import TopKAccuracy

# 4 samples, 5 classes; rank of the label (number of strictly higher scores) written per row.
SCORES = [
    [0.10, 0.50, 0.20, 0.15, 0.05],  # label 1: rank 0 -> top1, top3 hit
    [0.30, 0.25, 0.20, 0.15, 0.10],  # label 2: rank 2 -> top3 hit only
    [0.05, 0.10, 0.15, 0.30, 0.40],  # label 0: rank 4 -> miss
    [0.22, 0.18, 0.21, 0.19, 0.20],  # label 4: rank 2 (0.22, 0.21 higher) -> top3 hit
]
LABELS = [1, 2, 0, 4]


def _samples(scores, labels, as_dict=True):
    out = []
    for s, y in zip(scores, labels):
        elem = BaseDataElement(pred_score=torch.tensor(s), gt_label=torch.tensor(y))
        out.append(elem.to_dict() if as_dict else elem)
    return out


@pytest.mark.parametrize('as_dict', [True, False])
def test_hand_computed_case(as_dict):
    metric = METRICS.build(dict(type='TopKAccuracy', topk=(1, 3)))
    metric.process(None, _samples(SCORES[:2], LABELS[:2], as_dict))  # two batches
    metric.process(None, _samples(SCORES[2:], LABELS[2:], as_dict))
    res = metric.evaluate(size=4)
    assert res == {'accuracy/top1': pytest.approx(25.0), 'accuracy/top3': pytest.approx(75.0)}


def test_matches_torchmetrics_on_random_scores():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(50, 10, generator=g).softmax(1)
    labels = torch.randint(0, 10, (50, ), generator=g)
    metric = TopKAccuracy(topk=(1, 5), prefix='cls')
    metric.process(None, _samples(scores.tolist(), labels.tolist()))
    res = metric.evaluate(size=50)
    for k in (1, 5):
        ref = MulticlassAccuracy(num_classes=10, top_k=k, average='micro')(scores, labels)
        assert res[f'cls/top{k}'] == pytest.approx(100 * ref.item(), abs=1e-4)


def test_tie_with_label_counts_as_hit():
    metric = TopKAccuracy(topk=1)
    metric.process(None, _samples([[0.4, 0.4, 0.2]], [1]))
    assert metric.evaluate(size=1) == {'accuracy/top1': 100.0}


def test_bad_inputs_fail_with_clear_message():
    with pytest.raises(ValueError, match='topk'):
        TopKAccuracy(topk=(0, 1))
    with pytest.raises(ValueError, match='topk'):
        TopKAccuracy(topk=())
    metric = TopKAccuracy(topk=(1, 5))
    with pytest.raises(ValueError, match='exceeds the number of classes'):
        metric.process(None, _samples([[0.5, 0.5]], [0]))
    with pytest.raises(ValueError, match='pred_score'):
        metric.process(None, [dict(gt_label=torch.tensor(0))])
    with pytest.raises(ValueError, match=r'outside'):
        TopKAccuracy(topk=1).process(None, _samples([[0.5, 0.5]], [2]))
