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
    """Top-k accuracy in percent: ``100 * mean_i [y_i in top-k(pred_score_i)]``.

    A sample counts as correct at k when its label's score is among the k largest; when scores
    tie at the k-th place, the label counts as in the top-k only if fewer than k classes score
    strictly higher (ties are resolved in favour of the label, so the result does not depend on
    sort order). Per-sample hits are computed in ``process`` and gathered across ranks by
    :class:`~mmengine.evaluator.BaseMetric` (DDP-safe: every rank's samples count once).

    Args:
        topk (int | Sequence[int]): The k values. Defaults to (1, 5).
        collect_device (str): ``'cpu'`` or ``'gpu'``, where results are gathered.
        prefix (str, optional): Key prefix; empty or None gives ``'accuracy'``, so the keys are
            ``accuracy/top1`` and ``accuracy/top5``.
    """

    default_prefix: Optional[str] = 'accuracy'

    def __init__(self,
                 topk: Union[int, Sequence[int]] = (1, 5),
                 collect_device: str = 'cpu',
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
        """Record, per sample, whether its label is within each top-k.

        Args:
            data_batch (Any): Unused.
            data_samples (Sequence[dict | BaseDataElement]): Outputs of ``predict`` with
                ``pred_score`` (K,) and ``gt_label`` (0-dim or 1-element).
        """
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
        """Average the recorded hits.

        Args:
            results (list[dict[int, bool]]): One entry per sample, gathered over ranks.

        Returns:
            dict[str, float]: ``top{k}`` -> accuracy in percent.
        """
        if not results:
            raise ValueError('TopKAccuracy: no samples were processed; the evaluation dataloader '
                             'is empty.')
        n = len(results)
        return {f'top{k}': 100.0 * sum(r[k] for r in results) / n for k in self.topk}
