"""The detection study's statistics on planted results (no training): table columns, paired
gains and their t intervals, correlations, direction groups and the objective decision, checked
against hand-written references."""
import math

import pytest

import _stats_refs as refs
from projects.teacher_studies.studies.detection_study_summary import summarize

OBJECTIVES = ('nll', 'ace', 'ece')


def _split(dece, over, nll=0.5, n=100):
    s = dict(dece=dece, dece_over=over, dece_under=dece - over, nll=nll, num_dets=n,
             mean_score=0.5, precision=0.5)
    return s


def _teacher(name, family, map_, dece, over, temps, val_after):
    cal = dict(before=_split(dece, over), before_thr=_split(dece + 0.01, over),
               after={o: _split(dece / 4, 0.0) for o in OBJECTIVES},
               after_thr={o: _split(dece / 4, 0.0) for o in OBJECTIVES})
    val = dict(before=_split(dece, over), before_thr=_split(dece, over),
               after={o: _split(val_after[o], 0.0, nll=0.3 + val_after[o]) for o in OBJECTIVES},
               after_thr={o: _split(val_after[o], 0.0) for o in OBJECTIVES})
    return dict(name=name, family=family, note=name, scheduled_iters=400, trained_iters=400,
                val=dict(map=map_ - 0.01), measure=dict(
                    temperatures=dict(zip(OBJECTIVES, temps)), map=dict(calib=dict(
                        map=map_, map50=map_ + 0.2)), splits=dict(calib=cal, val=val)))


#: teacher -> (family, calib mAP, D-ECE, its over part, T for nll/ace/ece, KD maps per seed,
#: KD+cal maps per seed)
PLANTED = {
    't1': ('gfl', 0.60, 0.20, 0.02, (0.30, 0.35, 0.40), (0.40, 0.42, 0.44), (0.45, 0.46, 0.50)),
    't2': ('gfl', 0.50, 0.10, 0.08, (1.50, 1.40, 1.30), (0.38, 0.39, 0.41), (0.37, 0.38, 0.42)),
    't3': ('gfl', 0.70, 0.15, 0.05, (0.80, 0.70, 0.90), (0.45, 0.46, 0.47), (0.46, 0.48, 0.47)),
    't4': ('retinanet', 0.40, 0.05, 0.04, (1.20, 1.10, 1.25), (0.30, 0.33, 0.31),
           (0.29, 0.30, 0.30)),
}
FLOOR = dict(gfl=(0.30, 0.32, 0.31), retinanet=(0.20, 0.22, 0.21))


def _results():
    teachers, students = [], []
    for name, (fam, m, d, o, temps, kd, cal) in PLANTED.items():
        teachers.append(_teacher(name, fam, m, d, o, temps,
                                 dict(nll=d / 3, ace=d / 2, ece=d / 5)))
        for seed in range(3):
            students.append(dict(family=fam, teacher=name, variant='raw', seed=seed, map=kd[seed]))
            students.append(dict(family=fam, teacher=name, variant='nll', seed=seed,
                                 map=cal[seed]))
    for fam, maps in FLOOR.items():
        students += [dict(family=fam, teacher=None, variant='none', seed=s, map=v)
                     for s, v in enumerate(maps)]
    # objective students for t1 (the largest D-ECE): ACE always 0.05 better than NLL, ECE worse
    for seed, v in enumerate(PLANTED['t1'][6]):
        students.append(dict(family='gfl', teacher='t1', variant='ace', seed=seed,
                             map=v + 0.05 + 0.001 * seed))
        students.append(dict(family='gfl', teacher='t1', variant='ece', seed=seed,
                             map=v - 0.02 + 0.003 * seed))
    return dict(config=dict(n_boot=500, seeds=[0, 1, 2]), teachers=teachers, students=students)


def test_table_gains_and_intervals_by_hand():
    res = summarize(_results())
    rows = {r['teacher']: r for r in res['teacher_table']}
    for name, (fam, m, d, o, temps, kd, cal) in PLANTED.items():
        r = rows[name]
        assert (r['map'], r['dece'], r['dece_over']) == (m, d, o)
        assert r['dece_under'] == pytest.approx(d - o)
        # direction: the sign of over - under (the mean score minus the precision), not T's side
        assert r['t_nll'] == temps[0] and r['direction'] == ('over' if o > d - o else 'under')
        gains = [c - k for c, k in zip(cal, kd)]
        mean, sd, lo, hi = refs.t_interval(gains)
        assert r['gain']['mean'] == pytest.approx(mean, abs=1e-12)
        assert r['gain']['std'] == pytest.approx(sd, abs=1e-12)
        assert (r['gain']['ci95_low'], r['gain']['ci95_high']) == pytest.approx((lo, hi),
                                                                                abs=1e-12)
        floor = FLOOR[fam]
        assert r['kd_vs_floor'] == pytest.approx(sum(k - f for k, f in zip(kd, floor)) / 3)
    # t1: gains 0.05, 0.04, 0.06: mean 0.05, sd 0.01, t_{.975,2} 4.302653 -> +-0.024841
    assert rows['t1']['gain']['ci95_low'] == pytest.approx(0.05 - 0.0248414, abs=1e-6)


def test_correlations_and_groups_by_hand():
    res = summarize(_results())
    rows = res['teacher_table']
    kd = [r['kd_map'] for r in rows]
    for metric in ('map', 'dece', 'dece_over', 'dece_under', 't_nll'):
        x = [r[metric] for r in rows]
        c = res['correlations']['kd']['metrics'][metric]
        assert c['pearson_r'] == pytest.approx(refs.pearson(x, kd), abs=1e-12)
        assert c['spearman_rho'] == pytest.approx(refs.spearman(x, kd), abs=1e-12)
        assert c['pearson_p'] == pytest.approx(refs.pearson_p(refs.pearson(x, kd), 4), abs=1e-9)
        assert -1 <= c['pearson_ci95_low'] <= c['pearson_ci95_high'] <= 1
    gfl = [r for r in rows if r['family'] == 'gfl']
    c = res['correlations']['kd_gfl']['metrics']['dece']
    assert c['n'] == 3 and c['pearson_r'] == pytest.approx(
        refs.pearson([r['dece'] for r in gfl], [r['kd_map'] for r in gfl]), abs=1e-12)
    # direction groups: t2 (over 0.08 of 0.10) and t4 (0.04 of 0.05) have over > under
    assert res['gain']['over']['teachers'] == ['t2', 't4']
    over = [r['gain']['mean'] for r in rows if r['teacher'] in ('t2', 't4')]
    assert res['gain']['over']['mean'] == pytest.approx(sum(over) / 2, abs=1e-12)
    assert res['gain']['all']['positive'] == 2  # t1 and t3 gained on average
    g = res['gain_correlations']['log_t_nll']
    assert g['pearson_r'] == pytest.approx(refs.pearson(
        [math.log(r['t_nll']) for r in rows], [r['gain']['mean'] for r in rows]), abs=1e-12)


def test_objective_decision_follows_the_planted_difference():
    res = summarize(_results())
    ob = res['objectives']
    assert [c['teacher'] for c in ob['teachers']] == ['t1']
    assert ob['vs_nll']['ace']['mean'] == pytest.approx(0.051, abs=1e-12)
    assert ob['vs_nll']['ace']['ci95_low'] > 0 and ob['vs_nll']['ece']['ci95_high'] < 0
    assert ob['default'] == 'ace' and 'ace gave better students' in ob['decision']
    # held-out calibration: ECE's T has the lowest val D-ECE (d / 5) for every teacher
    assert ob['heldout']['ece']['best_count'] == 4
    assert ob['heldout']['nll']['mean_dece_val'] == pytest.approx(
        sum(v[2] for v in PLANTED.values()) / 3 / 4)
    # without a real difference the default stays NLL
    r = _results()
    for s in r['students']:
        if s['variant'] in ('ace', 'ece'):
            nll = next(x['map'] for x in r['students'] if x['teacher'] == s['teacher']
                       and x['variant'] == 'nll' and x['seed'] == s['seed'])
            s['map'] = nll + (0.01 if s['seed'] == 0 else -0.01 if s['seed'] == 1 else 0.0)
    ob = summarize(r)['objectives']
    assert ob['default'] == 'nll' and 'keep nll' in ob['decision']
