"""tools/demo.py --family: the other detector families' demos, a real (tiny) run of one of them,
and how the family settings are laid out."""
import json
import math
import os.path as osp

import pytest
import torch

from _helpers import ROOT, run_tool

FAMILY = 'rtmdet'


def _demo_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location('demo_tool', osp.join(ROOT, 'tools', 'demo.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_family_end_to_end(tmp_path):
    work, data = tmp_path / 'demo', tmp_path / 'digits'
    out = run_tool('tools/demo.py', '--quick', '--family', FAMILY, '--jobs', '2',
                   '--work-dir', str(work), '--data-root', str(data), timeout=600)
    assert 'students, in parallel (one thread each, at most 2 at once)' in out
    with open(work / 'results.json') as f:
        results = json.load(f)
    assert results['family'] == FAMILY and results['fit_on'] == 'detections'
    rows = results['summary']
    assert set(rows) == {'teacher', 'teacher, T-scaled', 'student (no KD)', 'KD',
                         'KD + calibrated teacher'}
    for name in ('student (no KD)', 'KD', 'KD + calibrated teacher'):
        for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'calib/dece'):
            value = rows[name][key]['mean']
            assert value is not None and math.isfinite(value) and 0 <= value <= 1, (name, key)
        wall = results['wall_s'][name][0]
        assert wall['train'] > 1 and wall['eval'] > 1
    # the KD+cal run used the temperature its hook fitted, not 1, and its checkpoint keeps it; the
    # KD run (configured 1.0, no calibration hook) records none
    (t_hook,) = results['hook_temperatures']
    assert t_hook > 0 and abs(t_hook - 1.0) > 1e-3
    from mmkdcal.utils.checkpoint import load_checkpoint_file

    def meta(tag):
        with open(work / tag / 'last_checkpoint') as f:
            return load_checkpoint_file(f.read().strip())['meta']
    assert meta('kd_cal_seed0')['teacher_temperature'] == pytest.approx(t_hook, rel=1e-6)
    assert meta('kd_cal_seed0')['teacher_temperature_source'] == 'fitted'
    assert 'teacher_temperature' not in meta('kd_seed0')
    assert results['hook_temperatures'][0] == pytest.approx(results['temperature'], rel=1e-4)
    # the students are plain RTMDet students
    import mmkdcal  # noqa: F401
    from mmdet.registry import MODELS
    from mmengine.config import Config
    student = MODELS.build(Config.fromfile(
        osp.join(ROOT, 'configs/demo/rtmdet_cspnext-w16_digits.py')).model)
    with open(work / 'kd_cal_seed0' / 'last_checkpoint') as f:
        state = load_checkpoint_file(f.read().strip())['state_dict']
    assert not student.load_state_dict(state, strict=True).missing_keys
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    md = (work / 'results.md').read_text()
    assert '# mmkdcal demo on DigitsDet: RTMDet' in md and 'wall time (min)' in md


def test_family_settings():
    demo = _demo_module()
    assert set(demo.FAMILIES) == {'gfl', 'rtmdet', 'mask_rcnn', 'cascade_rcnn', 'crosskd_gfl'}
    gfl = demo.FAMILIES['gfl']
    assert (gfl['teacher'], gfl['student'], gfl['kd'], gfl['kd_cal']) == (
        demo.TEACHER_CFG, demo.STUDENT_CFG, demo.KD_CFG, demo.KD_CAL_CFG)
    assert demo.family_mode('gfl', 'default') == demo.MODES['default']
    assert demo.parse_args([]).family == 'gfl'
    for family, fam in demo.FAMILIES.items():
        for key in ('teacher', 'student', 'kd', 'kd_cal'):
            assert osp.isfile(fam[key]), (family, key)
        # the kd-cal config differs from the kd config only in the temperature and the hook
        from mmengine.config import Config
        kd, kd_cal = Config.fromfile(fam['kd']), Config.fromfile(fam['kd_cal'])
        assert kd.model.teacher_temperature == 1.0 and kd_cal.model.teacher_temperature is None
        assert dict(kd_cal.model, teacher_temperature=1.0) == kd.model
        (hook,) = kd_cal.custom_hooks
        assert hook.type == 'TeacherCalibrationHook'
        assert hook.fit_on == (fam['fit_on'] or 'detections')
        assert hook.dataloader.dataset.ann_file == 'annotations/calib.json'
        assert kd.train_cfg == kd_cal.train_cfg == Config.fromfile(fam['student']).train_cfg
    mask = Config.fromfile(demo.FAMILIES['mask_rcnn']['teacher'])
    assert mask.train_dataloader.dataset.build_cfg == dict(with_masks=True)
    assert mask.val_evaluator[0].metric == ['bbox', 'segm']
    with pytest.raises(SystemExit):
        demo.parse_args(['--family', 'yolo'])
    # quick mode keeps every detection of two-stage models too
    opts = demo._options(demo.MODES['quick'], '/d', None, family='cascade_rcnn')
    assert 'model.test_cfg.rcnn.score_thr=0.0' in opts
    assert 'model.test_cfg.score_thr=0.0' not in opts
