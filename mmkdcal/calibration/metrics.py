"""Calibration metrics for classifiers (softmax) and for independent binary scores (sigmoid).

All functions take torch tensors or numpy arrays and return Python floats. Binning is vectorised
with ``torch.bucketize`` and ``torch.bincount``; sums are accumulated in float64.

Equal-width binning convention (the one of torchmetrics' ``MulticlassCalibrationError``): with
edges ``e_b = b / B`` (``b = 0..B``, built by ``torch.linspace`` in the dtype of the confidences),
bin ``b < B`` holds the confidences ``c`` with ``e_b <= c < e_{b+1}``, and a confidence exactly
equal to 1 falls in an extra bin of its own. With ``n_b`` samples, mean accuracy ``acc_b`` and
mean confidence ``conf_b`` in bin ``b``:

    ECE = sum_b (n_b / N) |acc_b - conf_b|              (Guo et al., ICML 2017, Eq. 3)
    MCE = max_{b: n_b > 0} |acc_b - conf_b|             (Naeini et al., AAAI 2015)
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
    """Per-bin ``(count, sum_conf, sum_hits)``, float64 (G, B + 1), for equal-width bins.

    ``conf``: confidences in [0, 1], (N,) or (N, G) for G independent groups (classes); ``hits``:
    0/1 outcomes of the same shape. The last bin holds the confidences equal to 1.
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
    """Top-label ``(confidence, correct)`` (N,) of softmax probabilities (N, K) and labels (N,)."""
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
    """Top-label Expected Calibration Error with equal-width bins.

    ``ECE = sum_b (n_b / N) |acc_b - conf_b|`` over the bins of the top-label confidence
    ``max_k p_ik`` (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017). Equals
    ``torchmetrics.classification.MulticlassCalibrationError(K, n_bins, norm='l1')``, including
    its bin-edge convention (see the module docstring).

    Args:
        probs: Softmax probabilities, shape (N, K); rows must sum to 1.
        labels: Int class indices, shape (N,).
        n_bins: Number of equal-width bins.

    Returns:
        float: ECE in [0, 1].
    """
    count, s_conf, s_hit = _top_label_bins(probs, labels, n_bins)
    return float((s_hit - s_conf).abs().sum() / count.sum())


def mce(probs: Any, labels: Any, n_bins: int = 15) -> float:
    """Top-label Maximum Calibration Error: the largest ``|acc_b - conf_b|`` over non-empty bins.

    Naeini et al., "Obtaining Well Calibrated Probabilities Using Bayesian Binning", AAAI 2015.
    Equals torchmetrics' ``MulticlassCalibrationError(..., norm='max')``.

    Args:
        probs: Softmax probabilities, shape (N, K).
        labels: Int class indices, shape (N,).
        n_bins: Number of equal-width bins.

    Returns:
        float: MCE in [0, 1].
    """
    count, s_conf, s_hit = _top_label_bins(probs, labels, n_bins)
    nonempty = count > 0
    return float(((s_hit - s_conf)[nonempty] / count[nonempty]).abs().max())


def ece_over_under(probs: Any, labels: Any, n_bins: int = 15) -> Tuple[float, float]:
    """Split the top-label ECE into its over- and under-confidence parts.

    ``ECE_o = sum_{b: conf_b > acc_b} (n_b / N)(conf_b - acc_b)`` and
    ``ECE_u = sum_{b: conf_b < acc_b} (n_b / N)(acc_b - conf_b)``, so ``ECE_o + ECE_u = ECE``
    (the over/under-confidence decomposition used e.g. by Kim et al., IEEE Access 2025).

    Args:
        probs: Softmax probabilities, shape (N, K).
        labels: Int class indices, shape (N,).
        n_bins: Number of equal-width bins.

    Returns:
        tuple: ``(ece_over, ece_under)`` as floats.
    """
    count, s_conf, s_hit = _top_label_bins(probs, labels, n_bins)
    gap = (s_conf - s_hit) / count.sum()
    return float(gap.clamp(min=0).sum()), float((-gap).clamp(min=0).sum())


def binary_ece(probs: Any, targets: Any, n_bins: int = 15) -> float:
    """ECE of binary probabilities against 0/1 outcomes (e.g. detection confidence vs. matched).

    ``sum_b (n_b / N) |mean(y in b) - mean(p in b)|`` with the equal-width bins of the module
    docstring; equals torchmetrics' ``binary_calibration_error(p, y, n_bins, norm='l1')``.

    Args:
        probs: Probabilities of the positive outcome, shape (N,).
        targets: 0/1 (or bool) outcomes, shape (N,).
        n_bins: Number of equal-width bins.

    Returns:
        float: ECE in [0, 1].
    """
    n_bins = check_n_bins(n_bins)
    p = float_tensor(probs, 'probs', ndim=(1,), finite=False)
    check_probs(p, 'probs')
    t = binary_targets(targets, p.shape, 'targets')
    count, s_conf, s_hit = _bin_sums(p, t.view(-1).to(p.device), n_bins)
    return float((s_hit - s_conf).abs().sum() / count.sum())


def classwise_ece(probs: Any, labels: Any, n_bins: int = 15) -> float:
    """Class-wise ECE: the binary ECE of every class score, averaged over classes.

    ``cwECE = (1/K) sum_k sum_b (n_kb / N) |mean(1[y_i = k] in b) - mean(p_ik in b)|``, binning
    all N values ``p_ik`` of class k in equal-width bins (Kull et al., "Beyond temperature
    scaling", NeurIPS 2019). Also valid for independent (sigmoid) scores with binary targets.

    Args:
        probs: Probabilities, shape (N, K) (softmax rows or independent sigmoid scores).
        labels: Int class indices (N,) or binary targets (N, K).
        n_bins: Number of equal-width bins.

    Returns:
        float: Class-wise ECE in [0, 1].
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
    """ACE (float64 scalar, or per class (K,)) from :func:`_ace_group_gaps`' inputs."""
    gaps = _ace_group_gaps(p_sorted, t_sorted, n_bins).abs()
    return gaps.mean(1) if per_class else gaps.mean()


def _ace_group_gaps(p_sorted: torch.Tensor, t_sorted: torch.Tensor,
                    n_bins: int) -> torch.Tensor:
    """Signed ``conf - acc`` of every equal-mass group of every class, float64 (K, R).

    ``p_sorted``: scores (K, N), each row sorted ascending; ``t_sorted``: their 0/1 targets,
    permuted alike; ``n_bins``: the number of groups R (N >= R).
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
    """Adaptive Calibration Error with equal-mass bins per class.

    For each class k, the N scores ``p_ik`` are sorted ascending (stable sort) and cut into
    ``n_bins`` contiguous groups of the sizes ``numpy.array_split`` gives; then
    ``ACE = 1/(K R) sum_k sum_r |acc(r, k) - conf(r, k)|`` with ``acc`` the mean of
    ``1[y_i = k]`` and ``conf`` the mean of ``p_ik`` in the group (Nixon et al., "Measuring
    Calibration in Deep Learning", CVPR Workshops 2019). Also valid for sigmoid scores.

    Args:
        probs: Probabilities, shape (N, K).
        labels: Int class indices (N,) or binary targets (N, K).
        n_bins: Number of groups R per class; needs N >= R.

    Returns:
        float: ACE in [0, 1].
    """
    return float(_class_group_gaps(probs, labels, n_bins, 'ace').abs().mean())


def ace_over_under(probs: Any, labels: Any, n_bins: int = 15) -> Tuple[float, float]:
    """Split the ACE into its over- and under-confidence parts.

    With the equal-mass groups of :func:`ace`, ``ACE_o = 1/(K R) sum_{k, r: conf > acc}
    (conf(r, k) - acc(r, k))`` and ``ACE_u`` the same over the groups with ``conf < acc``, so
    ``ACE_o + ACE_u = ACE``.

    Args:
        probs: Probabilities, shape (N, K).
        labels: Int class indices (N,) or binary targets (N, K).
        n_bins: Number of groups R per class; needs N >= R.

    Returns:
        tuple: ``(ace_o, ace_u)`` as floats.
    """
    gaps = _class_group_gaps(probs, labels, n_bins, 'ace_over_under')
    return float(gaps.clamp(min=0).mean()), float((-gaps).clamp(min=0).mean())


def nll(probs: Any, labels: Any, eps: float = 1e-12) -> float:
    """Negative log-likelihood of softmax probabilities: ``-(1/N) sum_i log max(p_{i y_i}, eps)``.

    Args:
        probs: Softmax probabilities, shape (N, K); rows must sum to 1.
        labels: Int class indices, shape (N,).
        eps: Floor applied to the probability of the true class before the log, so that a zero
            probability gives ``-log(eps)`` instead of inf.

    Returns:
        float: Mean NLL in nats.
    """
    if not eps > 0:
        raise ValueError(f'`eps` must be > 0, got {eps!r}.')
    p = float_tensor(probs, 'probs', ndim=(2,), finite=False)
    check_probs(p, 'probs', simplex=True)
    y = int_labels(labels, p.shape[0], p.shape[1], 'labels').to(p.device)
    p_true = p.gather(1, y[:, None]).squeeze(1).to(torch.float64)
    return float(-p_true.clamp(min=eps).log().mean())


def brier(probs: Any, labels: Any) -> float:
    """Brier score ``(1/N) sum_i sum_k (p_ik - 1[y_i = k])^2`` (Brier, Mon. Weather Rev. 1950).

    Args:
        probs: Probabilities, shape (N, K). With int ``labels`` the rows must sum to 1
            (softmax); with binary (N, K) targets they are independent sigmoid scores.
        labels: Int class indices (N,) or binary targets (N, K).

    Returns:
        float: Brier score in [0, 2] (softmax) or [0, K] (sigmoid).
    """
    p = float_tensor(probs, 'probs', ndim=(2,), finite=False)
    lab = as_tensor(labels, 'labels')
    check_probs(p, 'probs', simplex=lab.dim() == 1)
    t = targets_matrix(lab, p.shape[0], p.shape[1], 'labels').to(p.device)
    return float(((p.to(torch.float64) - t)**2).sum(dim=1).mean())
