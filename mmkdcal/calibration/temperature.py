"""Temperature scaling: fit ``T > 0`` (or one ``T_k`` per class) to calibrate ``logits / T``.

Guo et al. 2017; Kim et al. 2025 fit it to the teacher before distillation. ``mode='softmax'``:
logits (N, K), int labels; ``mode='sigmoid'``: independent per-class scores, targets in [0, 1]
(N, K), int labels with K = background, or (N,) logits. ``'nll'`` is minimised by L-BFGS over
``log T`` (float64); ``'ece'`` / ``'ace'`` by a bounded grid-plus-golden-section search over
``log T`` (docs/calibration.md).
"""
import math
from typing import Any, Callable, Sequence, Tuple

import torch
import torch.nn.functional as F

from ._inputs import (as_tensor, binary_targets, check_n_bins, float_tensor, int_labels,
                      targets_matrix)
from .metrics import _ace_sorted, _bin_sums, _sorted_by_class

__all__ = ['OBJECTIVES', 'fit_temperature', 'prepare_targets']

_MODES = ('softmax', 'sigmoid')
#: The temperature-fitting objectives (:func:`fit_temperature`).
OBJECTIVES = ('nll', 'ece', 'ace')


def prepare_targets(logits: Any, targets: Any,
                    mode: str = 'softmax') -> Tuple[torch.Tensor, torch.Tensor, bool]:
    """Validate logits/targets; return float64 logits (N, K), int64 labels (softmax) or a float64
    target matrix (sigmoid), and whether the logits were 1-D.
    """
    if mode not in _MODES:
        raise ValueError(f'`mode` must be one of {_MODES}, got {mode!r}.')
    z = float_tensor(logits, 'logits', ndim=(1, 2) if mode == 'sigmoid' else (2,))
    z = z.to(torch.float64)
    squeeze = z.dim() == 1
    if squeeze:
        z = z[:, None]
    n, k = z.shape
    if k == 0:
        raise ValueError('`logits` has zero classes (shape (N, 0)).')
    t = as_tensor(targets, 'targets')
    if mode == 'softmax':
        if k < 2:
            raise ValueError(f'`logits` must have K >= 2 classes for mode="softmax", got K={k}; '
                             'use mode="sigmoid" for a single binary score.')
        y = int_labels(t, n, k, 'targets').to(z.device)
        if torch.unique(y).numel() < 2:
            raise ValueError('`targets` holds a single class: a temperature cannot be fitted '
                             'when all calibration samples share one label; use a calibration '
                             'set that covers several classes.')
        return z, y, squeeze
    if squeeze:
        y = binary_targets(t, (n,), 'targets', soft=True)[:, None]
    elif t.dim() == 1:
        y = targets_matrix(t, n, k, 'targets', allow_background=True)
    else:
        y = binary_targets(t, (n, k), 'targets', soft=True)
    y = y.to(z.device)
    total = y.sum()
    if total == 0:
        raise ValueError('`targets` has no positive entry (all zero / all background): a '
                         'sigmoid temperature cannot be fitted without positives.')
    if total == y.numel():
        raise ValueError('`targets` has no negative entry (all ones): a sigmoid temperature '
                         'cannot be fitted without negatives.')
    return z, y, squeeze


def _nll_loss(z: torch.Tensor, y: torch.Tensor, mode: str) -> Callable[[torch.Tensor],
                                                                       torch.Tensor]:
    n = z.shape[0]
    if mode == 'softmax':
        return lambda s: F.cross_entropy(z * torch.exp(-s), y)
    return lambda s: F.binary_cross_entropy_with_logits(z * torch.exp(-s), y, reduction='sum') / n


def lbfgs_minimise(params: Sequence[torch.Tensor], loss_fn: Callable[[], torch.Tensor],
                   **options: Any) -> None:
    """Minimise ``loss_fn()`` over ``params`` in place: L-BFGS (``options``), strong Wolfe."""
    opt = torch.optim.LBFGS(params, lr=1.0, line_search_fn='strong_wolfe', **options)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)


def _check_not_separated(z: torch.Tensor, y: torch.Tensor, mode: str, per_class: bool) -> None:
    """Raise if the NLL has no finite minimiser (every sample right: NLL -> 0 as T -> 0)."""
    if mode == 'softmax':
        true = z.gather(1, y[:, None])
        others = z.scatter(1, y[:, None], -math.inf)
        separated = bool((true > others).all())
        where = 'every sample has its label as the strict arg-max'
    else:
        right = torch.where(y > 0, z > 0, z < 0)
        cols = right.all(0)
        separated = bool(cols.any()) if per_class else bool(cols.all())
        where = ('every logit of class(es) ' + str(cols.nonzero().squeeze(1).tolist()[:20]) +
                 ' has the sign of its target') if per_class else \
            'every logit has the sign of its target'
    if separated:
        raise ValueError(
            f'The calibration set is perfectly separated ({where}): the NLL keeps falling as '
            "T -> 0, so it has no finite optimum. Calibrate on held-out data the model does not "
            "fit perfectly (not its training set), or use objective='ece'/'ace' (bounded search).")


def _fit_nll(z: torch.Tensor, y: torch.Tensor, mode: str, shape: Tuple[int, ...],
             max_iter: int) -> torch.Tensor:
    _check_not_separated(z, y, mode, per_class=len(shape) > 0)
    loss_fn = _nll_loss(z, y, mode)
    s = torch.zeros(shape, dtype=torch.float64, device=z.device, requires_grad=True)
    lbfgs_minimise([s], lambda: loss_fn(s), max_iter=max_iter, history_size=20,
                   tolerance_grad=1e-9, tolerance_change=1e-12)
    t = torch.exp(s.detach())
    if not torch.isfinite(t).all() or (t < 1e-3).any() or (t > 1e3).any():
        raise ValueError(
            f'The NLL-optimal temperature is degenerate (T={t.tolist()}): the NLL keeps falling '
            'as T -> 0 or grows as T -> inf, which happens when (nearly) every calibration '
            'sample is right with a margin, or when the logits carry no (or an inverted) '
            "signal about the targets. Check the (logits, targets) pairing, use more/harder "
            "held-out data, or "
            "objective='ece'/'ace' (bounded search).")
    return t


def _search_log_t(f: Callable[[torch.Tensor], torch.Tensor], g: int, bounds: Tuple[float, float],
                  device: torch.device, n_grid: int = 25, n_golden: int = 20) -> torch.Tensor:
    """Minimise ``g`` independent 1-D functions ``f`` of ``log T`` within ``bounds`` in parallel
    (``n_grid`` grid points, then ``n_golden`` golden-section steps); float64 (g,) temperatures.
    """
    grid = torch.linspace(math.log(bounds[0]), math.log(bounds[1]), n_grid, dtype=torch.float64,
                          device=device)
    vals = torch.stack([f(grid[i].expand(g)) for i in range(n_grid)])  # (n_grid, g)
    i = vals.argmin(0)
    best_s, best_v = grid[i].clone(), vals.gather(0, i[None]).squeeze(0)
    a, b = grid[(i - 1).clamp(min=0)], grid[(i + 1).clamp(max=n_grid - 1)]
    r = (math.sqrt(5) - 1) / 2
    c, d = b - r * (b - a), a + r * (b - a)
    fc, fd = f(c), f(d)
    for s_, v_ in ((c, fc), (d, fd)):
        better = v_ < best_v
        best_s, best_v = torch.where(better, s_, best_s), torch.where(better, v_, best_v)
    for _ in range(n_golden):
        left = fc < fd  # minimum in [a, d]
        b = torch.where(left, d, b)
        a = torch.where(left, a, c)
        new = torch.where(left, b - r * (b - a), a + r * (b - a))
        fnew = f(new)
        c, d, fc, fd = (torch.where(left, new, d), torch.where(left, c, new),
                        torch.where(left, fnew, fd), torch.where(left, fc, fnew))
        better = fnew < best_v
        best_s, best_v = torch.where(better, new, best_s), torch.where(better, fnew, best_v)
    return torch.exp(best_s)


def _softmax_objective(z: torch.Tensor, y: torch.Tensor, objective: str,
                       n_bins: int) -> Callable[[torch.Tensor], torch.Tensor]:
    if objective == 'ece':
        correct = z.argmax(1) == y  # argmax does not depend on T > 0
        zmax = z.max(1, keepdim=True).values
        dz = z - zmax

        def f(s: torch.Tensor) -> torch.Tensor:
            conf = 1.0 / torch.exp(dz * torch.exp(-s)).sum(1)  # max softmax probability
            _, s_conf, s_hit = _bin_sums(conf, correct, n_bins)
            return ((s_hit - s_conf).abs().sum() / z.shape[0]).reshape(1)
    else:
        onehot = F.one_hot(y, z.shape[1]).to(torch.float64)

        def f(s: torch.Tensor) -> torch.Tensor:
            p = torch.softmax(z * torch.exp(-s), dim=1)
            return _ace_sorted(*_sorted_by_class(p, onehot), n_bins).reshape(1)
    return f


def _sigmoid_objective(z: torch.Tensor, y: torch.Tensor, objective: str,
                       n_bins: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Per-class calibration error of ``sigmoid(z / T_k)``, a (K,) vector for T (K,)."""
    n, k = z.shape
    if objective == 'ece':
        def f(s: torch.Tensor) -> torch.Tensor:
            p = torch.sigmoid(z * torch.exp(-s))
            _, s_conf, s_hit = _bin_sums(p, y, n_bins, groups=k)
            return (s_hit - s_conf).abs().sum(1) / n
    else:
        zs, ys = _sorted_by_class(z, y)  # sigmoid(z / T) keeps the order of z for T > 0

        def f(s: torch.Tensor) -> torch.Tensor:
            return _ace_sorted(torch.sigmoid(zs * torch.exp(-s)[:, None]), ys, n_bins,
                               per_class=True)
    return f


def fit_temperature(logits: Any, targets: Any, mode: str = 'softmax', objective: str = 'nll',
                    per_class: bool = False, n_bins: int = 15,
                    bounds: Sequence[float] = (0.05, 20.0), max_iter: int = 100) -> torch.Tensor:
    """Fit the temperature(s) that calibrate ``logits / T``; float32, 0-dim or (K,), on the
    device of ``logits``.

    Args:
        logits: (N, K) logits, or (N,) for ``mode='sigmoid'``.
        targets: softmax: int labels (N,); sigmoid: targets (N, K) / (N,) or labels, K background.
        mode: ``'softmax'`` or ``'sigmoid'``.
        objective: ``'nll'``, ``'ece'`` or ``'ace'``.
        per_class: One temperature per class (K,).
        n_bins, bounds: Bins and ``(T_min, T_max)`` of the ECE/ACE search.
        max_iter: L-BFGS iterations for ``'nll'``.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f'`objective` must be one of {OBJECTIVES}, got {objective!r}.')
    if not isinstance(per_class, bool):
        raise TypeError(f'`per_class` must be a bool, got {type(per_class).__name__}.')
    n_bins = check_n_bins(n_bins)
    if (not isinstance(bounds, (tuple, list)) or len(bounds) != 2
            or not 0 < float(bounds[0]) < float(bounds[1]) < math.inf):
        raise ValueError(f'`bounds` must be (T_min, T_max) with 0 < T_min < T_max, got {bounds!r}.')
    bounds = (float(bounds[0]), float(bounds[1]))
    z, y, squeeze = prepare_targets(logits, targets, mode)
    n, k = z.shape
    if per_class and squeeze:
        raise ValueError('`per_class=True` needs (N, K) logits; 1-D logits have a single class.')
    if objective == 'ace' and n < n_bins:
        raise ValueError(f"objective='ace' needs at least `n_bins`={n_bins} samples, got N={n}.")
    if per_class:
        if mode == 'softmax':
            if objective != 'nll':
                raise ValueError("per_class=True with mode='softmax' couples the K temperatures "
                                 "through the softmax; it is fitted with objective='nll' only.")
            missing = sorted(set(range(k)) - set(torch.unique(y).tolist()))
            if missing:
                raise ValueError(f'per_class=True needs every class among `targets`; classes '
                                 f'{missing[:20]} have no sample. Use per_class=False or a '
                                 'larger calibration set.')
        else:
            pos = y.sum(0)
            bad = ((pos == 0) | (pos == n)).nonzero().squeeze(1).tolist()
            if bad:
                raise ValueError(f'per_class=True needs positives and negatives for every class; '
                                 f'classes {bad[:20]} have only one kind in `targets`. Use '
                                 'per_class=False or a larger calibration set.')
    shape = (k,) if per_class else ()
    if objective == 'nll':
        t = _fit_nll(z, y, mode, shape, max_iter)
    elif mode == 'softmax':
        f = _softmax_objective(z, y, objective, n_bins)
        t = _search_log_t(f, 1, bounds, z.device).squeeze(0)
    else:
        f_cls = _sigmoid_objective(z, y, objective, n_bins)
        if per_class:
            t = _search_log_t(f_cls, k, bounds, z.device)
        else:
            t = _search_log_t(lambda s: f_cls(s.expand(k)).mean().reshape(1), 1, bounds,
                              z.device).squeeze(0)
    return t.to(torch.float32)
