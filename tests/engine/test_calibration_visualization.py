"""TeacherCalibrationHook sends its before/after scalars and reliability diagram to the visualizer.

A real (1-iteration) KD+cal run with the LocalVisBackend (and TensorBoard's, when installed):
the scalars file and the image hold exactly what the hook reported in teacher_calibration.json.
"""
import glob
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.runner import Runner
from PIL import Image

import mmkdcal  # noqa: F401
from mmdet.registry import MODELS
from mmkdcal.engine.teacher_calibration import calibration_scalars

from _helpers import dump_config, gfl_model, train_config, write_coco

torch.set_num_threads(1)
HAS_TB = importlib.util.find_spec('tensorboard') is not None


def _run(tmp_path, backends):
    data = write_coco(str(tmp_path / 'data'), n_images=4)
    torch.manual_seed(0)
    teacher_cfg = gfl_model(width=8)
    teacher = MODELS.build(ConfigDict(teacher_cfg))
    teacher.init_weights()
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict()}, ckpt)
    student = gfl_model(width=8)
    student.update(type='DistillSingleStageDetector',
                   teacher_config=dump_config(dict(model=teacher_cfg), str(tmp_path / 't.py')),
                   teacher_ckpt=ckpt,
                   distill_losses=dict(loss_kd=dict(type='BinaryKDLoss', inputs='cls')))
    cfg = train_config(student, data, max_iters=1,
                       custom_hooks=[dict(type='TeacherCalibrationHook', fit_on='anchors')])
    cfg['train_cfg']['val_interval'] = 100
    cfg['visualizer'] = dict(type='DetLocalVisualizer', name='vis', vis_backends=backends)
    cfg['work_dir'] = str(tmp_path / 'work')
    runner = Runner.from_cfg(Config(cfg))
    runner.train()
    with open(osp.join(cfg['work_dir'], 'teacher_calibration.json')) as f:
        report = json.load(f)
    return runner, report


def test_local_backend_holds_the_reported_scalars_and_diagram(tmp_path):
    backends = [dict(type='LocalVisBackend')]
    if HAS_TB:
        backends.append(dict(type='TensorboardVisBackend'))
    runner, report = _run(tmp_path, backends)
    vis_dir = osp.join(runner.log_dir, 'vis_data')

    expected = {f'teacher_calibration/{k}_{stage}': report[stage][k]
                for stage in ('before', 'after') for k in ('top_label_ece', 'classwise_ece',
                                                           'nll')}
    expected['teacher_calibration/temperature'] = report['temperature']
    assert calibration_scalars(report) == expected
    with open(osp.join(vis_dir, 'scalars.json')) as f:
        lines = [json.loads(line) for line in f if line.strip()]
    logged = [d for d in lines if 'teacher_calibration/temperature' in d]
    assert len(logged) == 1 and logged[0]['step'] == 0
    for key, value in expected.items():
        assert logged[0][key] == pytest.approx(value, rel=1e-12), key
    # the fitted temperature actually lowered the NLL it was fitted on
    assert logged[0]['teacher_calibration/nll_after'] <= logged[0][
        'teacher_calibration/nll_before'] + 1e-9

    saved = osp.join(vis_dir, 'vis_image', 'teacher_calibration_0.png')
    assert osp.isfile(saved)
    diagram = np.asarray(Image.open(osp.join(runner.work_dir, 'teacher_calibration.png'))
                         .convert('RGB'))
    assert np.array_equal(np.asarray(Image.open(saved).convert('RGB')), diagram)

    if HAS_TB:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        events = glob.glob(osp.join(vis_dir, 'events.out.tfevents.*'))
        assert len(events) == 1
        acc = EventAccumulator(events[0], size_guidance={'images': 0, 'scalars': 0})
        acc.Reload()
        tags = acc.Tags()
        for key, value in expected.items():
            assert key in tags['scalars'], key
            (event,) = acc.Scalars(key)
            assert event.step == 0 and event.value == pytest.approx(value, rel=1e-6)
        assert 'teacher_calibration' in tags['images']
        (img,) = acc.Images('teacher_calibration')
        assert (img.width, img.height) == (diagram.shape[1], diagram.shape[0])
