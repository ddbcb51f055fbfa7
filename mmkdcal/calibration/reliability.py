"""Reliability diagrams (DeGroot & Fienberg 1983; Niculescu-Mizil & Caruana 2005).

Bars of accuracy per equal-width confidence bin against the diagonal, the gap shaded, a count
histogram below, ECE and ACE in the title. matplotlib is imported inside the functions
(optional), so the module imports without it.
"""
import os
from typing import Any, Dict, Optional

import numpy as np
import torch

from ._inputs import as_tensor, binary_targets, check_n_bins, check_probs, float_tensor
from .metrics import _bin_sums, _top_label, ace, binary_ece, classwise_ece, ece
from .temperature import prepare_targets

__all__ = ['reliability_stats', 'reliability_diagram', 'reliability_diagram_before_after']


def reliability_stats(probs: Any, labels: Any, n_bins: int = 15) -> Dict[str, Any]:
    """Numbers behind a reliability diagram: ``kind``, ``ece``, ``ace``, ``n`` and per-bin
    ``bin_count``, ``bin_acc``, ``bin_conf`` of ``n_bins`` equal-width bins.

    ``'top-label'``: softmax ``probs`` (N, K), int ``labels``; ``'binary'``: ``probs`` (N,), 0/1
    ``labels``; ``'class-wise'``: sigmoid ``probs`` (N, K), binary ``labels`` (N, K), pooled.
    """
    n_bins = check_n_bins(n_bins)
    p = float_tensor(probs, 'probs', ndim=(1, 2), finite=False)
    lab = as_tensor(labels, 'labels')
    if p.dim() == 2 and lab.dim() == 1:
        kind = 'top-label'
        conf, hits = _top_label(p, lab)
        e, a = ece(p, lab, n_bins), ace(p, lab, n_bins)
    else:  # binary (N,) or class-wise (N, K) scores against 0/1 labels of their shape
        check_probs(p, 'probs')
        t = binary_targets(lab, p.shape, 'labels')
        if p.dim() == 1:
            kind, conf, hits = 'binary', p, t
            e, a = binary_ece(p, t, n_bins), ace(p[:, None], t[:, None], n_bins)
        else:
            kind, conf, hits = 'class-wise', p.reshape(-1), t.reshape(-1)
            e, a = classwise_ece(p, t, n_bins), ace(p, t, n_bins)
    # the bin of confidence exactly 1 joins the last bin
    count, s_conf, s_hit = (torch.cat([x[0, :-2], x[0, -2:].sum(0, keepdim=True)])
                            for x in _bin_sums(conf, hits, n_bins))
    safe = count.clamp(min=1)
    return dict(kind=kind, ece=e, ace=a, n=int(conf.numel()),
                bin_count=[int(c) for c in count.tolist()],
                bin_acc=(s_hit / safe).tolist(), bin_conf=(s_conf / safe).tolist())


def _draw(fig: Any, spec: Any, stats: Dict[str, Any], title: Optional[str]) -> None:
    """Draw one reliability panel (bars + gap + diagonal) and its count histogram."""
    n_bins = len(stats['bin_count'])
    gs = spec.subgridspec(2, 1, height_ratios=(3, 1), hspace=0.08)
    ax = fig.add_subplot(gs[0])
    axh = fig.add_subplot(gs[1], sharex=ax)
    width = 1.0 / n_bins
    centers = (np.arange(n_bins) + 0.5) * width
    count = np.asarray(stats['bin_count'], dtype=float)
    acc = np.asarray(stats['bin_acc'])
    conf = np.asarray(stats['bin_conf'])
    full = count > 0
    ylabel = {'top-label': 'accuracy', 'binary': 'fraction positive (precision)',
              'class-wise': 'fraction positive (all classes)'}[stats['kind']]
    ax.bar(centers[full], acc[full], width=width, color='#4C72B0', edgecolor='black',
           linewidth=0.6, label='output')
    ax.bar(centers[full], conf[full] - acc[full], bottom=acc[full], width=width,
           color='#DD8452', alpha=0.45, edgecolor='#C44E52', hatch='//', linewidth=0.6,
           label='gap to mean confidence')
    ax.plot([0, 1], [0, 1], '--', color='gray', linewidth=1.2, label='perfect calibration')
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel=ylabel)
    ax.legend(loc='upper left', fontsize=8)
    ax.text(0.97, 0.04, f"ECE = {stats['ece']:.4f}\nACE = {stats['ace']:.4f}\nN = {stats['n']}",
            transform=ax.transAxes, ha='right', va='bottom', fontsize=9,
            bbox=dict(boxstyle='round', facecolor='white', alpha=0.85))
    head = f'{title}\n' if title else ''
    ax.set_title(f"{head}ECE {stats['ece']:.4f} | ACE {stats['ace']:.4f}", fontsize=10)
    ax.tick_params(labelbottom=False)
    axh.bar(centers, np.maximum(count, 0), width=width, color='#55A868', edgecolor='black',
            linewidth=0.5)
    if count.max() > 0:
        axh.set_yscale('log')
        axh.set_ylim(0.8, count.max() * 2)
    axh.set(ylabel='count', xlabel='confidence')


def _save(fig: Any, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches='tight')


def _check_path(path: Any) -> str:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f'`path` must be a str or os.PathLike, got {type(path).__name__}.')
    path = os.fspath(path)
    if not path.lower().endswith('.png'):
        raise ValueError(f'`path` must end with .png (a PNG is written), got {path!r}.')
    return path


def reliability_diagram(probs: Any, labels: Any, path: str, n_bins: int = 15,
                        title: Optional[str] = None) -> Dict[str, Any]:
    """Write the reliability diagram of ``probs`` / ``labels`` (as :func:`reliability_stats`) to
    ``path`` (``n_bins`` bins, optional ``title``); return its stats plus ``path``.
    """
    path = _check_path(path)
    stats = reliability_stats(probs, labels, n_bins)
    from matplotlib.figure import Figure  # optional: matplotlib

    fig = Figure(figsize=(5.2, 6.0))
    _draw(fig, fig.add_gridspec(1, 1)[0], stats, title)
    _save(fig, path)
    return dict(stats, path=path)


def reliability_diagram_before_after(logits: Any, labels: Any, temperature: Any, path: str,
                                     mode: str = 'softmax', n_bins: int = 15,
                                     title: Optional[str] = None, after: Optional[Any] = None,
                                     after_label: Optional[str] = None) -> Dict[str, Any]:
    """Two reliability diagrams side by side (``path``, ``n_bins``, ``title``): ``logits``
    (``labels`` as :func:`~mmkdcal.calibration.fit_temperature` takes them, ``mode``) before and
    after calibration by ``temperature``, or shown as ``after`` (another calibrator's logits,
    panel title ``after_label``). Returns ``before`` / ``after`` stats, ``temperature``, ``path``.
    """
    path = _check_path(path)
    z, y, squeeze = prepare_targets(logits, labels, mode)
    if after is not None:
        za = float_tensor(after, 'after', ndim=(1, 2)).to(torch.float64).to(z.device)
        za = za[:, None] if squeeze else za
        if za.shape != z.shape:
            raise ValueError(f'`after` must be shaped like `logits` {tuple(z.shape)}, got '
                             f'{tuple(za.shape)}.')
        t, t_txt = None, after_label or 'calibrated'
    else:
        t = float_tensor(temperature, 'temperature', ndim=(0, 1)).to(torch.float64)
        if (t <= 0).any():
            raise ValueError(f'`temperature` must be > 0, got {t.tolist()}.')
        if t.dim() == 1 and t.shape[0] != z.shape[1]:
            raise ValueError(f'A per-class `temperature` needs {z.shape[1]} entries (one per '
                             f'class), got {t.shape[0]}.')
        t = t.to(z.device)
        za = z / t
        t_txt = 'T = ' + (f'{t.item():.3f}' if t.dim() == 0 else
                          f'per class, mean {t.mean().item():.3f}')
    results = {}
    for name, zz in (('before', z), ('after', za)):
        if mode == 'softmax':
            results[name] = reliability_stats(torch.softmax(zz, dim=1), y, n_bins)
        elif squeeze:
            results[name] = reliability_stats(torch.sigmoid(zz[:, 0]), y[:, 0], n_bins)
        else:
            results[name] = reliability_stats(torch.sigmoid(zz), y, n_bins)
    from matplotlib.figure import Figure  # optional: matplotlib

    fig = Figure(figsize=(10.4, 6.0))
    gs = fig.add_gridspec(1, 2, wspace=0.25)
    head = f'{title}: ' if title else ''
    _draw(fig, gs[0], results['before'], f'{head}before (T = 1)')
    _draw(fig, gs[1], results['after'], f'{head}after ({t_txt})')
    _save(fig, path)
    t_out = None if t is None else t.item() if t.dim() == 0 else t.tolist()
    return dict(results, temperature=t_out, path=path)
