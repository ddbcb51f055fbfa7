"""The calibration hook's run-time state: a temperature belongs to its teacher, adapters of a
checkpoint written by earlier versions are restored on resume, each image counts once, and bad
calibration data is named."""
import copy
import json
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.runner import Runner

import mmkdcal  # noqa: F401
from mmdet.registry import MODELS
from mmkdcal.engine import collect_calibration_data, fit_and_report
from mmkdcal.engine.hooks import TeacherCalibrationHook
from mmkdcal.models.distillers.distiller_mixin import DISTILL_STATE_KEY
from mmkdcal.utils.checkpoint import load_checkpoint_file

from _helpers import (dump_config, gfl_model, last_checkpoint, probe_first_distill_step,
                      run_tool, save_teacher, train_config, write_coco)

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return write_coco(str(tmp_path_factory.mktemp('coco')), n_images=5)


@pytest.fixture(scope='module')
def teachers(tmp_path_factory):
    root = tmp_path_factory.mktemp('teachers')
    return [save_teacher(gfl_model(width=16, stacked_convs=2), root, f't{i}', seed=i)
            for i in (1, 2)]


def _cfg(tmp_path, data, teacher, max_iters=2, student=None, losses=None, name='kd'):
    t_cfg, t_ckpt, _ = teacher
    model = copy.deepcopy(student or gfl_model(width=8))
    model.update(type='DistillSingleStageDetector', teacher_config=t_cfg, teacher_ckpt=t_ckpt,
                 teacher_temperature=None,
                 distill_losses=losses or dict(loss_kd=dict(type='BinaryKDLoss', inputs='cls')))
    cfg = train_config(model, data, max_iters=max_iters, checkpoint_interval=2,
                       custom_hooks=[dict(type='TeacherCalibrationHook', fit_on='anchors')])
    cfg['train_cfg']['val_interval'] = 1000
    return dump_config(cfg, str(tmp_path / f'{name}.py'))


def _fitted_for(teacher, data):
    """The temperature a fresh single-process pass fits for ``teacher`` (the reference; the
    distiller's teacher has its BatchNorms folded, which moves T by fp32 rounding only, so it is
    compared at rel=1e-4: another teacher's T differs by more than 1e-3)."""
    t_cfg, t_ckpt, _ = teacher
    model = MODELS.build(ConfigDict(Config.fromfile(t_cfg).model))
    model.load_state_dict(torch.load(t_ckpt, weights_only=True)['state_dict'])
    loader = Runner.build_dataloader(train_config(gfl_model(), data)['val_dataloader'], seed=0)
    collected = collect_calibration_data(model, loader, 'anchors', progress=False)
    return fit_and_report(collected, 'anchors')['temperature']


def _json_t(work):
    with open(osp.join(work, 'teacher_calibration.json')) as f:
        return json.load(f)['temperature']


def test_load_from_with_another_teacher_refits(tmp_path, data, teachers):
    """Case: a new run loads a KD+cal checkpoint but distils from another teacher."""
    work_a, work_b = str(tmp_path / 'a'), str(tmp_path / 'b')
    run_tool('tools/train.py', _cfg(tmp_path, data, teachers[0], name='a'), '--work-dir', work_a)
    ckpt = load_checkpoint_file(last_checkpoint(work_a))
    t_a = ckpt['meta']['teacher_temperature']
    assert ckpt['meta']['teacher_ckpt'] == teachers[0][1]
    assert len(ckpt['meta']['teacher_fingerprint']) == 16
    out = run_tool('tools/train.py', _cfg(tmp_path, data, teachers[1], name='b'), '--work-dir',
                   work_b, '--cfg-options', f'load_from={last_checkpoint(work_a)}')
    assert 'fitted again' in out and 'Calibrating the teacher' in out
    t_b = _json_t(work_b)
    assert t_b == pytest.approx(_fitted_for(teachers[1], data), rel=1e-4)
    assert abs(t_b - t_a) > 1e-3
    assert load_checkpoint_file(last_checkpoint(work_b))['meta']['teacher_temperature'] == \
        pytest.approx(t_b)


def test_resume_with_another_teacher_refits_and_with_the_same_reuses(tmp_path, data, teachers):
    work = str(tmp_path / 'w')
    cfg_1 = _cfg(tmp_path, data, teachers[0], max_iters=4, name='one')
    run_tool('tools/train.py', cfg_1, '--work-dir', work, '--cfg-options',
             'train_cfg.max_iters=2')
    t_1 = _json_t(work)
    # same teacher: reused, no pass
    out = run_tool('tools/train.py', cfg_1, '--work-dir', work, '--resume', '--cfg-options',
                   'train_cfg.max_iters=3')
    assert 'Teacher calibrator from the checkpoint' in out and 'Calibrating' not in out
    # another teacher_ckpt on --resume: warned and refitted for that teacher
    cfg_2 = _cfg(tmp_path, data, teachers[1], max_iters=4, name='two')
    out = run_tool('tools/train.py', cfg_2, '--work-dir', work, '--resume')
    assert 'fitted for teacher' in out and teachers[0][1] in out and 'fitted again' in out
    t_2 = _json_t(work)
    assert t_2 == pytest.approx(_fitted_for(teachers[1], data), rel=1e-4)
    assert abs(t_2 - t_1) > 1e-3
    assert load_checkpoint_file(last_checkpoint(work))['meta']['teacher_temperature'] == \
        pytest.approx(t_2)


@pytest.mark.parametrize('calibration_hook', [True, False])
def test_a_legacy_checkpoint_resumes_its_adapters(tmp_path, data, teachers, calibration_hook):
    """Checkpoints of earlier versions hold the adapters under checkpoint['distill_state_dict']
    (the calibration hook wrote them there): --resume trains on from them, with that hook or,
    without it, through AtomicCheckpointHook (the shipped configs' checkpoint hook)."""
    student = gfl_model(width=8)
    student['neck']['out_channels'] = 8
    student['bbox_head']['in_channels'] = 8
    losses = dict(loss_fit=dict(type='FeatureMSELoss', inputs='neck', student_channels=8,
                                teacher_channels=16, loss_weight=5.0))
    cfg_path = _cfg(tmp_path, data, teachers[0], max_iters=4, student=student, losses=losses)
    work = str(tmp_path / 'w')
    cfg = Config.fromfile(cfg_path)
    cfg.work_dir = work
    cfg.train_cfg.max_iters = 2
    cfg.experiment_name = 'legacy_adapters_a'
    Runner.from_cfg(cfg).train()
    # rewrite the checkpoint as an earlier version wrote it, with planted adapter values
    path = last_checkpoint(work)
    ckpt = torch.load(path, map_location='cpu', weights_only=False)
    state = ckpt['message_hub']['runtime_info'].pop(DISTILL_STATE_KEY)
    del ckpt['message_hub']['resumed_keys'][DISTILL_STATE_KEY]
    assert set(state) == {'distill_losses.loss_fit.adapter.weight',
                          'distill_losses.loss_fit.adapter.bias'}
    planted = {k: torch.full_like(v, 0.125) for k, v in state.items()}
    ckpt['distill_state_dict'] = planted
    torch.save(ckpt, path)
    plain = MODELS.build(ConfigDict(copy.deepcopy(student)))
    plain.load_state_dict(ckpt['state_dict'], strict=True)  # a plain student checkpoint
    # resume: the first resumed step trains from the planted adapter, not a fresh one
    cfg = Config.fromfile(cfg_path)
    cfg.update(work_dir=work, resume=True, experiment_name='legacy_adapters_b')
    if not calibration_hook:
        cfg.custom_hooks = []
        cfg.model.teacher_temperature = 1.0
        cfg.default_hooks.checkpoint.type = 'AtomicCheckpointHook'
    runner = Runner.from_cfg(cfg)
    seen = probe_first_distill_step(runner)
    runner.train()
    assert set(seen) == set(planted)
    for k, v in planted.items():
        assert torch.equal(seen[k], v), k


def _runner_stub():
    return SimpleNamespace(build_dataloader=Runner.build_dataloader, seed=0)


def test_empty_calibration_split_and_split_without_boxes_are_named(tmp_path):
    empty = write_coco(str(tmp_path / 'empty'), n_images=1)
    with open(osp.join(empty['root'], empty['ann'])) as f:
        ann = json.load(f)
    ann.update(images=[], annotations=[])
    with open(osp.join(empty['root'], empty['ann']), 'w') as f:
        json.dump(ann, f)
    loader_cfg = train_config(gfl_model(), empty)['val_dataloader']
    with pytest.raises(ValueError, match=r'calibration dataset \(ann.json\) has no images'):
        TeacherCalibrationHook._build_dataloader(_runner_stub(), loader_cfg)

    boxless = write_coco(str(tmp_path / 'boxless'), n_images=2)
    with open(osp.join(boxless['root'], boxless['ann'])) as f:
        ann = json.load(f)
    ann['annotations'] = []
    with open(osp.join(boxless['root'], boxless['ann']), 'w') as f:
        json.dump(ann, f)
    loader = Runner.build_dataloader(train_config(gfl_model(), boxless)['val_dataloader'],
                                     seed=0)
    model = MODELS.build(ConfigDict(gfl_model()))
    with pytest.raises(ValueError, match='no ground-truth boxes in the calibration split'):
        collect_calibration_data(model, loader, 'detections', progress=False)


class _Oracle(torch.nn.Module):
    """Predicts each image's true boxes (read from the annotation file) plus one false box."""

    def __init__(self, data):
        super().__init__()
        from mmdet.models.data_preprocessors import DetDataPreprocessor
        self.data_preprocessor = DetDataPreprocessor()
        with open(osp.join(data['root'], data['ann'])) as f:
            ann = json.load(f)
        self.boxes = {}
        for a in ann['annotations']:
            x, y, w, h = a['bbox']
            self.boxes.setdefault(a['image_id'], []).append(([x, y, x + w, y + h],
                                                             a['category_id'] - 1))

    def predict(self, inputs, samples, rescale=False):
        from mmengine.structures import InstanceData
        assert rescale  # the pass compares in original coordinates
        out = []
        for s in samples:
            boxes = self.boxes[s.img_id] + [([1., 1., 3., 3.], 0)]
            res = s.clone()
            res.pred_instances = InstanceData(
                bboxes=torch.tensor([b for b, _ in boxes]),
                labels=torch.tensor([c for _, c in boxes]),
                scores=torch.linspace(0.9, 0.5, len(boxes)))
            out.append(res)
        return out


def test_pipeline_without_load_annotations_calibrates_the_same(data):
    """Ground truth comes from the dataset's annotations, not the pipeline."""
    model = _Oracle(data)
    cfg = train_config(gfl_model(), data)['val_dataloader']
    with_ann = collect_calibration_data(model, Runner.build_dataloader(cfg, seed=0),
                                        'detections', progress=False)
    cfg = copy.deepcopy(cfg)
    cfg['dataset']['pipeline'] = [t for t in cfg['dataset']['pipeline']
                                  if t['type'] != 'LoadAnnotations']
    without = collect_calibration_data(model, Runner.build_dataloader(cfg, seed=0),
                                       'detections', progress=False)
    # every true box matched, every planted false box not
    n_gt = sum(len(v) for v in model.boxes.values())
    assert int(with_ann['matched'].sum()) == n_gt
    assert len(with_ann['matched']) == n_gt + len(model.boxes)
    for key in ('logits', 'matched', 'features'):
        assert torch.equal(with_ann[key], without[key]), key


def test_fit_on_that_cannot_work_fails_before_training(tmp_path, data, teachers):
    cfg_path = _cfg(tmp_path, data, teachers[0])
    cfg = Config.fromfile(cfg_path)
    cfg.custom_hooks[0].fit_on = 'rois'
    cfg.work_dir = str(tmp_path / 'w')
    cfg.experiment_name = 'bad_fit_on'
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match=r"TeacherCalibrationHook.fit_on: fit_on='rois' does not "
                                         r"apply.*Modes that apply to GFL: \['detections', "
                                         r"'anchors'\]"):
        runner.train()
    assert not osp.exists(osp.join(cfg.work_dir, 'iter_1.pth'))
