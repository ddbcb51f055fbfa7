"""The detection study's calibrator arms on planted values (no training): the auto student is the
chosen calibrator's, gains and auto-vs-temperature by hand, the long-arm teacher rule, and a
calibrator arm's command handing its saved state to the package's hook."""
import os.path as osp

import pytest
from mmengine.config import Config

from mmdet.registry import HOOKS

import mmkdcal  # noqa: F401
from projects.teacher_studies.studies import detection_study_summary as dss
from projects.teacher_studies.studies import detection_teacher_study as dts
from projects.teacher_studies.studies.detection_study_summary import calibrator_comparison

CALS = ('temperature', 'class_temperature', 'platt', 'isotonic', 'auto')


def _measure(over, under, auto_choice):
    split = dict(before=dict(dece=0.1, laece=0.2), after=dict(dece=0.05, laece=0.1))
    cal = {c: dict(chosen=c, splits=[], other={}, **split) for c in CALS}
    cal['auto']['chosen'] = auto_choice
    return dict(splits=dict(calib=dict(before=dict(dece_over=over, dece_under=under))),
                calibrators=cal)


def test_gains_ranking_and_auto_vs_temperature_by_hand():
    teachers = [dict(name='a', family='gfl', measure=_measure(0.1, 0.0, 'platt')),
                dict(name='b', family='gfl', measure=_measure(0.0, 0.1, 'temperature')),
                dict(name='c', family='gfl', measure=_measure(0.0, 0.2, 'isotonic'))]
    planted = {  # teacher -> arm -> maps of seeds 0, 1
        'a': dict(raw=(0.30, 0.32), nll=(0.31, 0.35), class_temperature=(0.30, 0.30),
                  platt=(0.29, 0.31), isotonic=(0.33, 0.33)),
        'b': dict(raw=(0.40, 0.40), nll=(0.42, 0.44), class_temperature=(0.41, 0.41),
                  platt=(0.38, 0.38), isotonic=(0.40, 0.42)),
        'c': dict(raw=(0.20, 0.22), nll=(0.20, 0.20), class_temperature=(0.25, 0.27),
                  platt=(0.21, 0.23), isotonic=(0.30, 0.30))}
    students = [dict(family='gfl', teacher=None, variant='none', seed=s, map=0.1)
                for s in (0, 1)]
    for t, arms in planted.items():
        choice = dict(a='platt', b='nll', c='isotonic')[t]
        for v, maps in list(arms.items()) + [('auto', arms[choice])]:
            students += [dict(family='gfl', teacher=t, variant=v, seed=s, map=m)
                         for s, m in enumerate(maps)]
    comp = calibrator_comparison(dict(config=dict(n_boot=200), teachers=teachers,
                                      students=students))
    rows = {r['teacher']: r for r in comp['teachers']}
    assert rows['a']['direction'] == 'over' and rows['c']['direction'] == 'under'
    # temperature on a: gains 0.01 and 0.03 -> mean 0.02
    assert rows['a']['arms']['temperature']['gain']['mean'] == pytest.approx(0.02)
    assert rows['c']['arms']['isotonic']['vs_floor'] == pytest.approx(0.20)
    # per-teacher mean gains of isotonic: a 0.02, b 0.01, c 0.09 -> 0.04, the best overall
    assert comp['ranking']['all']['isotonic']['mean'] == pytest.approx(0.04)
    assert comp['ranking']['all']['best'] == 'isotonic'
    # under-confident b and c: class_temperature (0.01, 0.05) 0.03; isotonic (0.01, 0.09) 0.05;
    # auto (b: temperature 0.03, c: isotonic 0.09) 0.06, the best there
    assert comp['ranking']['under']['isotonic']['mean'] == pytest.approx(0.05)
    assert comp['ranking']['under']['auto']['mean'] == pytest.approx(0.06)
    assert comp['ranking']['under']['best'] == 'auto'
    assert comp['ranking']['under']['class_temperature']['mean'] == pytest.approx(0.03)
    # auto - temperature: a platt - nll = (-0.02, -0.04): loses; b 0; c (+0.10, +0.10)
    av = {v['teacher']: v for v in comp['auto_vs_temperature']['teachers']}
    assert av['a']['mean'] == pytest.approx(-0.03) and av['a']['loses']
    assert av['b']['mean'] == 0 and not av['b']['loses']
    assert comp['auto_vs_temperature']['teachers_lost'] == ['a']


def test_long_arm_rule():
    m = {n: dict(splits=dict(calib=dict(before=dict(dece_over=o, dece_under=u))))
         for n, o, u in (('o1', 0.3, 0.0), ('o2', 0.1, 0.0), ('o3', 0.2, 0.05),
                         ('u1', 0.0, 0.1), ('u2', 0.01, 0.3), ('u3', 0.0, 0.05))}
    # over - under: o1 .3, o2 .1, o3 .15; u1 -.1, u2 -.29, u3 -.05
    assert dts.long_arm_teachers(m, 4) == ['o1', 'o3', 'u1', 'u2']
    only_over = {k: v for k, v in m.items() if k.startswith('o') or k == 'u3'}
    assert dts.long_arm_teachers(only_over, 4) == ['o1', 'o2', 'o3', 'u3']


def test_a_calibrator_arm_gives_the_package_hook_its_saved_state():
    """A calibrator arm's command selects TeacherCalibrationHook with the measurement's file and
    sha256 (the hook's loading is tested in tests/engine/test_calibrator_file.py)."""
    t = dts.DetTeacher(name='a', family='gfl', config=dts.GFL_W32, note='')
    rec = dict(state_file='m/calibrator_platt.pth', sha256='ab' * 32, same_state_as=None)
    deps = dict(teacher_a=dict(config='t.py', checkpoint='t.pth'),
                measure_a=dict(calibrators=dict(platt=rec, auto=dict(rec, same_state_as='platt'))))
    argv = dts._kd_argv(None, t, 0, 'platt', deps, [], 8, 'wd')
    assert argv[1] == dts.FAMILIES['gfl']['kd_given']
    opts = argv[argv.index('--cfg-options') + 1:]
    cfg = Config.fromfile(osp.join(dts.ROOT, argv[1]))
    cfg.merge_from_dict(dict(o.split('=', 1) for o in opts if not o.startswith('custom_imp')))
    hook = HOOKS.build(cfg.custom_hooks[0])
    assert type(hook).__name__ == 'TeacherCalibrationHook'
    assert (hook.calibrator_file, hook.calibrator_sha256) == (rec['state_file'], rec['sha256'])
    assert cfg.model.teacher_temperature is None
    assert dts._kd_argv(None, t, 0, 'auto', deps, [], 8, 'wd') is None  # platt's student


def _row(teacher, arms):
    """A calibrator-comparison row: arm -> (mean gain over raw KD, student mAP, val LaECE)."""
    return dict(teacher=teacher, arms={c: dict(gain=dict(mean=g), mean=m,
                                               calibration=dict(laece_val_after=e))
                                       for c, (g, m, e) in arms.items()})


def test_versus_temperature_and_the_default_it_implies_by_hand():
    # platt - temperature per teacher: +0.01, +0.03 (every resample's mean is above 0);
    # isotonic - temperature: +0.02, -0.04 -> mean -0.01, an interval that holds 0
    rows = [_row('a', dict(temperature=(0.02, 0, 0), platt=(0.03, 0, 0), isotonic=(0.04, 0, 0))),
            _row('b', dict(temperature=(0.05, 0, 0), platt=(0.08, 0, 0), isotonic=(0.01, 0, 0)))]
    vt = dss._versus_temperature(rows, ('temperature', 'platt', 'isotonic'), n_boot=200)
    assert vt['platt']['mean'] == pytest.approx(0.02) and vt['platt']['ci95_low'] > 0
    assert vt['isotonic']['mean'] == pytest.approx(-0.01) and vt['isotonic']['ci95_low'] < 0
    assert vt['default'] == 'platt'
    rows[1]['arms']['platt']['gain']['mean'] = 0.0  # platt - temperature: +0.01, -0.05
    assert dss._versus_temperature(rows, ('temperature', 'platt', 'isotonic'),
                                   n_boot=200)['default'] == 'temperature'


def test_error_vs_student_by_hand():
    # x: error up, student down -> rho -1, the lowest error the best student (auto ignored);
    # y: both up -> rho +1; z: errors .1 .2 .3, students .3 .1 .2 -> d = (-2, 1, 1),
    # rho = 1 - 6 * 6 / (3 * 8) = -0.5, the lowest error the best student
    rows = [_row('x', dict(temperature=(0, 0.4, 0.1), platt=(0, 0.3, 0.2), isotonic=(0, 0.2, 0.3),
                           class_temperature=(0, 0.1, 0.4), auto=(0, 0.0, 0.0))),
            _row('y', dict(temperature=(0, 0.1, 0.1), platt=(0, 0.2, 0.2), isotonic=(0, 0.3, 0.3),
                           class_temperature=(0, 0.4, 0.4))),
            _row('z', dict(temperature=(0, 0.3, 0.1), platt=(0, 0.1, 0.2),
                           isotonic=(0, 0.2, 0.3)))]
    ev = dss._error_vs_student(rows, n_boot=200)
    assert ev['rho']['n'] == 3 and ev['rho']['mean'] == pytest.approx(-0.5 / 3)
    assert ev['lowest_error_best'] == ['x', 'z']
