"""projects/teacher_studies/run_detection_study.py --quick end to end: 3 tiny DigitsDet teachers
(GFL, early-stopped GFL, RetinaNet), their measurement, KD students from the raw and the calibrated
teacher, the no-KD floors, the report and figures; then a second run that reuses every run.

The statistics are recomputed independently from what the run wrote: correlations by hand
(tests/_stats_refs.py) from the table's columns, D-ECE from the saved detections with the
library's ``detection_ece``, the NLL temperature by a grid search on the saved detections.
"""
import json
import os.path as osp

import numpy as np
import pytest

import _stats_refs as refs
from _helpers import run_tool

TOOL = 'projects/teacher_studies/run_detection_study.py'
METRICS = ('map', 'dece', 'dece_over', 'dece_under', 't_nll')


@pytest.fixture(scope='module')
def quick(tmp_path_factory):
    work = tmp_path_factory.mktemp('det_study')
    out = run_tool(TOOL, '--quick', '--work-dir', str(work), timeout=1800)
    with open(work / 'results.json') as f:
        return work, json.load(f), out


def test_table_structure_and_runs(quick):
    work, res, _ = quick
    rows = res['teacher_table']
    assert [r['teacher'] for r in rows] == ['gfl_qfl', 'gfl_qfl_stop50', 'retina_soft']
    assert [r['family'] for r in rows] == ['gfl', 'gfl', 'retinanet']
    # per teacher and seed one raw KD student and one per calibrator (nll: the temperature
    # calibrator); one no-KD student per family
    kinds = sorted((s['teacher'] or s['family'], s['variant']) for s in res['students'])
    assert kinds == sorted([(r['teacher'], v) for r in rows for v in (
        'raw', 'nll', 'class_temperature', 'platt', 'isotonic', 'auto')]
        + [('gfl', 'none'), ('retinanet', 'none')])
    for r in rows:
        for key in METRICS + ('map50', 't_ace', 't_ece', 'dece_cal_nll', 'kd_map',
                              'kd_cal_map', 'val_map'):
            assert isinstance(r[key], float) and np.isfinite(r[key]), (r['teacher'], key)
        assert 0 <= r['map'] <= 1 and r['t_nll'] > 0
        assert r['dece_over'] + r['dece_under'] == pytest.approx(r['dece'], abs=1e-12)
        # the direction: over - under is the mean score minus the precision of the detections
        cal = next(t for t in res['teachers'] if t['name'] == r['teacher'])['measure'][
            'splits']['calib']['before']
        assert r['dece_signed'] == pytest.approx(cal['mean_score'] - cal['precision'], abs=1e-6)
        assert r['direction'] == ('over' if cal['mean_score'] > cal['precision'] else 'under')
        # the calibrated student was given the teacher's NLL temperature, the raw one T = 1
        temps = {s['variant']: s['temperature'] for s in res['students']
                 if s['teacher'] == r['teacher']}
        assert (temps['raw'], temps['nll']) == (1.0, r['t_nll'])
        # the temperature calibrator (TP targets, NLL) is the NLL temperature itself
        ms = next(t for t in res['teachers'] if t['name'] == r['teacher'])['measure']
        assert ms['calibrators']['temperature']['temperature'] == r['t_nll']
        # auto's student is the chosen calibrator's, or trained apart when its state differs
        auto = next(s for s in res['students'] if s['teacher'] == r['teacher']
                    and s['variant'] == 'auto')
        if auto['same_as']:
            twin = next(s for s in res['students'] if s['teacher'] == r['teacher']
                        and s['variant'] == auto['same_as'])
            assert auto['map'] == twin['map']
        assert r['gain']['mean'] == pytest.approx(r['kd_cal_map'] - r['kd_map'], abs=1e-12)
    stop = next(t for t in res['teachers'] if t['name'] == 'gfl_qfl_stop50')
    assert stop['trained_iters'] == stop['scheduled_iters'] // 2
    for name in ('detection_teacher_study.md', 'detection_teacher_study_dece_vs_student.png',
                 'detection_teacher_study_gain.png', 'detection_teacher_study_calibrators.png'):
        assert (work / name).stat().st_size > 2000, name
    md = (work / 'detection_teacher_study.md').read_text()
    for r in rows:
        assert f"| {r['teacher']} |" in md and f"{r['t_nll']:.3f}" in md
    assert '## Reading' in md and 'Decision (by the data)' not in md  # no objective students


def _check(c, x, y):
    """A reported correlation equals the hand formulas (None exactly when a column is flat)."""
    if min(x) == max(x) or min(y) == max(y):
        assert c['pearson_r'] is None and c['spearman_rho'] is None
        return
    assert c['pearson_r'] == pytest.approx(refs.pearson(x, y), abs=1e-9)
    assert c['spearman_rho'] == pytest.approx(refs.spearman(x, y), abs=1e-9)
    assert -1 <= c['pearson_ci95_low'] <= c['pearson_ci95_high'] <= 1


def test_correlations_recomputed_by_hand_from_the_table(quick):
    _, res, _ = quick
    rows = res['teacher_table']
    for key, column, family in (('kd', 'kd_map', None), ('kd_vs_floor', 'kd_vs_floor', None),
                                ('kd_cal', 'kd_cal_map', None)):
        y = [r[column] for r in rows if family is None or r['family'] == family]
        for m in METRICS:
            x = [r[m] for r in rows if family is None or r['family'] == family]
            _check(res['correlations'][key]['metrics'][m], x, y)
    _check(res['gain_correlations']['log_t_nll'], [np.log(r['t_nll']) for r in rows],
           [r['gain']['mean'] for r in rows])


def test_calibration_numbers_recomputed_from_the_saved_detections(quick):
    from mmkdcal.calibration import detection_ece
    work, res, _ = quick
    n_bins = res['config']['n_bins']
    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 2001))
    for r in res['teacher_table']:
        det = np.load(osp.join(work, 'measure', r['teacher'], 'detections.npz'))
        z, m = det['calib_logits'], det['calib_matched'].astype(np.float64)
        assert r['dece'] == pytest.approx(
            detection_ece(1 / (1 + np.exp(-z)), m, n_bins=n_bins), abs=1e-9)
        # binary NLL of sigmoid(z / T) vs matched, minimised over a fine grid of T
        nll = [np.mean(np.logaddexp(0, z / t) - m * z / t) for t in grid]
        assert r['t_nll'] == pytest.approx(grid[int(np.argmin(nll))], rel=0.004), r['teacher']
        assert r['dece_cal_nll'] == pytest.approx(
            detection_ece(1 / (1 + np.exp(-z / r['t_nll'])), m, n_bins=n_bins), abs=1e-9)


def test_second_run_reuses_every_finished_run(quick):
    work, res, _ = quick
    out = run_tool(TOOL, '--quick', '--work-dir', str(work), timeout=600)
    trained = [s for s in res['students'] if not s.get('same_as')]
    assert '$ python' not in out and out.count('reusing the finished run') == len(
        res['teachers']) * 2 + len(trained)
    with open(work / 'results.json') as f:
        again = json.load(f)
    assert again['teacher_table'] == res['teacher_table']
    assert again['n_reused'] == again['n_runs']
