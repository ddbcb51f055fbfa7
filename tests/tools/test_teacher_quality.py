"""tools/benchmarks/teacher_quality.py at toy size: the teacher under each setting is evaluated
and calibrated, and a student's calibration hook fits the temperature of the teacher it runs."""
import json

import pytest

from _helpers import run_tool


def test_teacher_quality_quick(tmp_path):
    from mmkdcal.models.distillers.teacher_inference import _cpu_has_native_bf16
    fast = 'fold+cl+bf16' if _cpu_has_native_bf16() else 'fold+cl'
    work = tmp_path / 'work'
    out = run_tool('tools/benchmarks/teacher_quality.py', '--quick', '--seeds', '0',
                   '--teacher-iters', '40', '--student-iters', '10', '--settings', 'fold', fast,
                   '--fast', fast, '--jobs', '1', '--work-dir', str(work),
                   '--data-root', str(tmp_path / 'data'), timeout=1500)
    report = json.load(open(work / 'teacher_quality.json'))
    rows = report['teacher']
    assert set(rows) == {'fp32', 'fold', fast}
    # folding changes the outputs by fp32 rounding only: same detections, same temperature
    assert rows['fold']['mAP'] == rows['fp32']['mAP']
    assert abs(rows['fold']['temperature_rel_change']) < 1e-4
    # what a student's TeacherCalibrationHook fits is the temperature of the teacher it runs
    for name in ('fp32', fast):
        with open(work / f'kd_cal_{name}_seed0' / 'teacher_calibration.json') as f:
            hook_t = json.load(f)['temperature']
        # bf16 kernels round differently with the threads and batch layout of each process
        # (~1e-4 on T here); the fp32 teacher's T is 1e-2 away from the bf16 one's
        assert hook_t == pytest.approx(rows[name]['temperature'],
                                       rel=1e-3 if 'bf16' in name else 1e-6)
    if 'bf16' in fast:  # bf16 really ran: its logits, hence its temperature, differ
        assert abs(rows[fast]['temperature_rel_change']) > 3e-3
    assert set(report['students']) == {'fp32', fast}
    assert all(0 <= r['mean'] <= 1 for r in report['students'].values())
    assert '| fold |' in out and 'KD+cal student' in out
