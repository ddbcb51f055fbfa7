"""projects.teacher_studies.studies.statistics on hand-computed cases."""
import math

import numpy as np
import pytest

import _stats_refs as refs
from projects.teacher_studies.studies.statistics import (bootstrap_correlation_ci,
                                                         bootstrap_mean_ci, correlation_with_ci,
                                                         mean_ci, pearson_spearman)


def test_pearson_spearman_hand_case():
    # x = 1..4, y = 2, 4, 5, 9: deviations (-1.5, -.5, .5, 1.5) and (-3, -1, 0, 4);
    # Sxy = 11, Sxx = 5, Syy = 26 -> r = 11 / sqrt(130); same order -> rho = 1
    c = pearson_spearman([1, 2, 3, 4], [2, 4, 5, 9])
    assert c['n'] == 4
    assert c['pearson_r'] == pytest.approx(11 / math.sqrt(130), abs=1e-12)
    assert c['spearman_rho'] == pytest.approx(1.0, abs=1e-12)
    # t = r sqrt(2 / (1 - r^2)) = 11 sqrt(2) / 3 = 5.1854 on 2 dof: p = 1 - t / sqrt(t^2 + 2)
    t = 11 * math.sqrt(2) / 3
    assert c['pearson_p'] == pytest.approx(1 - t / math.sqrt(t * t + 2), rel=1e-9)
    # ties: ranks of (1, 1, 2, 3) are (1.5, 1.5, 3, 4)
    c = pearson_spearman([1, 1, 2, 3], [4, 3, 2, 1])
    assert c['spearman_rho'] == pytest.approx(
        refs.pearson([1.5, 1.5, 3, 4], [4, 3, 2, 1]), abs=1e-12)
    # undefined cases give None, not NaN
    assert pearson_spearman([1, 1, 1], [1, 2, 3])['pearson_r'] is None
    assert pearson_spearman([1, 2], [1, 2])['spearman_rho'] is None
    with pytest.raises(ValueError, match='one length'):
        pearson_spearman([1, 2, 3], [1, 2])


def test_mean_ci_hand_case():
    # mean 2, sd 1, t_{0.975, 2} = 4.302653 -> half-width 4.302653 / sqrt(3) = 2.484138
    c = mean_ci([1.0, 2.0, 3.0])
    assert (c['mean'], c['std']) == pytest.approx((2.0, 1.0))
    assert (c['ci95_low'], c['ci95_high']) == pytest.approx((2 - 2.484138, 2 + 2.484138),
                                                            abs=1e-5)
    assert mean_ci([5.0])['ci95_low'] is None and mean_ci([])['mean'] is None


def test_bootstrap_mean_ci_on_discrete_cases():
    # two values 0 and 1: a resampled mean is 0, 1/2, 1 with probability 1/4, 1/2, 1/4, so the
    # 2.5% and 97.5% percentiles of many resamples are exactly 0 and 1
    c = bootstrap_mean_ci([0.0, 1.0], n_boot=4000, seed=3)
    assert (c['mean'], c['ci95_low'], c['ci95_high']) == (0.5, 0.0, 1.0)
    c = bootstrap_mean_ci([2.5, 2.5, 2.5], n_boot=200)
    assert (c['ci95_low'], c['ci95_high']) == (2.5, 2.5)
    assert bootstrap_mean_ci([1.0], n_boot=200)['ci95_low'] is None
    with pytest.raises(ValueError, match='n_boot'):
        bootstrap_mean_ci([1.0, 2.0], n_boot=10)


def test_bootstrap_correlation_ci_counts_and_atoms():
    # x = (0, 1, 2), y = (0, 1, 0): a resample is undefined when y is constant (all indices in
    # {0, 2}: 8 of 27) or x is (index 1 three times: 1 of 27), so 2/3 of the resamples count;
    # the defined ones take r = +1 ({0,0,1}, {0,1,1}), -1 ({1,1,2}, {1,2,2}) or 0, so the
    # percentile interval is [-1, 1]
    n_boot = 30000
    c = bootstrap_correlation_ci([0.0, 1.0, 2.0], [0.0, 1.0, 0.0], n_boot=n_boot, seed=1)
    assert c['n_boot_used'] / n_boot == pytest.approx(2 / 3, abs=0.01)
    assert (c['pearson_ci95_low'], c['pearson_ci95_high']) == pytest.approx((-1.0, 1.0))
    # an exactly linear relation: every defined resample has r = rho = 1
    x = np.arange(8.0)
    c = correlation_with_ci(x, 3 * x - 2, n_boot=500)
    assert c['pearson_r'] == pytest.approx(1.0)
    for key in ('pearson_ci95_low', 'pearson_ci95_high', 'spearman_ci95_low',
                'spearman_ci95_high'):
        assert c[key] == pytest.approx(1.0), key
    # a monotone, non-linear relation: rho = 1 in every resample, r < 1 in most
    c = correlation_with_ci(x, np.exp(x), n_boot=500)
    assert c['spearman_ci95_low'] == pytest.approx(1.0)
    assert c['pearson_ci95_low'] < c['pearson_r'] < 1.0
    assert bootstrap_correlation_ci([1.0, 2.0], [1.0, 2.0], n_boot=200)['n_boot_used'] == 0
