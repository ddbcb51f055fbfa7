"""Statistics of the detection teacher-calibration study.

From the raw records of :func:`~.detection_teacher_study.run_study`: one row per
teacher (its calib-split metrics and its students' val mAP), the correlations of the teacher
metrics with the KD student's mAP (Pearson and Spearman with bootstrap 95% intervals, teachers
resampled), the per-teacher gain of calibrating (KD+cal - KD, paired by seed, t interval over
seeds), its dependence on the direction of miscalibration, and the NLL vs ACE vs ECE comparison
of the temperature objective.
"""
import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .statistics import bootstrap_mean_ci, correlation_with_ci, mean_ci

__all__ = ['TEACHER_METRICS', 'CORRELATION_SETS', 'GAIN_PREDICTORS', 'teacher_rows', 'summarize']

#: Teacher metrics (calib split) correlated with the students: key -> label.
TEACHER_METRICS = dict(map='teacher mAP', dece='teacher D-ECE',
                       dece_over='D-ECE, over-confident part',
                       dece_under='D-ECE, under-confident part', t_nll='fitted T (NLL)')
#: Correlation sets: key -> (label, student column, teachers included: None = all, or a family).
CORRELATION_SETS = {
    'kd': ('all teachers, KD student mAP', 'kd_map', None),
    'kd_vs_floor': ('all teachers, KD student mAP minus the no-KD student of its family',
                    'kd_vs_floor', None),
    'kd_gfl': ('GFL teachers only, KD student mAP', 'kd_map', 'gfl'),
    'kd_cal': ('all teachers, KD+cal student mAP', 'kd_cal_map', None),
}
#: Predictors of the gain of calibrating (direction of miscalibration): key -> label.
GAIN_PREDICTORS = dict(log_t_nll='log fitted T (NLL)',
                       dece_signed='D-ECE over - under (signed miscalibration)',
                       dece='teacher D-ECE')


def _mean_std(values: Sequence[float]) -> Dict[str, Optional[float]]:
    v = np.asarray(values, dtype=np.float64)
    return dict(mean=float(v.mean()) if v.size else None,
                std=float(v.std(ddof=1)) if v.size > 1 else None)


def _maps(students: Sequence[Dict[str, Any]], teacher: Optional[str], variant: str,
          family: Optional[str] = None) -> Dict[int, float]:
    """Seed -> val mAP of the students of one teacher (or of a family's no-KD students)."""
    return {s['seed']: s['map'] for s in students
            if s['teacher'] == teacher and s['variant'] == variant
            and (family is None or s['family'] == family)}


def teacher_rows(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    """One row per teacher: its calib-split metrics, temperatures and students.

    Columns: ``teacher``, ``family``, ``note``; on the calib split ``map``, ``map50``,
    ``dece``, ``dece_over``, ``dece_under``, ``nll`` and ``dece_thr`` (detections scoring
    at least the report threshold), ``t_nll``, ``t_ace``, ``t_ece``, ``dece_cal_<obj>`` (calib
    D-ECE after that objective's T) and ``dece_val_<obj>`` / ``dece_val`` (held-out val split);
    ``val_map`` (teacher on val); ``dece_signed`` (over - under, which equals the mean score
    minus the precision of the calib detections); ``direction`` (``'over'`` if
    ``dece_signed > 0``: the scores exceed the precision on average); ``log_t_nll``; the
    students: ``kd_maps`` / ``kd_cal_maps`` (seed -> mAP), ``kd_map`` / ``kd_cal_map`` (+
    ``_std``), ``gains`` (seed -> KD+cal - KD), ``gain``
    (:func:`~.statistics.mean_ci` over seeds: ``mean``, ``std``,
    ``ci95_low``, ``ci95_high``), ``kd_vs_floor`` / ``kd_cal_vs_floor`` (mean over seeds of the
    student minus the no-KD student of its family with the same seed).

    Args:
        results: Output of ``run_study``.

    Returns:
        list[dict]: The rows, in teacher order.
    """
    students = results['students']
    rows = []
    for t in results['teachers']:
        ms = t['measure']
        cal, val = ms['splits']['calib'], ms['splits']['val']
        temps = ms['temperatures']
        row: Dict[str, Any] = dict(
            teacher=t['name'], family=t['family'], note=t['note'],
            map=ms['map']['calib']['map'], map50=ms['map']['calib']['map50'],
            val_map=t['val']['map'], dece=cal['before']['dece'],
            dece_over=cal['before']['dece_over'], dece_under=cal['before']['dece_under'],
            nll=cal['before']['nll'], dece_thr=cal['before_thr']['dece'],
            num_dets=cal['before']['num_dets'], dece_val=val['before']['dece'],
            **{f't_{o}': temps[o] for o in temps},
            **{f'dece_cal_{o}': cal['after'][o]['dece'] for o in temps},
            **{f'dece_val_{o}': val['after'][o]['dece'] for o in temps},
            **{f'nll_val_{o}': val['after'][o]['nll'] for o in temps})
        row['log_t_nll'] = math.log(row['t_nll'])
        row['dece_signed'] = row['dece_over'] - row['dece_under']
        # Not the side of 1 that T falls on: a sigmoid score below 0.5 *falls* when its logit is
        # divided by T < 1, so over-confident low-score detections are corrected by T < 1.
        row['direction'] = 'over' if row['dece_signed'] > 0 else 'under'
        floor = _maps(students, None, 'none', t['family'])
        kd, kd_cal = _maps(students, t['name'], 'raw'), _maps(students, t['name'], 'nll')
        row['kd_maps'], row['kd_cal_maps'] = kd, kd_cal
        for key, maps in (('kd_map', kd), ('kd_cal_map', kd_cal)):
            s = _mean_std(list(maps.values()))
            row[key], row[key + '_std'] = s['mean'], s['std']
        paired = sorted(set(kd) & set(kd_cal))
        row['gains'] = {s: kd_cal[s] - kd[s] for s in paired}
        row['gain'] = mean_ci([row['gains'][s] for s in paired])
        for key, maps in (('kd_vs_floor', kd), ('kd_cal_vs_floor', kd_cal)):
            d = [maps[s] - floor[s] for s in sorted(set(maps) & set(floor))]
            row[key] = float(np.mean(d)) if d else None
        rows.append(row)
    return rows


def _objective_comparison(rows: List[Dict[str, Any]], students: Sequence[Dict[str, Any]],
                          objectives: Sequence[str]) -> Dict[str, Any]:
    """NLL vs ACE vs ECE: calibration on held-out val for every teacher, KD students for those
    that were given students of every objective (the most miscalibrated ones)."""
    heldout = {}
    for o in objectives:
        vals = [r[f'dece_val_{o}'] for r in rows]
        heldout[o] = dict(mean_dece_val=float(np.mean(vals)),
                          mean_nll_val=float(np.mean([r[f'nll_val_{o}'] for r in rows])),
                          best_count=int(sum(
                              1 for r in rows
                              if r[f'dece_val_{o}'] == min(r[f'dece_val_{p}']
                                                           for p in objectives))))
    compared = []
    for r in rows:
        maps = {o: _maps(students, r['teacher'], o) for o in objectives}
        if not all(maps[o] for o in objectives):
            continue
        seeds = sorted(set.intersection(*(set(m) for m in maps.values())))
        compared.append(dict(
            teacher=r['teacher'], dece=r['dece'], seeds=seeds,
            **{f't_{o}': r[f't_{o}'] for o in objectives},
            **{f'dece_cal_{o}': r[f'dece_cal_{o}'] for o in objectives},
            **{f'dece_val_{o}': r[f'dece_val_{o}'] for o in objectives},
            **{f'map_{o}': _mean_std([maps[o][s] for s in seeds]) for o in objectives},
            kd_map=_mean_std([r['kd_maps'][s] for s in seeds if s in r['kd_maps']]),
            maps={o: {s: maps[o][s] for s in seeds} for o in objectives}))
    vs_nll = {}
    for o in objectives:
        if o == 'nll':
            continue
        diffs = [c['maps'][o][s] - c['maps']['nll'][s] for c in compared for s in c['seeds']]
        vs_nll[o] = dict(mean_ci(diffs), pairs=len(diffs))
    means = {o: (float(np.mean([c['maps'][o][s] for c in compared for s in c['seeds']]))
                 if compared else None) for o in objectives}
    better = [o for o, d in vs_nll.items() if d['ci95_low'] is not None and d['ci95_low'] > 0]
    worse = [o for o, d in vs_nll.items() if d['ci95_high'] is not None and d['ci95_high'] < 0]
    if not compared:
        decision, default = ('no teacher has students of every objective: keep nll, the '
                             'default'), 'nll'
    elif any(d['ci95_low'] is None for d in vs_nll.values()):
        decision, default = ('too few (teacher, seed) pairs for an interval: keep nll, the '
                             'default'), 'nll'
    elif better:
        best = max(better, key=lambda o: vs_nll[o]['mean'])
        decision, default = (f'{best} gave better students than nll (95% CI of the paired '
                             'difference above 0): make it the default'), best
    elif len(worse) == len(vs_nll):
        decision, default = ('nll gave better students than every other objective (95% CIs '
                             'below 0): keep it the default'), 'nll'
    else:
        decision, default = ('no objective gave students distinguishable from nll (95% CIs '
                             'contain 0): keep nll, the default'), 'nll'
    return dict(heldout=heldout, teachers=compared, vs_nll=vs_nll, mean_student_map=means,
                decision=decision, default=default)


def summarize(results: Dict[str, Any]) -> Dict[str, Any]:
    """Add the table, correlations, gains and the objective comparison to the raw results.

    Adds ``teacher_table`` (:func:`teacher_rows`), ``floors`` (per family: seed -> no-KD mAP
    and its mean / std), ``correlations`` (set -> metric ->
    :func:`~.statistics.correlation_with_ci` over the teachers of
    :data:`CORRELATION_SETS`), ``gain`` (``all`` / ``over`` / ``under``:
    :func:`~.statistics.bootstrap_mean_ci` of the per-teacher mean gains, plus
    the teacher counts and how many gains are positive), ``gain_correlations`` (predictor of
    :data:`GAIN_PREDICTORS` -> correlation with the per-teacher gain) and ``objectives``.

    Args:
        results: Output of ``run_study`` (modified in place).

    Returns:
        dict: ``results`` with the keys above.
    """
    cfg = results['config']
    n_boot = int(cfg.get('n_boot', 10000))
    rows = teacher_rows(results)
    students = results['students']
    floors = {}
    for family in sorted({r['family'] for r in rows}):
        f = _maps(students, None, 'none', family)
        floors[family] = dict(maps=f, **_mean_std(list(f.values())))
    correlations: Dict[str, Any] = {}
    for key, (label, column, family) in CORRELATION_SETS.items():
        sel = [r for r in rows if (family is None or r['family'] == family)
               and r[column] is not None]
        if len(sel) < 3:
            continue
        correlations[key] = dict(label=label, column=column, family=family,
                                 teachers=[r['teacher'] for r in sel], metrics={
                                     m: correlation_with_ci([r[m] for r in sel],
                                                            [r[column] for r in sel],
                                                            n_boot=n_boot, seed=0)
                                     for m in TEACHER_METRICS})
    gained = [r for r in rows if r['gain']['mean'] is not None]
    gain: Dict[str, Any] = {}
    for group in ('all', 'over', 'under'):
        sel = [r for r in gained if group == 'all' or r['direction'] == group]
        g = [r['gain']['mean'] for r in sel]
        gain[group] = dict(bootstrap_mean_ci(g, n_boot=n_boot, seed=0) if g else
                           dict(n=0, mean=None, ci95_low=None, ci95_high=None),
                           teachers=[r['teacher'] for r in sel],
                           positive=int(sum(v > 0 for v in g)),
                           ci_excludes_zero_positive=sum(
                               1 for r in sel if r['gain']['ci95_low'] is not None
                               and r['gain']['ci95_low'] > 0),
                           ci_excludes_zero_negative=sum(
                               1 for r in sel if r['gain']['ci95_high'] is not None
                               and r['gain']['ci95_high'] < 0))
    gain_corr = {}
    if len(gained) >= 3:
        gain_corr = {k: correlation_with_ci([r[k] for r in gained],
                                            [r['gain']['mean'] for r in gained],
                                            n_boot=n_boot, seed=0) for k in GAIN_PREDICTORS}
    results.update(teacher_table=rows, floors=floors, correlations=correlations, gain=gain,
                   gain_correlations=gain_corr,
                   objectives=_objective_comparison(
                       rows, students, list(results['teachers'][0]['measure']['temperatures'])))
    return results
