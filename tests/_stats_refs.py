"""Statistics written out by hand, as independent references for the studies' numbers.

Nothing here calls the correlation functions the code under test uses (scipy.stats.pearsonr /
spearmanr): Pearson r from raw sums, Spearman rho as Pearson r of average ranks computed with
a plain loop, and the t-distribution only for p-values and t intervals.
"""
import math
from typing import List, Sequence


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """r = (n Sxy - Sx Sy) / sqrt((n Sxx - Sx^2)(n Syy - Sy^2))."""
    n = len(x)
    sx, sy = math.fsum(x), math.fsum(y)
    sxy = math.fsum(a * b for a, b in zip(x, y))
    sxx, syy = math.fsum(a * a for a in x), math.fsum(b * b for b in y)
    return (n * sxy - sx * sy) / math.sqrt((n * sxx - sx * sx) * (n * syy - sy * sy))


def average_ranks(v: Sequence[float]) -> List[float]:
    """1-based ranks; tied values share the mean of the ranks they occupy."""
    order = sorted(range(len(v)), key=lambda i: v[i])
    ranks = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rho: Pearson r of the average ranks."""
    return pearson(average_ranks(x), average_ranks(y))


def pearson_p(r: float, n: int) -> float:
    """Two-sided p-value of r under H0 (t = r sqrt((n - 2) / (1 - r^2)), n - 2 dof)."""
    from scipy.stats import t as student_t
    t = r * math.sqrt((n - 2) / (1 - r * r))
    return float(2 * student_t.sf(abs(t), n - 2))


def t_interval(values: Sequence[float]) -> tuple:
    """(mean, sample std, low, high) of the t-based 95% interval of the mean."""
    from scipy.stats import t as student_t
    n = len(values)
    m = math.fsum(values) / n
    sd = math.sqrt(math.fsum((v - m) ** 2 for v in values) / (n - 1))
    half = student_t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return m, sd, m - half, m + half
