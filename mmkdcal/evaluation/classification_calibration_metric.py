"""Calibration of a classifier as an MMEngine metric (ECE, ACE, class-wise ECE, NLL, Brier)."""
import logging
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement

from mmdet.registry import METRICS

from .. import calibration as cal

__all__ = ['ClassificationCalibrationMetric']


@METRICS.register_module()
class ClassificationCalibrationMetric(BaseMetric):
    """Calibration errors of softmax predictions (``pred_score`` or ``pred_logits``, with
    ``gt_label``), gathered over all ranks: ``ece``, ``ece_over``, ``ece_under``, ``mce``, ``ace``
    (nan below ``n_bins`` samples), ``classwise_ece``, ``nll``, ``brier``, ``accuracy``.

    Args:
        n_bins: Bins of the ECE-type metrics.
        collect_device: ``'cpu'`` or ``'gpu'``.
        prefix: Key prefix; default ``'calib'``.
    """

    default_prefix: Optional[str] = 'calib'

    def __init__(self, n_bins: int = 15, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 1:
            raise ValueError(f'ClassificationCalibrationMetric.n_bins must be a positive int, '
                             f'got {n_bins!r}.')
        self.n_bins = n_bins

    def process(self, data_batch: Any,
                data_samples: Sequence[Union[dict, BaseDataElement]]) -> None:
        """Store each sample's probabilities and label."""
        for i, sample in enumerate(data_samples):
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            if not isinstance(sample, dict):
                raise TypeError(f'ClassificationCalibrationMetric: data_samples[{i}] must be a '
                                f'dict or data element, got {type(sample).__name__}.')
            if 'pred_score' in sample:
                probs = torch.as_tensor(sample['pred_score']).detach().double().flatten()
            elif 'pred_logits' in sample:
                logits = torch.as_tensor(sample['pred_logits']).detach().double().flatten()
                probs = torch.softmax(logits, dim=0)
            else:
                raise ValueError(f'ClassificationCalibrationMetric: data_samples[{i}] has neither '
                                 '`pred_score` (K,) nor `pred_logits` (K,); run the model in '
                                 'mode="predict" so that it fills one of them.')
            if 'gt_label' not in sample:
                raise ValueError(f'ClassificationCalibrationMetric: data_samples[{i}] has no '
                                 '`gt_label`; the evaluation data must be labelled.')
            label = torch.as_tensor(sample['gt_label']).flatten()
            if label.numel() != 1 or label.is_floating_point():
                raise ValueError(f'ClassificationCalibrationMetric: data_samples[{i}].gt_label '
                                 f'must be one int class index, got {label.tolist()}.')
            self.results.append(dict(probs=probs.cpu().float().numpy(), label=int(label.item())))

    def compute_metrics(self, results: List[Dict[str, Any]]) -> Dict[str, float]:
        """The metrics of the class docstring over all gathered samples."""
        if not results:
            raise ValueError('ClassificationCalibrationMetric: no samples were processed; the '
                             'evaluation dataloader is empty.')
        sizes = {r['probs'].shape[0] for r in results}
        if len(sizes) != 1:
            raise ValueError(f'ClassificationCalibrationMetric: samples have different numbers '
                             f'of classes {sorted(sizes)}; all predictions must have the same K.')
        probs = torch.from_numpy(np.stack([r['probs'] for r in results]))
        labels = torch.tensor([r['label'] for r in results], dtype=torch.long)
        n_bins = self.n_bins
        ece_over, ece_under = cal.ece_over_under(probs, labels, n_bins)
        out = dict(ece=cal.ece(probs, labels, n_bins), ece_over=ece_over, ece_under=ece_under,
                   mce=cal.mce(probs, labels, n_bins),
                   classwise_ece=cal.classwise_ece(probs, labels, n_bins),
                   nll=cal.nll(probs, labels), brier=cal.brier(probs, labels),
                   accuracy=float((probs.argmax(1) == labels).double().mean()))
        if len(results) >= n_bins:
            out['ace'] = cal.ace(probs, labels, n_bins)
        else:
            print_log(f'ClassificationCalibrationMetric: ACE needs at least n_bins={n_bins} '
                      f'samples, got {len(results)}; reporting ace=nan.', logger='current',
                      level=logging.WARNING)
            out['ace'] = float('nan')
        return out
