"""Small-sample statistics shared by the studies: correlations, t and bootstrap intervals.

Every function returns plain floats (or ``None`` where a quantity is undefined, e.g. a
correlation of a constant column), ready for JSON.
"""
import math
from typing import Dict, Optional, Sequence

import numpy as np

__all__ = ['pearson_spearman', 'mean_ci', 'bootstrap_mean_ci', 'bootstrap_correlation_ci',
           'correlation_with_ci']


def pearson_spearman(x: Sequence[float], y: Sequence[float]) -> Dict[str, Optional[float]]:
    """Pearson and Spearman correlation with their two-sided p-values (scipy.stats).

    Args:
        x: First variable.
        y: Second variable, same length.

    Returns:
        dict: ``n``, ``pearson_r``, ``pearson_p``, ``spearman_rho``, ``spearman_p``; the four
        statistics are ``None`` when undefined (fewer than 3 points or a constant input)
        instead of NaN.
    """
    from scipy import stats

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f'pearson_spearman needs two 1-D sequences of one length, got shapes '
                         f'{x.shape} and {y.shape}.')
    out: Dict[str, Optional[float]] = dict(n=int(x.size), pearson_r=None, pearson_p=None,
                                           spearman_rho=None, spearman_p=None)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return out
    pr = stats.pearsonr(x, y)
    sr = stats.spearmanr(x, y)
    for key, val in (('pearson_r', pr.statistic), ('pearson_p', pr.pvalue),
                     ('spearman_rho', sr.statistic), ('spearman_p', sr.pvalue)):
        out[key] = float(val) if np.isfinite(val) else None
    return out


def mean_ci(values: Sequence[float]) -> Dict[str, Optional[float]]:
    """Mean, sample standard deviation and the t-based 95% confidence interval of the mean.

    Args:
        values: The sample.

    Returns:
        dict: ``n``, ``mean`` (None for an empty sample), ``std``, ``ci95_low``, ``ci95_high``
        (None with fewer than 2 values).
    """
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    out: Dict[str, Optional[float]] = dict(n=int(v.size), mean=float(v.mean()) if v.size else None,
                                           std=None, ci95_low=None, ci95_high=None)
    if v.size >= 2:
        sd = float(v.std(ddof=1))
        half = float(stats.t.ppf(0.975, v.size - 1) * sd / math.sqrt(v.size))
        out.update(std=sd, ci95_low=out['mean'] - half, ci95_high=out['mean'] + half)
    return out


def _check_boot(n_boot: int) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 100:
        raise ValueError(f'`n_boot` must be an int >= 100 (bootstrap resamples), got {n_boot!r}.')


def bootstrap_mean_ci(values: Sequence[float], n_boot: int = 10000,
                      seed: int = 0) -> Dict[str, Optional[float]]:
    """Mean with a percentile-bootstrap 95% interval (resampling the values with replacement).

    Args:
        values: The sample (e.g. one value per teacher).
        n_boot: Number of resamples.
        seed: Seed of the resampling.

    Returns:
        dict: ``n``, ``mean``, ``ci95_low``, ``ci95_high`` (the 2.5 and 97.5 percentiles of the
        resampled means; None with fewer than 2 values).
    """
    _check_boot(n_boot)
    v = np.asarray(values, dtype=np.float64)
    out: Dict[str, Optional[float]] = dict(n=int(v.size), mean=float(v.mean()) if v.size else None,
                                           ci95_low=None, ci95_high=None)
    if v.size >= 2:
        idx = np.random.default_rng(seed).integers(0, v.size, size=(n_boot, v.size))
        means = v[idx].mean(axis=1)
        lo, hi = np.percentile(means, [2.5, 97.5])
        out.update(ci95_low=float(lo), ci95_high=float(hi))
    return out


def _ranks(a: np.ndarray) -> np.ndarray:
    """Average ranks along the last axis (ties share their mean rank), as Spearman needs."""
    from scipy.stats import rankdata
    return rankdata(a, axis=-1)


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair; NaN where a row of ``x`` or ``y`` is constant."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    den = np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
    constant = (np.ptp(x, axis=1) == 0) | (np.ptp(y, axis=1) == 0)
    with np.errstate(invalid='ignore', divide='ignore'):
        r = (xc * yc).sum(axis=1) / np.where(constant, 1.0, den)
    r[constant] = np.nan
    return np.clip(r, -1.0, 1.0)


def bootstrap_correlation_ci(x: Sequence[float], y: Sequence[float], n_boot: int = 10000,
                             seed: int = 0) -> Dict[str, Optional[float]]:
    """Percentile-bootstrap 95% intervals of Pearson r and Spearman rho (pairs resampled).

    Each resample draws ``n`` (x, y) pairs with replacement; resamples in which x or y is
    constant (correlation undefined) are dropped, and ``n_boot_used`` says how many remained.

    Args:
        x: First variable.
        y: Second variable, same length.
        n_boot: Number of resamples.
        seed: Seed of the resampling.

    Returns:
        dict: ``pearson_ci95_low/high``, ``spearman_ci95_low/high`` (None with fewer than 3
        pairs or fewer than 100 usable resamples) and ``n_boot_used``.
    """
    _check_boot(n_boot)
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if xa.shape != ya.shape or xa.ndim != 1:
        raise ValueError(f'bootstrap_correlation_ci needs two 1-D sequences of one length, got '
                         f'shapes {xa.shape} and {ya.shape}.')
    out: Dict[str, Optional[float]] = dict(pearson_ci95_low=None, pearson_ci95_high=None,
                                           spearman_ci95_low=None, spearman_ci95_high=None,
                                           n_boot_used=0)
    if xa.size < 3:
        return out
    idx = np.random.default_rng(seed).integers(0, xa.size, size=(n_boot, xa.size))
    bx, by = xa[idx], ya[idx]
    r_p = _rowwise_pearson(bx, by)
    r_s = _rowwise_pearson(_ranks(bx), _ranks(by))
    ok = np.isfinite(r_p) & np.isfinite(r_s)
    out['n_boot_used'] = int(ok.sum())
    if ok.sum() < 100:
        return out
    for name, r in (('pearson', r_p[ok]), ('spearman', r_s[ok])):
        lo, hi = np.percentile(r, [2.5, 97.5])
        out[f'{name}_ci95_low'], out[f'{name}_ci95_high'] = float(lo), float(hi)
    return out


def correlation_with_ci(x: Sequence[float], y: Sequence[float], n_boot: int = 10000,
                        seed: int = 0) -> Dict[str, Optional[float]]:
    """:func:`pearson_spearman` and :func:`bootstrap_correlation_ci` in one dict.

    Args:
        x: First variable.
        y: Second variable, same length.
        n_boot: Number of bootstrap resamples.
        seed: Seed of the resampling.

    Returns:
        dict: The keys of both functions.
    """
    out = pearson_spearman(x, y)
    out.update(bootstrap_correlation_ci(x, y, n_boot=n_boot, seed=seed))
    return out
