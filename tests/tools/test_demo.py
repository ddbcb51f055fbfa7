"""tools/demo.py --quick end to end: a real (tiny) teacher/student/KD/KD+cal run on DigitsDet."""
import json
import math
import os.path as osp
import re

import torch

from _helpers import ROOT, run_tool


def test_demo_quick_end_to_end(tmp_path):
    work, data = tmp_path / 'demo', tmp_path / 'digits'
    out = run_tool('tools/demo.py', '--quick', '--work-dir', str(work), '--data-root', str(data),
                   timeout=1500)
    assert '| KD + calibrated teacher |' in out
    # progress with ETAs: the data set build, every step, the passes; the files it wrote
    assert 'DigitsDet: building' in out and re.search(r'256/256 \(100%\).*ETA 0:00:00', out)
    assert re.search(r'demo: 9/9 \(100%\), elapsed \d+:\d\d:\d\d, ETA 0:00:00', out)
    assert re.search(r'\[calibrate\] +pass \d+/\d+, .*ETA', out)
    assert 'eta: ' in out  # MMEngine's iteration lines
    with open(work / 'results.json') as f:
        results = json.load(f)
    rows = results['summary']
    assert set(rows) == {'teacher', 'teacher, T-scaled', 'student (no KD)', 'KD',
                         'KD + calibrated teacher'}
    for name, metrics in rows.items():
        for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'calib/dece'):
            value = metrics[key]['mean']
            assert value is not None and math.isfinite(value), (name, key, value)
            assert 0.0 <= value <= 1.0
    # the fitted temperature lowers the teacher's D-ECE on the split it was fitted on
    cal = results['calibration']
    assert cal['after']['dece'] < cal['before']['dece']
    # the hook inside the KD+cal run fitted the same temperature on the same split
    assert results['hook_temperatures'][0] == pytest_approx(results['temperature'])
    # every student checkpoint is a plain student checkpoint
    import mmkdcal  # noqa: F401
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmkdcal.utils.checkpoint import load_checkpoint_file
    student = MODELS.build(Config.fromfile(osp.join(ROOT, 'configs/demo/gfl_r18w16_digits.py'))
                           .model)
    for tag in ('student_seed0', 'kd_seed0', 'kd_cal_seed0'):
        with open(work / tag / 'last_checkpoint') as f:
            state = load_checkpoint_file(f.read().strip())['state_dict']
        result = student.load_state_dict(state, strict=True)
        assert not result.missing_keys and not result.unexpected_keys
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    assert (work / 'teacher_calibration' / 'calibration.png').stat().st_size > 10_000
    assert (work / 'results.md').read_text().count('|') > 20
    files = results['files']
    assert files['teacher reliability diagram, calib split, before/after T'] == str(
        work / 'teacher_calibration' / 'calibration.png')
    assert all(osp.exists(p) for p in files.values()) and len(files) >= 12
    assert f'`{work / "results.json"}`' in (work / 'results.md').read_text()


def pytest_approx(x):
    import pytest
    return pytest.approx(x, rel=1e-4)
