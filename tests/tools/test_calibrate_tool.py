"""tools/calibrate.py on a saved detector: fits T, reports before/after, writes JSON + PNG."""
import importlib.util
import json
import math
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict

import mmkdcal  # noqa: F401
from mmdet.registry import MODELS
from mmkdcal.engine import (CALIBRATION_MODES, CalibrationMode, fingerprint_as_teacher,
                            load_calibrator_file, register_calibration_mode)
from mmkdcal.engine.calibration_modes import image_key
from mmkdcal.utils.checkpoint import file_sha256

from _helpers import ROOT, dump_config, gfl_model, run_tool, train_config, write_coco


def test_calibrate_tool_fits_and_reports(tmp_path):
    data = write_coco(str(tmp_path / 'data'), n_images=4)
    cfg = train_config(gfl_model(width=8), data)
    cfg_path = dump_config(cfg, str(tmp_path / 'gfl.py'))
    torch.manual_seed(0)
    model = MODELS.build(ConfigDict(gfl_model(width=8)))
    model.init_weights()
    with torch.no_grad():  # over-confident: logits x4
        model.bbox_head.gfl_cls.weight.mul_(4.0)
    ckpt = str(tmp_path / 'gfl.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    out_dir = tmp_path / 'cal'
    cal_file = str(tmp_path / 'teacher_t.pth')
    out = run_tool('tools/calibrate.py', cfg_path, ckpt, '--fit-on', 'anchors', '--split', 'val',
                   '--also-split', 'test', '--out', str(out_dir), '--calibrator-file', cal_file)
    report = json.loads((out_dir / 'calibration.json').read_text())
    t = report['temperature']
    assert f'model.teacher_temperature={t}' in out
    assert report['fit_on'] == 'anchors' and report['num_samples'] > 100
    # the NLL-fitted temperature cannot raise the NLL on the data it was fitted on
    assert report['after']['nll'] <= report['before']['nll'] + 1e-9
    # val and test are the same images here: the same temperature gives the same numbers
    assert report['also']['test']['after']['nll'] == pytest.approx(report['after']['nll'],
                                                                   rel=1e-6)
    assert (out_dir / 'calibration.png').read_bytes()[:4] == b'\x89PNG'
    # the calibrator file: the fitted state, for this model as a distiller's teacher
    state, meta = load_calibrator_file(cal_file, file_sha256(cal_file))
    assert state['calibrator'] == 'temperature' and state['t'].item() == pytest.approx(t)
    assert meta['teacher_fingerprint'] == fingerprint_as_teacher(model)
    assert f"calibrator_sha256='{file_sha256(cal_file)}'" in out


def test_calibrate_tool_rejects_unknown_split(tmp_path):
    data = write_coco(str(tmp_path / 'data'), n_images=2)
    cfg_path = dump_config(train_config(gfl_model(width=8), data), str(tmp_path / 'gfl.py'))
    ckpt = str(tmp_path / 'x.pth')
    torch.save({'state_dict': MODELS.build(ConfigDict(gfl_model(width=8))).state_dict()}, ckpt)
    with pytest.raises(AssertionError, match="no calib_dataloader"):
        run_tool('tools/calibrate.py', cfg_path, ckpt, '--split', 'calib')


def _load_tool():
    spec = importlib.util.spec_from_file_location('calibrate_tool',
                                                  osp.join(ROOT, 'tools', 'calibrate.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def _collect_planted(model, data, ctx):
    """20 samples per image, all with logit 2 ln 3, three in four of them positive."""
    z = torch.full((20,), 2 * math.log(3.0))
    return [(image_key(s), dict(logits=z, targets=torch.tensor([1., 1., 1., 0.]).repeat(5)))
            for s in data['data_samples']]


PLANTED = CalibrationMode(
    name='planted_test_mode', description='planted logits', supports=lambda model: None,
    collect=_collect_planted, fit_kind='sigmoid',
    fit_data=lambda d: (d['logits'], d['targets']),
    report=lambda d, t, n_bins, score_thr=None: dict(nll=float(
        F.binary_cross_entropy_with_logits(d['logits'] / t, d['targets']))),
    plot_view=lambda d: (d['logits'], d['targets'], 'sigmoid'), needs_ground_truth=False)


def test_a_mode_registered_after_import_is_accepted_by_fit_on(tmp_path):
    """The tool reads the registry when it runs: a mode registered after the tool's import is a
    valid --fit-on. Its planted data (logit 2 ln 3, positive 3 times in 4) has the NLL optimum
    sigmoid(2 ln 3 / T) = 3/4, i.e. T = 2."""
    tool = _load_tool()
    data = write_coco(str(tmp_path / 'data'), n_images=3)
    cfg_path = dump_config(train_config(gfl_model(width=8), data), str(tmp_path / 'gfl.py'))
    ckpt = str(tmp_path / 'gfl.pth')
    torch.save({'state_dict': MODELS.build(ConfigDict(gfl_model(width=8))).state_dict()}, ckpt)
    args = [cfg_path, ckpt, '--fit-on', PLANTED.name, '--out', str(tmp_path / 'cal')]
    with pytest.raises(ValueError, match=f"fit_on must be one of .*got '{PLANTED.name}'"):
        tool.main(args)
    register_calibration_mode(PLANTED)
    try:
        report = tool.main(args)
    finally:
        CALIBRATION_MODES.pop(PLANTED.name)
    assert report['fit_on'] == PLANTED.name
    assert report['num_samples'] == 60 and report['num_images'] == 3
    assert report['temperature'] == pytest.approx(2.0, rel=1e-4)
    assert report['after']['nll'] == pytest.approx(-(3 * math.log(0.75) + math.log(0.25)) / 4,
                                                   rel=1e-6)
