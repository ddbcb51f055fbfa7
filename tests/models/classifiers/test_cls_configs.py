"""Every config under configs/classification/ parses and holds what its file name promises.

Names: ``<arch>_240e_cifar100.py`` (plain training) and
``<method>[-cal]_<student>_<teacher>_240e_cifar100.py`` (distillation).
"""
import glob
import os
import os.path as osp
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.runner import Runner
from mmengine.structures import BaseDataElement

from mmdet.registry import MODELS

import mmkdcal  # noqa: F401
from mmkdcal.evaluation import topk_accuracy  # noqa: F401  (registers TopKAccuracy)

from _helpers import write_cifar100_like

REPO = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
CFG_DIR = osp.join(REPO, 'configs', 'classification')
ALL_CONFIGS = sorted(p for p in glob.glob(osp.join(CFG_DIR, '**', '*.py'), recursive=True)
                     if '_base_' not in p.split(os.sep))

# name in file names -> (backbone type, identifying argument)
ARCHS = {
    'resnet32x4': ('CifarResNet', dict(arch='resnet32x4')),
    'resnet56': ('CifarResNet', dict(arch='resnet56')),
    'resnet8x4': ('CifarResNet', dict(arch='resnet8x4')),
    'wrn40-2': ('CifarWideResNet', dict(arch='wrn_40_2')),
    'wrn16-2': ('CifarWideResNet', dict(arch='wrn_16_2')),
    'shufflenetv2': ('CifarShuffleNetV2', dict(net_size=1.0)),
}
LOSSES = {'kd': 'KDLoss', 'dkd': 'DKDLoss', 'mlkd': 'MLKDLoss'}
SMALL_LR_STUDENTS = {'shufflenetv2'}


def _parse_name(path):
    stem = osp.basename(path)[:-3]
    assert stem.endswith('_240e_cifar100'), stem
    parts = stem[:-len('_240e_cifar100')].split('_')
    if len(parts) == 1:
        return dict(kind='plain', arch=parts[0])
    method, student, teacher = parts
    cal = method.endswith('-cal')
    return dict(kind='distill', method=method[:-4] if cal else method, cal=cal, student=student,
                teacher=teacher)


def _check_backbone(backbone, arch):
    type_name, args = ARCHS[arch]
    assert backbone['type'] == type_name
    for k, v in args.items():
        assert backbone[k] == v
    assert backbone['num_classes'] == 100


def test_config_set_is_complete():
    names = {osp.basename(p) for p in ALL_CONFIGS}
    for arch in ARCHS:
        assert f'{arch}_240e_cifar100.py' in names
    for student, teacher in (('resnet8x4', 'resnet32x4'), ('wrn16-2', 'wrn40-2'),
                             ('shufflenetv2', 'resnet32x4')):
        for method in ('kd', 'kd-cal', 'dkd', 'dkd-cal', 'mlkd', 'mlkd-cal'):
            assert f'{method}_{student}_{teacher}_240e_cifar100.py' in names


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=lambda p: osp.basename(p))
def test_config_parses_and_matches_its_name(path):
    cfg = Config.fromfile(path)
    info = _parse_name(path)
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports['imports'] == ['mmkdcal']
    assert cfg.train_cfg.max_epochs == 240
    assert cfg.param_scheduler[0]['milestones'] == [150, 180, 210]
    assert cfg.train_dataloader.batch_size == 64
    assert cfg.optim_wrapper.optimizer.momentum == 0.9
    assert cfg.optim_wrapper.optimizer.weight_decay == 5e-4
    assert cfg.model.data_preprocessor.type == 'ImgDataPreprocessor'
    assert cfg.train_dataloader.dataset.type == 'CIFAR100Dataset'
    assert cfg.train_dataloader.dataset.split == 'train'
    assert cfg.val_dataloader.dataset.split == 'test'
    assert cfg.val_evaluator.type == 'TopKAccuracy'
    if info['kind'] == 'plain':
        assert cfg.model.type == 'ImageClassifier'
        _check_backbone(cfg.model.backbone, info['arch'])
        expected_lr = 0.01 if info['arch'] in SMALL_LR_STUDENTS else 0.05
        assert cfg.optim_wrapper.optimizer.lr == expected_lr
        assert 'custom_hooks' not in cfg or not cfg.custom_hooks
        return
    model = cfg.model
    assert model.type == 'DistillImageClassifier'
    _check_backbone(model.backbone, info['student'])
    # the teacher config exists, parses, and builds the teacher the name promises
    assert model.teacher_config == \
        f'configs/classification/cifar100/{info["teacher"]}_240e_cifar100.py'
    teacher_cfg = Config.fromfile(osp.join(REPO, model.teacher_config))
    _check_backbone(teacher_cfg.model.backbone, info['teacher'])
    assert model.teacher_ckpt == f'work_dirs/{info["teacher"]}_240e_cifar100/epoch_240.pth'
    losses = list(model.distill_losses.values())
    assert [loss['type'] for loss in losses] == [LOSSES[info['method']]]
    loss = losses[0]
    assert loss.inputs == 'logits'
    if info['method'] == 'kd':
        assert (loss.tau, loss.loss_weight, model.ce_loss_weight) == (4.0, 0.9, 0.1)
    elif info['method'] == 'dkd':
        beta = 6.0 if info['student'] == 'wrn16-2' else 8.0
        assert (loss.alpha, loss.beta, loss.tau, model.ce_loss_weight) == (1.0, beta, 4.0, 1.0)
        assert loss.warmup_iters == 20 * 782
    else:
        assert tuple(loss.temperatures) == (2.0, 3.0, 4.0, 5.0, 6.0)
        assert model.ce_loss_weight == 0.1
    if info['method'] == 'mlkd':
        expected_lr = 0.01 if info['student'] in SMALL_LR_STUDENTS else 0.025
    else:
        expected_lr = 0.01 if info['student'] in SMALL_LR_STUDENTS else 0.05
    assert cfg.optim_wrapper.optimizer.lr == expected_lr
    hooks = [h['type'] for h in cfg.get('custom_hooks', [])]
    if info['cal']:
        assert model.teacher_temperature is None
        assert hooks == ['TeacherCalibrationHook']
    else:
        assert model.teacher_temperature == 1.0
        assert 'TeacherCalibrationHook' not in hooks


@pytest.fixture(scope='module')
def teacher_ckpts(tmp_path_factory):
    """Randomly initialised teacher checkpoints, saved the way the Runner saves them."""
    root = tmp_path_factory.mktemp('teachers')
    torch.manual_seed(0)
    paths = {}
    for teacher in ('resnet32x4', 'wrn40-2'):
        cfg = Config.fromfile(osp.join(CFG_DIR, 'cifar100', f'{teacher}_240e_cifar100.py'))
        state = MODELS.build(cfg.model).state_dict()
        paths[teacher] = str(root / f'{teacher}.pth')
        torch.save(dict(state_dict=state, meta=dict()), paths[teacher])
    return paths


DISTILL_CONFIGS = [p for p in ALL_CONFIGS if _parse_name(p)['kind'] == 'distill']


@pytest.mark.parametrize('path', DISTILL_CONFIGS, ids=lambda p: osp.basename(p))
def test_distill_config_builds_and_computes_its_losses(path, teacher_ckpts):
    """The distiller builds from the config (teacher config + checkpoint) and returns CE plus the
    loss the file name promises; the -cal variants wait for the hook's temperature."""
    torch.set_num_threads(1)
    info = _parse_name(path)
    cfg = Config.fromfile(path)
    cfg.model.teacher_config = osp.join(REPO, cfg.model.teacher_config)
    cfg.model.teacher_ckpt = teacher_ckpts[info['teacher']]
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'DistillImageClassifier'
    assert type(model.teacher.backbone).__name__ == ARCHS[info['teacher']][0]
    assert type(model.backbone).__name__ == ARCHS[info['student']][0]
    data = dict(inputs=[torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8) for _ in range(4)],
                data_samples=[BaseDataElement(gt_label=torch.tensor(y)) for y in (0, 5, 9, 99)])
    batch = model.data_preprocessor(data, True)
    if info['cal']:
        assert not model.has_teacher_temperature
        model.set_teacher_temperature(1.5)
    # what the training loop publishes before its first iteration (DKD's warm-up reads it)
    MessageHub.get_instance(f'cls_{uuid.uuid4().hex}').update_info('iter', 0)
    losses = model(batch['inputs'], batch['data_samples'], mode='loss')
    assert set(losses) == {'loss_cls', f'loss_{info["method"]}'}
    assert all(torch.isfinite(v) for v in losses.values())


@pytest.mark.parametrize('arch,millions', [('resnet32x4', 7.43), ('wrn40-2', 2.26),
                                           ('resnet56', 0.86), ('resnet8x4', 1.23),
                                           ('wrn16-2', 0.70), ('shufflenetv2', 1.36)])
def test_plain_configs_build_the_named_model(arch, millions):
    cfg = Config.fromfile(osp.join(CFG_DIR, 'cifar100', f'{arch}_240e_cifar100.py'))
    model = MODELS.build(cfg.model)
    n = sum(p.numel() for p in model.parameters())
    assert abs(n - millions * 1e6) / (millions * 1e6) < 0.02


def test_runner_trains_and_evaluates_a_plain_config(tmp_path):
    """One epoch through the stock Runner on a fake CIFAR-100; the reported top-1 equals the
    accuracy recomputed from the trained model on the same test images."""
    torch.set_num_threads(1)
    planted = write_cifar100_like(str(tmp_path / 'data'), n_train=16, n_test=8, seed=0)
    cfg = Config.fromfile(osp.join(CFG_DIR, 'cifar100', 'resnet8x4_240e_cifar100.py'))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_cfg.max_epochs = 1
    cfg.train_cfg.val_interval = 1
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1)
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    cfg.randomness = dict(seed=0)
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[name]
        loader.batch_size = 8
        loader.num_workers = 0
        loader.persistent_workers = False
        loader.dataset.data_root = str(tmp_path / 'data')
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = runner.test()
    assert set(metrics) == {'accuracy/top1', 'accuracy/top5'}
    model = runner.model.eval()
    images = torch.from_numpy(planted['test'][0]).permute(0, 3, 1, 2)
    with torch.no_grad():
        batch = model.data_preprocessor(dict(inputs=list(images)), False)
        pred = model(batch['inputs'], mode='tensor').argmax(1)
    expected = 100.0 * (pred == torch.from_numpy(planted['test'][1])).float().mean().item()
    assert metrics['accuracy/top1'] == pytest.approx(expected)
    assert osp.isfile(osp.join(cfg.work_dir, 'epoch_1.pth'))


def _fake_cifar_run(cfg: Config, tmp_path, n_train: int = 16) -> Config:
    """``cfg`` shortened to one epoch of batch 8 on a fake CIFAR-100 (no validation)."""
    write_cifar100_like(str(tmp_path / 'data'), n_train=n_train, n_test=8, seed=0)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_cfg.max_epochs = 1
    cfg.train_cfg.val_interval = 100
    cfg.param_scheduler = []
    cfg.env_cfg.dist_cfg = dict(backend='gloo')
    cfg.randomness = dict(seed=0)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    cfg.train_dataloader.update(batch_size=8, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.data_root = str(tmp_path / 'data')
    return cfg


def test_hookless_dkd_config_trains_in_the_runner(tmp_path, teacher_ckpts, monkeypatch):
    """The uncalibrated DKD config (no TeacherCalibrationHook) trains through the stock Runner:
    each iteration's DKD term gets the Runner's iteration and its warm-up factor."""
    torch.set_num_threads(1)
    path = osp.join(CFG_DIR, 'cifar100', 'dkd_wrn16-2_wrn40-2_240e_cifar100.py')
    cfg = Config.fromfile(path)
    assert 'TeacherCalibrationHook' not in [h['type'] for h in cfg.get('custom_hooks', [])]
    cfg.model.teacher_config = osp.join(REPO, cfg.model.teacher_config)
    cfg.model.teacher_ckpt = teacher_ckpts['wrn40-2']
    cfg = _fake_cifar_run(cfg, tmp_path)
    warmup = cfg.model.distill_losses.loss_dkd.warmup_iters
    dkd_cls = MODELS.get('DKDLoss')
    forward, seen = dkd_cls.forward, []

    def spy(self, *args, cur_iter=None, **kwargs):
        value = forward(self, *args, cur_iter=cur_iter, **kwargs)
        full = forward(self, *args, cur_iter=warmup - 1, **kwargs)  # warm-up factor 1
        seen.append((cur_iter, float(value), float(full)))
        return value

    monkeypatch.setattr(dkd_cls, 'forward', spy)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert [it for it, _, _ in seen] == [0, 1]  # 16 images, batch 8: the Runner's iterations
    for it, value, full in seen:
        assert full > 0
        assert value == pytest.approx(full * (it + 1) / warmup, rel=1e-5)
