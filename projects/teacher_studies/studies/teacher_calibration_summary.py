"""Summary statistics of the classification teacher-calibration study.

Turns the raw per-(seed, teacher) records of
:func:`~.teacher_calibration_study.run_study` into per-teacher means,
correlations of teacher metrics with student accuracy, and the gain of calibrating the teacher,
split by the direction of its miscalibration.
"""
import math
from typing import Any, Dict, Optional, Sequence

import numpy as np

from .statistics import mean_ci, pearson_spearman

__all__ = ['CORR_METRICS', 'MEAN_FIELDS', 'correlation_table', 'summarize']

#: Teacher metrics correlated with student accuracy: JSON key -> label.
CORR_METRICS = dict(ace='teacher ACE', ece='teacher ECE', ece_over='teacher ECE_o',
                    ece_under='teacher ECE_u', nll='teacher NLL', acc='teacher accuracy',
                    kd_conf='teacher confidence on the KD images')
#: Per-run fields averaged over seeds in the per-teacher table.
MEAN_FIELDS = ('acc', 'ece', 'ace', 'ece_over', 'ece_under', 'nll', 'mean_conf', 't_cal',
               'ece_scaled', 'ace_scaled', 'ece_over_scaled', 'ece_under_scaled', 'nll_scaled',
               'mean_conf_scaled',
               'nll_cal', 'nll_cal_scaled', 'kd_acc', 'kd_conf', 'kd_conf_scaled',
               'student_acc_raw', 'student_acc_cal', 'gain')


def correlation_table(rows: Sequence[Dict[str, Any]],
                      with_calibrated: bool = False) -> Dict[str, Dict[str, Optional[float]]]:
    """Correlation of each teacher metric with the accuracy of the student it taught.

    Args:
        rows: Records with the teacher metrics (``ace``, ``ece``, ... and their ``_scaled``
            versions) and ``student_acc_raw`` / ``student_acc_cal``.
        with_calibrated: Also add one point per row for the calibrated teacher (its
            ``*_scaled`` metrics against ``student_acc_cal``; its accuracy is unchanged), as in
            the pooled raw + calibrated scatter.

    Returns:
        dict: metric key -> :func:`~.statistics.pearson_spearman` result.
    """
    out = {}
    for key in CORR_METRICS:
        x = [r[key] for r in rows]
        y = [r['student_acc_raw'] for r in rows]
        if with_calibrated:
            x += [r[key if key == 'acc' else key + '_scaled'] for r in rows]
            y += [r['student_acc_cal'] for r in rows]
        out[key] = pearson_spearman(x, y)
    return out


def summarize(results: Dict[str, Any]) -> Dict[str, Any]:
    """Add per-teacher means, correlations and calibration gains to the raw results.

    * ``per_teacher``: every :data:`MEAN_FIELDS` averaged over seeds (``gain`` =
      ``student_acc_cal - student_acc_raw``), with ``*_std`` over seeds, and ``direction``:
      ``'over'`` if the mean ``T_cal > 1`` else ``'under'``.
    * ``correlations``: ``per_teacher_raw`` (:func:`correlation_table` of the per-teacher
      means, one point per teacher), ``per_teacher_pooled`` (plus the calibrated teachers),
      ``per_seed`` (the raw table within each seed) and ``per_seed_summary`` (mean and std over
      seeds of each per-seed coefficient) and ``teacher_ace_vs_acc`` (teacher ACE vs
      teacher accuracy across teachers: how confounded the two predictors are) and
      ``gain_vs_log_t_cal`` (over all (seed, teacher) pairs: ``log T_cal`` vs the gain).
    * ``gain``: ``all`` / ``over`` / ``under``: :func:`.mean_ci` over seeds of the mean gain of
      the (seed, teacher) pairs of that group, with the teacher's direction taken from its own
      ``T_cal`` in that seed (seeds without such a teacher are skipped), plus ``pairs`` (count)
      and ``frac_positive`` / ``frac_negative`` over the pairs.
    * ``baseline``: :func:`.mean_ci` of the no-KD student accuracy over seeds.

    Args:
        results: Output of
            :func:`~.teacher_calibration_study.run_study`.

    Returns:
        dict: ``results`` with the keys above added (modified in place and returned).
    """
    runs = results['runs']
    for r in runs:
        r['gain'] = r['student_acc_cal'] - r['student_acc_raw']
        r['direction'] = 'over' if r['t_cal'] > 1 else 'under'
    teachers = list(dict.fromkeys(r['teacher'] for r in runs))
    seeds = list(dict.fromkeys(r['seed'] for r in runs))
    per_teacher = []
    for name in teachers:
        rs = [r for r in runs if r['teacher'] == name]
        row: Dict[str, Any] = dict(teacher=name, n_seeds=len(rs))
        for key in MEAN_FIELDS:
            vals = np.array([r[key] for r in rs], dtype=np.float64)
            row[key] = float(vals.mean())
            row[key + '_std'] = float(vals.std(ddof=1)) if vals.size > 1 else 0.0
        row['direction'] = 'over' if row['t_cal'] > 1 else 'under'
        per_teacher.append(row)
    per_seed = {str(s): correlation_table([r for r in runs if r['seed'] == s]) for s in seeds}
    seed_summary: Dict[str, Dict[str, Any]] = {}
    for key in CORR_METRICS:
        seed_summary[key] = {}
        for stat in ('pearson_r', 'spearman_rho'):
            vals = [per_seed[str(s)][key][stat] for s in seeds]
            vals = [v for v in vals if v is not None]
            seed_summary[key][stat] = mean_ci(vals)
    gain: Dict[str, Any] = {}
    for group in ('all', 'over', 'under'):
        pairs = [r for r in runs if group == 'all' or r['direction'] == group]
        per_seed_gain = []
        for s in seeds:
            g = [r['gain'] for r in pairs if r['seed'] == s]
            if g:
                per_seed_gain.append(float(np.mean(g)))
        gains = np.array([r['gain'] for r in pairs], dtype=np.float64)
        gain[group] = dict(over_seeds=mean_ci(per_seed_gain), per_seed=per_seed_gain,
                           pairs=int(gains.size),
                           pair_mean=float(gains.mean()) if gains.size else None,
                           frac_positive=float((gains > 0).mean()) if gains.size else None,
                           frac_negative=float((gains < 0).mean()) if gains.size else None)
    results['per_teacher'] = per_teacher
    results['correlations'] = dict(per_teacher_raw=correlation_table(per_teacher),
                                   per_teacher_pooled=correlation_table(per_teacher, True),
                                   per_seed=per_seed, per_seed_summary=seed_summary)
    results['correlations']['teacher_ace_vs_acc'] = pearson_spearman(
        [r['ace'] for r in per_teacher], [r['acc'] for r in per_teacher])
    results['correlations']['gain_vs_log_t_cal'] = pearson_spearman(
        [math.log(r['t_cal']) for r in runs], [r['gain'] for r in runs])
    results['gain'] = gain
    results['baseline_summary'] = mean_ci([b['student_acc'] for b in results['baseline']])
    results['kd_vs_baseline'] = mean_ci([
        float(np.mean([r['student_acc_raw'] for r in runs if r['seed'] == b['seed']])) -
        b['student_acc'] for b in results['baseline']])
    return results
