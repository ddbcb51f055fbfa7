"""The post-hoc calibrators of a teacher's class logits, one record each (docs/calibration.md):
``temperature``, ``class_temperature``, ``platt`` (``a_c z_c + b_c`` by NLL) and ``isotonic``
(an interpolated PAV map of each class's probability). A class without positive and negative
targets keeps the identity map (listed in ``identity_classes``).
"""
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ._inputs import as_tensor
from .temperature import fit_temperature, lbfgs_minimise, prepare_targets

__all__ = ['CALIBRATORS', 'Calibrator', 'apply_calibrator', 'fit_calibrator', 'isotonic_fit']

#: Probabilities mapped by ``isotonic`` are clamped to [EPS, 1 - EPS] before the logit.
EPS = 1e-6
State = Dict[str, Any]


@dataclass(frozen=True)
class Calibrator:
    """One calibrator: its ``name`` (the ``calibrator=`` value), a ``description``, ``fit``
    (``(z, y, mode, **options) -> state``), ``apply`` (``(z, state, mode) -> logits``, classes
    last), ``summary`` (``state -> str``) and ``identity`` (one class's identity-map tensors).
    """

    name: str
    description: str
    fit: Callable[..., State]
    apply: Callable[[Tensor, State, str], Tensor]
    summary: Callable[[State], str]
    identity: Dict[str, Tensor]


def _fittable(y: Tensor, mode: str, k: int) -> Tensor:
    """Bool (K,): which classes have positive and negative targets."""
    if mode == 'softmax':
        y = F.one_hot(y, k).to(torch.float64)
    return (y.sum(0) > 0) & ((1 - y).sum(0) > 0)


def _fit_platt(z: Tensor, y: Tensor, mode: str) -> State:  # by NLL: no options
    k = z.shape[1]
    ok = _fittable(y, mode, k)
    a = torch.ones(k, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(k, dtype=torch.float64, requires_grad=True)
    # sigmoid: a sum of K independent binary NLLs (classes that cannot be fitted left out)
    loss_fn = ((lambda: F.cross_entropy(z * a + b, y)) if mode == 'softmax' else
               (lambda: F.binary_cross_entropy_with_logits(z[:, ok] * a[ok] + b[ok], y[:, ok])))
    lbfgs_minimise([a, b], loss_fn, max_iter=200, tolerance_grad=1e-10, tolerance_change=1e-14)
    a, b = a.detach(), b.detach()
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        raise ValueError('Platt scaling diverged (the calibration set is separable): calibrate '
                         "on held-out data the teacher does not fit perfectly, or use 'isotonic'.")
    if mode == 'sigmoid':
        a, b = torch.where(ok, a, 1.0), torch.where(ok, b, 0.0)
    return dict(a=a.float(), b=b.float(), identity_classes=(~ok).nonzero().flatten().tolist()
                if mode == 'sigmoid' else [])


def isotonic_fit(x: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The increasing least-squares fit of ``y`` on ``x`` (pool-adjacent-violators), as knots
    ``(xs, ys)`` (xs strictly increasing, constant runs reduced to their ends) for ``np.interp``.
    """
    xs, inv = np.unique(x, return_inverse=True)
    w = np.bincount(inv).astype(np.float64)
    v = np.bincount(inv, weights=y) / w
    # blocks as (value, weight, length); merge while the order is violated
    val, wt, ln = [], [], []
    for vi, wi in zip(v, w):
        val.append(vi)
        wt.append(wi)
        ln.append(1)
        while len(val) > 1 and val[-2] >= val[-1]:
            w2 = wt[-2] + wt[-1]
            val[-2] = (val[-2] * wt[-2] + val[-1] * wt[-1]) / w2
            wt[-2], ln[-2] = w2, ln[-2] + ln[-1]
            del val[-1], wt[-1], ln[-1]
    ys = np.repeat(val, ln)
    keep = np.ones(len(xs), bool)  # drop the inner points of a constant run
    keep[1:-1] = ~((ys[1:-1] == ys[:-2]) & (ys[1:-1] == ys[2:]))
    return xs[keep], ys[keep]


def _fit_isotonic(z: Tensor, y: Tensor, mode: str) -> State:
    k = z.shape[1]
    ok = _fittable(y, mode, k)
    p = (torch.softmax(z, 1) if mode == 'softmax' else torch.sigmoid(z)).cpu().numpy()
    yy = (F.one_hot(y, k) if mode == 'softmax' else y).cpu().numpy().astype(np.float64)
    identity = (np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    knots = [isotonic_fit(p[:, c], yy[:, c]) if ok[c] else identity for c in range(k)]
    m = max(len(kx) for kx, _ in knots)
    # pad by repeating the last knot: interpolation beyond it stays constant, as np.interp
    pad = [np.concatenate([v, np.full(m - len(v), v[-1])]) for kx, ky in knots for v in (kx, ky)]
    return dict(x=torch.tensor(np.stack(pad[0::2])), y=torch.tensor(np.stack(pad[1::2])),
                identity_classes=(~ok).nonzero().flatten().tolist())


def _interp(p: Tensor, xs: Tensor, ys: Tensor) -> Tensor:
    """``np.interp`` of each class column of p (N, K) on its knots (K, M), clamped at the ends."""
    pt = p.transpose(0, 1).contiguous()  # (K, N)
    i = torch.searchsorted(xs, pt).clamp(1, xs.shape[1] - 1)
    x0, x1 = xs.gather(1, i - 1), xs.gather(1, i)
    y0, y1 = ys.gather(1, i - 1), ys.gather(1, i)
    frac = ((pt - x0) / (x1 - x0).clamp_min(1e-300)).clamp(0, 1)
    out = y0 + frac * (y1 - y0)
    out = torch.where(pt <= xs[:, :1], ys[:, :1], out)
    return torch.where(pt >= xs[:, -1:], ys[:, -1:], out).transpose(0, 1)


def _apply_isotonic(z: Tensor, s: State, mode: str) -> Tensor:
    shape = z.shape
    flat = z.reshape(-1, shape[-1]).to(torch.float64)
    xs, ys = s['x'].to(flat.device, torch.float64), s['y'].to(flat.device, torch.float64)
    if mode == 'softmax':
        q = _interp(torch.softmax(flat, 1), xs, ys).clamp_min(EPS)
        out = torch.log(q / q.sum(1, keepdim=True))
    else:
        out = torch.logit(_interp(torch.sigmoid(flat), xs, ys), eps=EPS)
    return out.to(z.dtype).reshape(shape)


def _fit_t(per_class: bool) -> Callable[..., State]:
    def fit(z: Tensor, y: Tensor, mode: str, objective: str = 'nll', n_bins: int = 15) -> State:
        return dict(t=fit_temperature(z, y, mode=mode, objective=objective, per_class=per_class,
                                      n_bins=n_bins))
    return fit


def _apply_affine(z: Tensor, s: State, mode: str) -> Tensor:
    if 't' in s:
        return z / s['t'].to(z.device, z.dtype)
    return z * s['a'].to(z.device, z.dtype) + s['b'].to(z.device, z.dtype)


def _round(t: Tensor) -> str:
    return str([round(v, 4) for v in t.flatten().tolist()] if t.dim() else round(t.item(), 4))


CALIBRATORS: Dict[str, Calibrator] = {c.name: c for c in (
    Calibrator('temperature', 'logits divided by one fitted temperature', _fit_t(False),
               _apply_affine, lambda s: f"T={_round(s['t'])}", dict(t=torch.ones(()))),
    Calibrator('class_temperature', 'one fitted temperature per class', _fit_t(True),
               _apply_affine, lambda s: f"T={_round(s['t'])}", dict(t=torch.ones(()))),
    Calibrator('platt', 'per-class affine map a_c * z + b_c of the logits, fitted by NLL',
               _fit_platt, _apply_affine, lambda s: f"a={_round(s['a'])} b={_round(s['b'])}",
               dict(a=torch.ones(1), b=torch.zeros(1))),
    Calibrator('isotonic', "per-class monotone map of the probabilities (PAV)", _fit_isotonic,
               _apply_isotonic, lambda s: f"{s['x'].shape[1]} knots per class",
               dict(x=torch.tensor([[0.0, 1.0]], dtype=torch.float64),
                    y=torch.tensor([[0.0, 1.0]], dtype=torch.float64))),
)}


def _get(name: str) -> Calibrator:
    if name not in CALIBRATORS:
        raise ValueError(f"calibrator must be one of {sorted(CALIBRATORS) + ['auto']}, got "
                         f'{name!r}.')
    return CALIBRATORS[name]


def fit_calibrator(name: str, logits: Any, targets: Any, mode: str = 'sigmoid',
                   classes: Optional[Any] = None, num_classes: Optional[int] = None,
                   **options: Any) -> State:
    """Fit one calibrator; its state (with ``calibrator``, ``mode``) for :func:`apply_calibrator`.

    Args:
        name: A key of :data:`CALIBRATORS`.
        logits: (N, K) logits, or (N,) for one sigmoid score per sample.
        targets: softmax: labels (N,); sigmoid: labels with K = background, or targets in [0, 1].
        mode: ``'softmax'`` or ``'sigmoid'``.
        classes, num_classes: With (N,) logits: each sample's class and K, to fit per class.
        **options: Temperature calibrators: ``objective``, ``n_bins``.
    """
    cal = _get(name)
    if classes is not None and name != 'temperature':
        return dict(calibrator=name, mode=mode,
                    **_fit_by_class(cal, logits, targets, classes, num_classes, options))
    z, y, _ = prepare_targets(logits, targets, mode)
    return dict(calibrator=name, mode=mode, **cal.fit(z, y, mode, **options))


def _fit_by_class(cal: Calibrator, logits: Any, targets: Any, classes: Any,
                  k: Optional[int], options: Dict[str, Any]) -> State:
    """A per-class sigmoid calibrator fitted on each class's (N,) scores (the identity for a
    class that cannot be fitted, listed in ``identity_classes``).
    """
    z, y, squeeze = prepare_targets(logits, targets, 'sigmoid')
    c = as_tensor(classes, 'classes').long().reshape(-1)
    if not squeeze or c.shape[0] != z.shape[0] or k is None or (c < 0).any() or (c >= k).any():
        raise ValueError('`classes` needs (N,) logits, one class index in [0, num_classes) per '
                         'sample, and `num_classes`.')
    parts, missing = [], []
    for j in range(k):
        zj, yj = z[c == j], y[c == j]
        try:
            if not _fittable(yj, 'sigmoid', 1).all():
                raise ValueError('no positive or no negative sample')
            fitted = cal.fit(zj, yj, 'sigmoid', **options)
            parts.append({key: v for key, v in fitted.items() if isinstance(v, Tensor)})
        except ValueError:  # also a class whose samples are separable
            missing.append(j)
            parts.append(cal.identity)
    out: State = {}
    for key in parts[0]:
        vals = [p[key].reshape(1, -1) if p[key].dim() > 1 else p[key].reshape(1) for p in parts]
        if vals[0].dim() == 2:  # isotonic knots: pad each class by its last knot
            m = max(v.shape[1] for v in vals)
            vals = [torch.cat([v, v[:, -1:].expand(1, m - v.shape[1])], 1) for v in vals]
        out[key] = torch.cat([v.to(vals[0].dtype) for v in vals])
    out['identity_classes'] = missing
    return out


def apply_calibrator(state: State, logits: Tensor) -> Tensor:
    """Map logits (classes in the last dim) with a fitted calibrator's state."""
    return _get(state['calibrator']).apply(logits, state, state['mode'])
