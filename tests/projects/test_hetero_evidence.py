"""projects/hetero_evidence/run.py --quick end to end: two tiny teachers, 3 cross-family pairs x 4
arms of students, the table with every row's numbers and the calibrated runs' fitted T."""
import json
import math

from _helpers import run_tool


def test_hetero_evidence_quick_end_to_end(tmp_path):
    work, data = tmp_path / 'he', tmp_path / 'digits'
    out = run_tool('projects/hetero_evidence/run.py', '--quick', '--work-dir', str(work),
                   '--data-root', str(data), timeout=1800)
    assert 'hetero: 28/28 (100%)' in out  # 2 teachers + 12 students, each trained and tested
    with open(work / 'results.json') as f:
        results = json.load(f)
    students = [r for r in results['rows'] if r['pair'] != 'teacher']
    teachers = [r for r in results['rows'] if r['pair'] == 'teacher']
    assert len(teachers) == 2
    assert sorted((r['pair'], r['arm']) for r in students) == sorted(
        (pair, arm) for pair in ('retinanet<-gfl', 'gfl<-cascade', 'faster<-cascade')
        for arm in ('no KD', 'feature KD (PKD)', 'pred KD, raw teacher',
                    'pred KD, calibrated teacher'))
    for r in results['rows']:
        for key in ('mAP', 'mAP50'):
            assert r[key] is not None and 0.0 <= r[key] <= 1.0, (r['pair'], r['arm'], key)
        assert r['wall']['train_s'] > 0 and r['wall']['eval_s'] > 0
    for r in students:
        if r['arm'] == 'pred KD, calibrated teacher':
            # the hook fitted a temperature (a fit that did not move would leave T = 1)
            assert math.isfinite(r['temperature']) and r['temperature'] > 0
            assert abs(r['temperature'] - 1.0) > 1e-3, r
        else:
            assert r['temperature'] is None
    assert results['machine'] and results['total_wall_s'] > 0
    md = (work / 'results.md').read_text()
    assert md.count('\n| ') == 1 + 2 + 12  # header, teachers, students
    assert '| faster<-cascade | pred KD, calibrated teacher | 0 |' in md
