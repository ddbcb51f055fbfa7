"""tools/calibrate.py on a saved detector: fits T, reports before/after, writes JSON + PNG."""
import json

import pytest
import torch
from mmengine.config import ConfigDict

import mmkdcal  # noqa: F401
from mmdet.registry import MODELS

from _helpers import dump_config, gfl_model, run_tool, train_config, write_coco


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
    out = run_tool('tools/calibrate.py', cfg_path, ckpt, '--fit-on', 'anchors', '--split', 'val',
                   '--also-split', 'test', '--out', str(out_dir))
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


def test_calibrate_tool_rejects_unknown_split(tmp_path):
    data = write_coco(str(tmp_path / 'data'), n_images=2)
    cfg_path = dump_config(train_config(gfl_model(width=8), data), str(tmp_path / 'gfl.py'))
    ckpt = str(tmp_path / 'x.pth')
    torch.save({'state_dict': MODELS.build(ConfigDict(gfl_model(width=8))).state_dict()}, ckpt)
    with pytest.raises(AssertionError, match="no calib_dataloader"):
        run_tool('tools/calibrate.py', cfg_path, ckpt, '--split', 'calib')
