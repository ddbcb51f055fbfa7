"""Top-k classification accuracy as an MMEngine metric."""
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from mmengine.evaluator import BaseMetric
from mmengine.structures import BaseDataElement

from mmdet.registry import METRICS

__all__ = ['TopKAccuracy']


def _field(sample: Union[dict, BaseDataElement], key: str, index: int) -> Any:
    if isinstance(sample, BaseDataElement):
        sample = sample.to_dict()
    if not isinstance(sample, dict) or key not in sample:
        raise ValueError(f'TopKAccuracy: data_samples[{index}] has no `{key}`; the model must run '
                         'in mode="predict" and return samples with `pred_score` (K,) and '
                         '`gt_label`.')
    return sample[key]


@METRICS.register_module()
class TopKAccuracy(BaseMetric):
    """Top-k accuracy in percent for each k of ``topk``; a tie at the k-th place counts for the
    label. Keys ``<prefix>/top{k}`` (prefix default ``'accuracy'``), gathered on ``collect_device``.
    """

    default_prefix: Optional[str] = 'accuracy'

    def __init__(self, topk: Union[int, Sequence[int]] = (1, 5), collect_device: str = 'cpu',
                 prefix: Optional[str] = '') -> None:
        super().__init__(collect_device=collect_device, prefix=prefix or None)
        ks = (topk, ) if isinstance(topk, int) else tuple(topk)
        if not ks or any(not isinstance(k, int) or isinstance(k, bool) or k < 1 for k in ks):
            raise ValueError(f'TopKAccuracy: topk must be a positive int or a non-empty sequence '
                             f'of positive ints, got {topk!r}.')
        if len(set(ks)) != len(ks):
            raise ValueError(f'TopKAccuracy: topk has repeated values: {topk!r}.')
        self.topk = ks

    def process(self, data_batch: Any,
                data_samples: Sequence[Union[dict, BaseDataElement]]) -> None:
        """Record, per sample (``pred_score``, ``gt_label``), whether its label is in each top-k."""
        for i, sample in enumerate(data_samples):
            score = torch.as_tensor(_field(sample, 'pred_score', i)).detach().float().flatten()
            label = torch.as_tensor(_field(sample, 'gt_label', i)).flatten()
            if label.numel() != 1:
                raise ValueError(f'TopKAccuracy: data_samples[{i}].gt_label must hold one class '
                                 f'index, got {label.numel()} values.')
            num_classes = score.numel()
            label = int(label.item())
            if not 0 <= label < num_classes:
                raise ValueError(f'TopKAccuracy: data_samples[{i}].gt_label={label} is outside '
                                 f'[0, {num_classes}) for a {num_classes}-class pred_score.')
            if max(self.topk) > num_classes:
                raise ValueError(f'TopKAccuracy: topk={self.topk} exceeds the number of classes '
                                 f'({num_classes}); lower topk.')
            if not torch.isfinite(score).all():
                raise ValueError(f'TopKAccuracy: data_samples[{i}].pred_score has NaN/inf values.')
            # rank of the label = number of classes scoring strictly higher (0 = top-1)
            rank = int((score > score[label]).sum())
            self.results.append({k: rank < k for k in self.topk})

    def compute_metrics(self, results: List[Dict[int, bool]]) -> Dict[str, float]:
        """``top{k}`` -> accuracy in percent over the recorded hits."""
        if not results:
            raise ValueError('TopKAccuracy: no samples were processed; the evaluation dataloader '
                             'is empty.')
        n = len(results)
        return {f'top{k}': 100.0 * sum(r[k] for r in results) / n for k in self.topk}
