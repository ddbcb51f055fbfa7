"""Calibration metrics for classifiers (softmax) and independent binary scores (sigmoid).

Every metric takes ``probs`` (N, K) (softmax rows; where said, independent sigmoid scores),
``labels`` (int class indices (N,); where said, binary targets (N, K)) and ``n_bins``, as tensors
or arrays, and returns floats, summed in float64. Equal-width bins follow torchmetrics'
``MulticlassCalibrationError`` (a confidence of exactly 1 has a bin of its own); definitions
and references are in docs/calibration.md.
"""
from typing import Any, Tuple

import numpy as np
import torch

from ._binning import equal_width_index
from ._inputs import (as_tensor, binary_targets, check_n_bins, check_probs, float_tensor,
                      int_labels, targets_matrix)

__all__ = [
    'ece', 'mce', 'ece_over_under', 'ace', 'ace_over_under', 'classwise_ece', 'binary_ece',
    'nll', 'brier'
]


def _bin_sums(conf: torch.Tensor, hits: torch.Tensor, n_bins: int,
              groups: int = 1) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-bin ``(count, sum_conf, sum_hits)``, float64 (G, B + 1), of confidences (N,) or
    (N, G) and their 0/1 outcomes.
    """
    edges = torch.linspace(0, 1, n_bins + 1, dtype=conf.dtype, device=conf.device)
    idx = equal_width_index(conf, edges, n_bins)  # == bucketize(conf, edges, right=True) - 1
    if groups > 1:
        idx = idx + torch.arange(groups, device=conf.device) * (n_bins + 1)
    idx = idx.reshape(-1)
    size = groups * (n_bins + 1)
    count = torch.bincount(idx, minlength=size).to(torch.float64)
    s_conf = torch.bincount(idx, weights=conf.reshape(-1).to(torch.float64), minlength=size)
    s_hit = torch.bincount(idx, weights=hits.reshape(-1).to(torch.float64), minlength=size)
    shape = (groups, n_bins + 1)
    return count.view(shape), s_conf.view(shape), s_hit.view(shape)


def _top_label(probs: Any, labels: Any) -> Tuple[torch.Tensor, torch.Tensor]:
    """Top-label ``(confidence, correct)`` of softmax probabilities (N, K) and labels (N,)."""
    p = float_tensor(probs, 'probs', ndim=(2,), finite=False)
    check_probs(p, 'probs', simplex=True)
    y = int_labels(labels, p.shape[0], p.shape[1], 'labels')
    if p.device.type == 'cpu':
        # numpy's SIMD arg-max is ~3x faster than torch.max(dim=1) on CPU; both return the
        # first maximal index on ties
        pred = torch.from_numpy(np.ascontiguousarray(p.numpy()).argmax(axis=1))
    else:
        pred = p.argmax(dim=1)
    conf = p.gather(1, pred[:, None]).squeeze(1)
    return conf, pred == y.to(pred.device)


def _top_label_bins(probs: Any, labels: Any, n_bins: int):
    n_bins = check_n_bins(n_bins)
    conf, correct = _top_label(probs, labels)
    return _bin_sums(conf, correct, n_bins)


def ece(probs: Any, labels: Any, n_bins: int = 15) -> float:
    """Top-label ECE (Guo et al. 2017), equal to torchmetrics' ``norm='l1'``."""
    count, s_conf, s_hit = _top_label_bins(probs, labels, n_bins)
    return float((s_hit - s_conf).abs().sum() / count.sum())


def mce(probs: Any, labels: Any, n_bins: int = 15) -> float:
    """Top-label maximum calibration error (Naeini et al. 2015), torchmetrics' ``norm='max'``."""
    count, s_conf, s_hit = _top_label_bins(probs, labels, n_bins)
    nonempty = count > 0
    return float(((s_hit - s_conf)[nonempty] / count[nonempty]).abs().max())


def ece_over_under(probs: Any, labels: Any, n_bins: int = 15) -> Tuple[float, float]:
    """Top-label ECE split into its over- and under-confident bins: ``(ece_o, ece_u)``."""
    count, s_conf, s_hit = _top_label_bins(probs, labels, n_bins)
    gap = (s_conf - s_hit) / count.sum()
    return float(gap.clamp(min=0).sum()), float((-gap).clamp(min=0).sum())


def binary_ece(probs: Any, targets: Any, n_bins: int = 15) -> float:
    """ECE of binary ``probs`` (N,) against 0/1 or bool ``targets`` (torchmetrics' binary ECE)."""
    n_bins = check_n_bins(n_bins)
    p = float_tensor(probs, 'probs', ndim=(1,), finite=False)
    check_probs(p, 'probs')
    t = binary_targets(targets, p.shape, 'targets')
    count, s_conf, s_hit = _bin_sums(p, t.view(-1).to(p.device), n_bins)
    return float((s_hit - s_conf).abs().sum() / count.sum())


def classwise_ece(probs: Any, labels: Any, n_bins: int = 15) -> float:
    """Class-wise ECE (Kull et al. 2019): the binary ECE of each class score, averaged; sigmoid
    scores and binary targets allowed.
    """
    n_bins = check_n_bins(n_bins)
    p = float_tensor(probs, 'probs', ndim=(2,), finite=False)
    check_probs(p, 'probs')
    n, k = p.shape
    t = targets_matrix(labels, n, k, 'labels').to(p.device)
    _, s_conf, s_hit = _bin_sums(p, t, n_bins, groups=k)
    return float((s_hit - s_conf).abs().sum() / (n * k))


def _ace_sorted(p_sorted: torch.Tensor, t_sorted: torch.Tensor, n_bins: int,
                per_class: bool = False) -> torch.Tensor:
    """ACE (scalar, or per class) from class-sorted scores and targets (K, N)."""
    gaps = _ace_group_gaps(p_sorted, t_sorted, n_bins).abs()
    return gaps.mean(1) if per_class else gaps.mean()


def _ace_group_gaps(p_sorted: torch.Tensor, t_sorted: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Signed ``conf - acc`` (K, R) of the equal-mass groups (``numpy.array_split`` sizes) of
    class-sorted scores and targets (K, N).
    """
    k, n = p_sorted.shape
    q, r = divmod(n, n_bins)
    sizes = torch.full((n_bins,), q, dtype=torch.long, device=p_sorted.device)
    sizes[:r] += 1  # numpy.array_split: the first N % R groups get one more sample
    group = torch.repeat_interleave(torch.arange(n_bins, device=p_sorted.device), sizes)
    s_p = torch.zeros(k, n_bins, dtype=torch.float64, device=p_sorted.device)
    s_t = torch.zeros_like(s_p)
    s_p.index_add_(1, group, p_sorted.to(torch.float64))
    s_t.index_add_(1, group, t_sorted.to(torch.float64))
    return (s_p - s_t) / sizes


def _sorted_by_class(p: torch.Tensor, t: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Sort each class column of ``p`` (N, K) ascending (stable); return (K, N) layouts."""
    values, order = torch.sort(p.t().contiguous(), dim=1, stable=True)
    return values, t.t().gather(1, order)


def _class_group_gaps(probs: Any, labels: Any, n_bins: int, who: str) -> torch.Tensor:
    """Check the inputs of :func:`ace`; return its signed group gaps (K, R)."""
    n_bins = check_n_bins(n_bins)
    p = float_tensor(probs, 'probs', ndim=(2,), finite=False)
    check_probs(p, 'probs')
    n, k = p.shape
    if n < n_bins:
        raise ValueError(f'{who} needs at least `n_bins`={n_bins} samples per class to fill its '
                         f'equal-mass bins, got N={n}: lower `n_bins` or add samples.')
    t = targets_matrix(labels, n, k, 'labels').to(p.device)
    return _ace_group_gaps(*_sorted_by_class(p, t), n_bins)


def ace(probs: Any, labels: Any, n_bins: int = 15) -> float:
    """Adaptive calibration error (Nixon et al. 2019): ``n_bins`` equal-mass groups per class
    (N >= n_bins); sigmoid scores and binary targets allowed.
    """
    return float(_class_group_gaps(probs, labels, n_bins, 'ace').abs().mean())


def ace_over_under(probs: Any, labels: Any, n_bins: int = 15) -> Tuple[float, float]:
    """ACE split into its over- and under-confident groups: ``(ace_o, ace_u)``."""
    gaps = _class_group_gaps(probs, labels, n_bins, 'ace_over_under')
    return float(gaps.clamp(min=0).mean()), float((-gaps).clamp(min=0).mean())


def nll(probs: Any, labels: Any, eps: float = 1e-12) -> float:
    """Mean negative log-likelihood (nats) of softmax ``probs``; ``eps`` floors the true class's
    probability before the log.
    """
    if not eps > 0:
        raise ValueError(f'`eps` must be > 0, got {eps!r}.')
    p = float_tensor(probs, 'probs', ndim=(2,), finite=False)
    check_probs(p, 'probs', simplex=True)
    y = int_labels(labels, p.shape[0], p.shape[1], 'labels').to(p.device)
    p_true = p.gather(1, y[:, None]).squeeze(1).to(torch.float64)
    return float(-p_true.clamp(min=eps).log().mean())


def brier(probs: Any, labels: Any) -> float:
    """Brier score ``mean_i sum_k (p_ik - 1[y_i = k])^2``; sigmoid scores with binary targets
    allowed (rows sum to 1 with int labels).
    """
    p = float_tensor(probs, 'probs', ndim=(2,), finite=False)
    lab = as_tensor(labels, 'labels')
    check_probs(p, 'probs', simplex=lab.dim() == 1)
    t = targets_matrix(lab, p.shape[0], p.shape[1], 'labels').to(p.device)
    return float(((p.to(torch.float64) - t)**2).sum(dim=1).mean())
