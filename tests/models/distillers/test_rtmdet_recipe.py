"""RTMDet distilled with its own training recipe: EMA, the pipeline switch, and DistillStopHook.

A tiny RTMDet-tiny-like student (96-wide neck) learns from an -s-like teacher (128) with binary
KD on the class logits and standardised CWD on the neck through a 1x1 adapter, under RTMDet's
stock ``EMAHook`` and ``PipelineSwitchHook`` and mmkdcal's ``DistillStopHook``; the run is cut
in two and resumed, as a user would.
"""
import copy

import pytest
import torch
from mmengine.config import Config, ConfigDict
from mmengine.hooks import Hook
from mmengine.runner import Runner

import mmkdcal  # noqa: F401
from mmdet.registry import HOOKS, MODELS
from mmkdcal.engine.hooks import DistillStopHook
from mmkdcal.models.distillers.distiller_mixin import DISTILL_STATE_KEY
from mmkdcal.utils.checkpoint import load_checkpoint_file

from _families import tiny_model
from _helpers import last_checkpoint, save_teacher, train_config, write_coco

torch.set_num_threads(1)
SIZE = 64


#: What _RecordKD saw (module-level: the runner deep-copies its config).
LOG = []


@HOOKS.register_module()
class _RecordKD(Hook):
    """Records, per training iteration, the epoch, the KD losses and the teacher's forwards."""

    def __init__(self):
        self.log = LOG

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        model = runner.model
        self._calls = []
        self._handle = model.teacher.backbone.register_forward_hook(
            lambda *a: self._calls.append(1))

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self._handle.remove()
        self.log.append(dict(epoch=runner.epoch, kd_cls=float(outputs['loss_kd_cls'].detach()),
                             kd_neck=float(outputs['loss_kd_neck'].detach()),
                             teacher_calls=len(self._calls)))

    def after_train(self, runner):
        self.log.append(dict(pipeline=[type(t).__name__ for t in
                                       runner.train_dataloader.dataset.pipeline.transforms]))


def _student():
    cfg = tiny_model('rtmdet')
    cfg['neck']['out_channels'] = cfg['bbox_head']['in_channels'] = 96
    cfg['bbox_head']['feat_channels'] = 96
    return cfg


def _model(t_path, t_ckpt):
    return dict(_student(), type='DistillRTMDet',
                teacher_config=t_path, teacher_ckpt=t_ckpt, teacher_temperature=1.0,
                distill_losses=dict(
                    loss_kd_cls=dict(type='BinaryKDLoss', inputs='cls', beta=1.0),
                    loss_kd_neck=dict(type='CWDLoss', inputs='neck', student_channels=96,
                                      teacher_channels=128, standardise=True)))


def _run_cfg(tmp_path, data, t_path, t_ckpt, max_epochs, resume=False):
    LOG.clear()
    run = train_config(_model(t_path, t_ckpt), data, size=SIZE)
    stage2 = copy.deepcopy(run['train_dataloader']['dataset']['pipeline'])
    stage2.insert(2, dict(type='RandomFlip', prob=0.5))
    run.update(
        train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=100),
        val_cfg=None, val_dataloader=None, val_evaluator=None,
        work_dir=str(tmp_path / 'work'), resume=resume,
        log_processor=dict(type='LogProcessor', window_size=1, by_epoch=True),
        custom_hooks=[
            dict(type='EMAHook', ema_type='ExpMomentumEMA', momentum=0.0002,
                 update_buffers=True, priority=49),
            dict(type='PipelineSwitchHook', switch_epoch=2, switch_pipeline=stage2),
            dict(type='DistillStopHook', stop_epoch=2),
            dict(type='_RecordKD')])
    run['default_hooks']['checkpoint'] = dict(type='CheckpointHook', interval=1, by_epoch=True)
    run['train_dataloader']['sampler'] = dict(type='DefaultSampler', shuffle=False)
    return run


def _teacher(tmp_path):
    teacher_cfg = tiny_model('rtmdet')
    for key in ('neck', 'bbox_head'):
        teacher_cfg[key]['out_channels' if key == 'neck' else 'in_channels'] = 128
    teacher_cfg['bbox_head']['feat_channels'] = 128
    return save_teacher(teacher_cfg, tmp_path)[:2]


def test_ema_pipeline_switch_and_distill_stop_with_resume(tmp_path):
    data = write_coco(str(tmp_path / 'data'), n_images=4, size=SIZE)
    t_path, t_ckpt = _teacher(tmp_path)

    # Epochs 0-1 (2 iterations each): distillation on, the teacher runs every iteration.
    Runner.from_cfg(Config(_run_cfg(tmp_path, data, t_path, t_ckpt, 2))).train()
    log_a = list(LOG)
    iters_a = log_a[:-1]
    assert [r['epoch'] for r in iters_a] == [0, 0, 1, 1]
    assert all(r['kd_cls'] > 0 and r['kd_neck'] > 0 and r['teacher_calls'] == 1
               for r in iters_a)
    assert 'RandomFlip' not in log_a[-1]['pipeline']

    ckpt = load_checkpoint_file(last_checkpoint(str(tmp_path / 'work')))
    # The student checkpoint is a stock RTMDet's, EMA weights swapped in as stock; neither the
    # EMA copy nor the checkpoint holds the teacher or the adapter, which the distiller keeps
    # apart, in the run's MessageHub state (no TeacherCalibrationHook in this run).
    assert not [k for k in ckpt['ema_state_dict'] if 'teacher' in k or 'distill_losses' in k]
    assert set(ckpt['message_hub']['runtime_info'][DISTILL_STATE_KEY]) == {
        'distill_losses.loss_kd_neck.adapter.weight'}
    stock = MODELS.build(ConfigDict(_student()))
    result = stock.load_state_dict(ckpt['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    ema_keys = {k[len('module.'):] for k in ckpt['ema_state_dict'] if k.startswith('module.')}
    assert ema_keys == set(ckpt['state_dict'])

    # Resumed for a third epoch: the pipeline switches and distillation stops at epoch 2 (the
    # state follows the runner's epoch, not the hook's history).
    Runner.from_cfg(Config(_run_cfg(tmp_path, data, t_path, t_ckpt, 3, resume=True))).train()
    log_b = list(LOG)
    iters_b = log_b[:-1]
    assert [r['epoch'] for r in iters_b] == [2, 2]
    for r in iters_b:
        assert r['kd_cls'] == 0.0 and r['kd_neck'] == 0.0 and r['teacher_calls'] == 0
    assert 'RandomFlip' in log_b[-1]['pipeline']


def test_stopped_distillation_keeps_the_adapter_in_the_graph(tmp_path):
    """After the stop the KD terms are exact zeros whose graph reaches the adapter (a zero
    gradient, not None: DDP without find_unused_parameters needs every parameter used)."""
    from _helpers import batch
    t_path, t_ckpt = _teacher(tmp_path)
    model = MODELS.build(ConfigDict(_model(t_path, t_ckpt)))
    model.train()
    data = batch(model, size=SIZE)
    on = model.loss(data['inputs'], data['data_samples'])
    model.distill_enabled = False
    off = model.loss(data['inputs'], data['data_samples'])
    assert set(on) == set(off)  # the same log keys
    for key in ('loss_cls', 'loss_bbox'):  # the task losses do not depend on the switch
        assert torch.allclose(sum(on[key]), sum(off[key]))
    assert float(off['loss_kd_cls']) == 0.0 and float(off['loss_kd_neck']) == 0.0
    sum(v if torch.is_tensor(v) else sum(v) for v in off.values()).backward()
    grad = model.distill_losses.loss_kd_neck.adapter.weight.grad
    assert grad is not None and float(grad.abs().sum()) == 0.0


def test_distill_stop_hook_arguments_and_model_are_checked():
    with pytest.raises(ValueError, match='exactly one of stop_epoch and stop_iter'):
        DistillStopHook()
    with pytest.raises(ValueError, match='exactly one of stop_epoch and stop_iter'):
        DistillStopHook(stop_epoch=1, stop_iter=10)
    with pytest.raises(ValueError, match='stop_epoch must be a non-negative int'):
        DistillStopHook(stop_epoch=-1)
    with pytest.raises(ValueError, match='stop_iter must be a non-negative int'):
        DistillStopHook(stop_iter=True)

    class _Runner:
        model = torch.nn.Linear(1, 1)
    with pytest.raises(TypeError, match='needs an mmkdcal distiller.*Linear'):
        DistillStopHook(stop_epoch=1).before_run(_Runner())
