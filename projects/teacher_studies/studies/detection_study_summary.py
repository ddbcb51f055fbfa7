"""Statistics of the detection teacher-calibration study.

From the raw records of :func:`~.detection_teacher_study.run_study`: one row per
teacher (its calib-split metrics and its students' val mAP), the correlations of the teacher
metrics with the KD student's mAP (Pearson and Spearman with bootstrap 95% intervals, teachers
resampled), the per-teacher gain of calibrating (KD+cal - KD, paired by seed, t interval over
seeds), its dependence on the direction of miscalibration, the NLL vs ACE vs ECE comparison
of the temperature objective, and the calibrator comparison (temperature, per-class
temperature, Platt, isotonic, auto: teacher D-ECE / LaECE before and after against the
student's mAP and its gain over raw KD, the best calibrator per direction, auto vs
temperature), on the study's schedule and on the long one.
"""
import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .statistics import bootstrap_mean_ci, correlation_with_ci, mean_ci, pearson_spearman

__all__ = ['TEACHER_METRICS', 'CORRELATION_SETS', 'GAIN_PREDICTORS', 'CALIBRATORS',
           'CAL_METRICS', 'teacher_rows', 'calibrator_comparison', 'summarize']

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
#: The calibrators compared, in table order.
CALIBRATORS = ('temperature', 'class_temperature', 'platt', 'isotonic', 'auto')
#: Calibrator -> the variant of its KD students (the ``temperature`` calibrator, fitted by NLL
#: on TP targets, is the NLL temperature of the objective arms).
CAL_VARIANTS = dict(temperature='nll', class_temperature='class_temperature', platt='platt',
                    isotonic='isotonic', auto='auto')
#: Calibration metrics of the calibrator comparison: key -> label.
CAL_METRICS = dict(dece='D-ECE', laece='LaECE')
#: Teacher metrics correlated with an arm's students: key -> label (``after``: after the
#: arm's calibrator, on the calib split; the raw arm has the ``raw`` ones only).
CAL_PREDICTORS = dict(dece_raw='raw D-ECE', laece_raw='raw LaECE', dece_after='D-ECE after',
                      laece_after='LaECE after')


def _mean_std(values: Sequence[float]) -> Dict[str, Optional[float]]:
    v = np.asarray(values, dtype=np.float64)
    return dict(mean=float(v.mean()) if v.size else None,
                std=float(v.std(ddof=1)) if v.size > 1 else None)


def _maps(students: Sequence[Dict[str, Any]], teacher: Optional[str], variant: str,
          family: Optional[str] = None, schedule: str = 'short') -> Dict[int, float]:
    """Seed -> val mAP of the students of one teacher (or of a family's no-KD students)."""
    return {s['seed']: s['map'] for s in students
            if s['teacher'] == teacher and s['variant'] == variant
            and (family is None or s['family'] == family)
            and s.get('schedule', 'short') == schedule}


def teacher_rows(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    """One row per teacher: its calib-split metrics, temperatures and students.

    Columns: ``teacher``, ``family``, ``note``; on the calib split ``map``, ``map50``,
    ``dece``, ``dece_over``, ``dece_under``, ``nll`` and ``dece_thr`` (detections scoring
    at least the report threshold), ``t_nll``, ``t_ace``, ``t_ece``, ``dece_cal_<obj>`` (calib
    D-ECE after that objective's T) and ``dece_val_<obj>`` / ``dece_val`` (held-out val split);
    ``val_map`` (teacher on val); ``laece`` (calib, before calibration); ``dece_signed``
    (over - under, which equals the mean score
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
            laece=ms.get('calibrators', {}).get('temperature', {}).get('before', {}).get('laece'),
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


def _calibration_views(rec: Dict[str, Any]) -> Dict[str, Optional[float]]:
    """D-ECE and LaECE of one fitted calibrator (a ``measure.json`` ``calibrators`` entry):
    ``<metric>_<view>`` for views ``calib_before`` / ``calib_after`` (fitted on all of the
    calib split), ``fit_after`` (fitted on half of its images, on that half), ``heldout_before``
    / ``heldout_after`` (on the other half) and ``val_before`` / ``val_after`` (the fit on all
    of calib, on val). For ``auto`` the half rows are those of the candidate it chose."""
    row = next((r for r in rec.get('splits', []) if r['name'] == rec['chosen']
                and 'heldout_after' in r), None)
    val = rec.get('other', {}).get('val')
    out: Dict[str, Optional[float]] = {}
    for m in CAL_METRICS:
        out[f'{m}_calib_before'] = rec['before'].get(m)
        out[f'{m}_calib_after'] = rec['after'].get(m)
        for view in ('fit_after', 'heldout_before', 'heldout_after'):
            out[f'{m}_{view}'] = row[view].get(m) if row else None
        for view in ('before', 'after'):
            out[f'{m}_val_{view}'] = val[view].get(m) if val else None
    return out


def _paired(a: Dict[int, float], b: Dict[int, float]) -> Dict[int, float]:
    """Seed -> a - b over the seeds both have."""
    return {s: a[s] - b[s] for s in sorted(set(a) & set(b))}


def calibrator_comparison(results: Dict[str, Any], schedule: str = 'short',
                          teachers: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Students per calibrator, next to raw KD and the no-KD floor, and their statistics.

    Args:
        results: Raw results (``teachers`` with their ``measure``, ``students``, ``config``).
        schedule: ``'short'`` (the study's students) or ``'long'`` (the long arm).
        teachers: Only these teachers (None: all).

    Returns:
        dict: ``schedule``; ``teachers``: per teacher ``teacher``, ``family``, ``direction``,
        ``dece_signed``, ``auto_choice``, ``floor`` / ``raw`` (``maps`` seed -> mAP, ``mean``,
        ``std``), ``raw_calibration`` (calib D-ECE, LaECE before), and ``arms[calibrator]``
        (``variant``, ``maps``, ``mean``, ``std``, ``gains`` seed -> arm - raw KD, ``gain``
        (:func:`~.statistics.mean_ci`), ``vs_floor``, ``calibration``
        (:func:`_calibration_views`), ``describe``); ``correlations[arm][predictor][y]``
        (:func:`~.statistics.correlation_with_ci` over teachers of :data:`CAL_PREDICTORS`
        against ``map`` (the arm's mean student mAP) and ``gain`` (its mean gain over raw
        KD)); ``ranking[group][calibrator]`` for groups ``all`` / ``over`` / ``under``
        (bootstrap mean of the per-teacher mean gains, ``best_count``: teachers where it has
        the highest mean student mAP of the calibrators, ties counting for each) and
        ``ranking[group]['best']`` (the largest mean gain); ``versus_temperature``
        (:func:`_versus_temperature`); ``error_vs_student`` (:func:`_error_vs_student`);
        ``auto_vs_temperature``
        (per teacher the paired differences auto - temperature, ``loses``: a mean below 0,
        ``loses_ci``: its 95% t interval below 0; ``ever_loses``, ``teachers_lost``).
    """
    n_boot = int(results['config'].get('n_boot', 10000))
    students = results['students']
    rows = []
    for t in results['teachers']:
        if teachers is not None and t['name'] not in teachers:
            continue
        ms = t['measure']
        before = ms['splits']['calib']['before']
        cals = ms.get('calibrators', {})
        signed = before['dece_over'] - before['dece_under']
        floor = _maps(students, None, 'none', t['family'], schedule)
        raw = _maps(students, t['name'], 'raw', schedule=schedule)
        row: Dict[str, Any] = dict(
            teacher=t['name'], family=t['family'], dece_signed=signed,
            direction='over' if signed > 0 else 'under',
            auto_choice=cals['auto']['chosen'] if 'auto' in cals else None,
            floor=dict(maps=floor, **_mean_std(list(floor.values()))),
            raw=dict(maps=raw, **_mean_std(list(raw.values()))),
            raw_calibration={m: cals['temperature']['before'].get(m) if cals else None
                             for m in CAL_METRICS}, arms={})
        for c in CALIBRATORS:
            if c not in cals:
                continue
            maps = _maps(students, t['name'], CAL_VARIANTS[c], schedule=schedule)
            gains = _paired(maps, raw)
            d = list(_paired(maps, floor).values())
            row['arms'][c] = dict(variant=CAL_VARIANTS[c], maps=maps,
                                  **_mean_std(list(maps.values())), gains=gains,
                                  gain=mean_ci(list(gains.values())),
                                  vs_floor=float(np.mean(d)) if d else None,
                                  calibration=_calibration_views(cals[c]),
                                  describe=cals[c].get('describe'))
        rows.append(row)
    arms = [c for c in CALIBRATORS if any(c in r['arms'] for r in rows)]
    correlations: Dict[str, Any] = {}
    for arm in ('raw', ) + tuple(arms):
        out: Dict[str, Any] = {}
        for pred in CAL_PREDICTORS:
            if arm == 'raw' and pred.endswith('_after'):
                continue
            for y in ('map', 'gain'):
                if arm == 'raw' and y == 'gain':
                    continue
                pts = []
                for r in rows:
                    a = r['raw'] if arm == 'raw' else r['arms'].get(arm)
                    if a is None:
                        continue
                    m = pred.split('_')[0]
                    xv = (r['raw_calibration'][m] if pred.endswith('_raw') else
                          a['calibration'][f'{m}_calib_after'])
                    yv = a['mean'] if y == 'map' else a['gain']['mean']
                    if xv is not None and yv is not None and np.isfinite(xv):
                        pts.append((xv, yv))
                if len(pts) >= 3:
                    out.setdefault(pred, {})[y] = dict(
                        correlation_with_ci([p[0] for p in pts], [p[1] for p in pts],
                                            n_boot=n_boot, seed=0),
                        teachers=len(pts))
        correlations[arm] = out
    ranking: Dict[str, Any] = {}
    for group in ('all', 'over', 'under'):
        sel = [r for r in rows if group == 'all' or r['direction'] == group]
        g: Dict[str, Any] = {}
        for c in arms:
            means = [r['arms'][c]['gain']['mean'] for r in sel
                     if c in r['arms'] and r['arms'][c]['gain']['mean'] is not None]
            best = 0
            for r in sel:
                m = {k: a['mean'] for k, a in r['arms'].items() if a['mean'] is not None}
                if c in m and m[c] == max(m.values()):
                    best += 1
            g[c] = dict(bootstrap_mean_ci(means, n_boot=n_boot, seed=0) if means else
                        dict(n=0, mean=None, ci95_low=None, ci95_high=None),
                        best_count=best, teachers=len(sel))
        scored = [c for c in arms if g[c]['mean'] is not None]
        g['best'] = max(scored, key=lambda c: g[c]['mean']) if scored else None
        ranking[group] = g
    versus = []
    for r in rows:
        if 'auto' not in r['arms'] or 'temperature' not in r['arms']:
            continue
        d = _paired(r['arms']['auto']['maps'], r['arms']['temperature']['maps'])
        ci = mean_ci(list(d.values()))
        versus.append(dict(teacher=r['teacher'], choice=r['auto_choice'], diffs=d, **ci,
                           loses=ci['mean'] is not None and ci['mean'] < 0,
                           loses_ci=ci['ci95_high'] is not None and ci['ci95_high'] < 0))
    return dict(schedule=schedule, teachers=rows, correlations=correlations, ranking=ranking,
                versus_temperature=_versus_temperature(rows, arms, n_boot),
                error_vs_student=_error_vs_student(rows, n_boot),
                auto_vs_temperature=dict(
                    teachers=versus, ever_loses=any(v['loses'] for v in versus),
                    teachers_lost=[v['teacher'] for v in versus if v['loses']],
                    teachers_lost_ci=[v['teacher'] for v in versus if v['loses_ci']]))


def _versus_temperature(rows: List[Dict[str, Any]], arms: Sequence[str],
                        n_boot: int) -> Dict[str, Any]:
    """Each calibrator against ``temperature``, paired by teacher: the bootstrap mean (over
    teachers) of the per-teacher difference of mean gains, and the default it implies: the
    calibrator whose interval lies above 0 with the largest mean, else ``temperature`` (no
    calibrator beat the one-parameter map distinguishably)."""
    out: Dict[str, Any] = {}
    for c in arms:
        if c == 'temperature':
            continue
        d = [r['arms'][c]['gain']['mean'] - r['arms']['temperature']['gain']['mean']
             for r in rows if c in r['arms'] and 'temperature' in r['arms']
             and r['arms'][c]['gain']['mean'] is not None
             and r['arms']['temperature']['gain']['mean'] is not None]
        out[c] = (bootstrap_mean_ci(d, n_boot=n_boot, seed=0) if d else
                  dict(n=0, mean=None, ci95_low=None, ci95_high=None))
    above = [c for c, v in out.items() if v['ci95_low'] is not None and v['ci95_low'] > 0]
    out['default'] = max(above, key=lambda c: out[c]['mean']) if above else 'temperature'
    return out


def _error_vs_student(rows: List[Dict[str, Any]], n_boot: int,
                      metric: str = 'laece_val_after') -> Dict[str, Any]:
    """Does the calibrator that leaves the teacher better calibrated teach better? Per teacher,
    over its distinct calibrators (``auto`` repeats one of them), the Spearman rho between the
    teacher's calibration error after the calibrator on val (``metric``) and the student's mean
    mAP (negative: lower error, better student); the bootstrap mean of rho over teachers; and
    the teachers where the calibrator of lowest error gave the best student."""
    rhos, lowest_best = [], []
    for r in rows:
        pts = [(a['calibration'][metric], a['mean']) for c, a in r['arms'].items()
               if c != 'auto' and a['mean'] is not None
               and a['calibration'].get(metric) is not None]
        if len(pts) < 3:
            continue
        rho = pearson_spearman([p[0] for p in pts], [p[1] for p in pts])['spearman_rho']
        if rho is not None:
            rhos.append(rho)
        if min(pts)[1] == max(p[1] for p in pts):
            lowest_best.append(r['teacher'])
    return dict(metric=metric, rho=(bootstrap_mean_ci(rhos, n_boot=n_boot, seed=0) if rhos else
                                    dict(n=0, mean=None, ci95_low=None, ci95_high=None)),
                lowest_error_best=lowest_best, teachers=len(rows))


def summarize(results: Dict[str, Any]) -> Dict[str, Any]:
    """Add the table, correlations, gains and the objective comparison to the raw results.

    Adds ``teacher_table`` (:func:`teacher_rows`), ``floors`` (per family: seed -> no-KD mAP
    and its mean / std), ``correlations`` (set -> metric ->
    :func:`~.statistics.correlation_with_ci` over the teachers of
    :data:`CORRELATION_SETS`), ``gain`` (``all`` / ``over`` / ``under``:
    :func:`~.statistics.bootstrap_mean_ci` of the per-teacher mean gains, plus
    the teacher counts and how many gains are positive), ``gain_correlations`` (predictor of
    :data:`GAIN_PREDICTORS` -> correlation with the per-teacher gain), ``objectives``,
    ``calibrator_comparison`` (:func:`calibrator_comparison`, when the measurements have
    calibrators) and ``long_arm`` (the same on the long schedule's students and teachers, plus
    ``gfl_floor``: the no-KD GFL student's maps, mean and whether it reached 0.30).

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
    if 'calibrators' in results['teachers'][0]['measure']:
        results['calibrator_comparison'] = calibrator_comparison(results)
    if any(s.get('schedule') == 'long' for s in students):
        long = calibrator_comparison(results, 'long', results.get('long_teachers'))
        gfl = _maps(students, None, 'none', 'gfl', 'long')
        long['gfl_floor'] = dict(maps=gfl, **_mean_std(list(gfl.values())))
        long['gfl_floor']['reached_030'] = (long['gfl_floor']['mean'] is not None
                                            and long['gfl_floor']['mean'] >= 0.30)
        results['long_arm'] = long
    results.update(teacher_table=rows, floors=floors, correlations=correlations, gain=gain,
                   gain_correlations=gain_corr,
                   objectives=_objective_comparison(
                       rows, students, list(results['teachers'][0]['measure']['temperatures'])))
    return results
