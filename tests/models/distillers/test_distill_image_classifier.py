"""DistillImageClassifier: temperature plumbing, DKD labels, 2 iterations of KD+cal on CIFAR."""
import json
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.structures import BaseDataElement

from mmdet.registry import MODELS

import mmkdcal  # noqa: F401
from mmkdcal.utils.checkpoint import load_checkpoint_file

from _helpers import ROOT, last_checkpoint, run_tool, write_cifar100_like

CFG = osp.join(ROOT, 'configs/classification/cifar100')
torch.set_num_threads(1)


@pytest.fixture(scope='module')
def wrn_teacher(tmp_path_factory):
    torch.manual_seed(0)
    cfg = Config.fromfile(osp.join(CFG, 'wrn40-2_240e_cifar100.py'))
    path = str(tmp_path_factory.mktemp('t') / 'wrn40-2.pth')
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict()}, path)
    return path


def test_kd_and_dkd_see_teacher_logits_over_temperature(wrn_teacher):
    cfg = Config.fromfile(osp.join(CFG, 'kd_wrn16-2_wrn40-2_240e_cifar100.py'))
    cfg.model.update(teacher_config=osp.join(CFG, 'wrn40-2_240e_cifar100.py'),
                     teacher_ckpt=wrn_teacher, teacher_temperature=2.0,
                     distill_losses=dict(
                         loss_kd=dict(type='KDLoss', inputs='logits', tau=4.0, loss_weight=0.9),
                         loss_dkd=dict(type='DKDLoss', inputs='logits')))
    model = MODELS.build(cfg.model).train()
    g = torch.Generator().manual_seed(0)
    labels = [3, 50, 99]
    data = model.data_preprocessor(dict(
        inputs=[torch.randint(0, 256, (3, 32, 32), generator=g, dtype=torch.uint8)
                for _ in labels],
        data_samples=[BaseDataElement(gt_label=torch.tensor(y)) for y in labels]), True)
    seen = {}
    dkd = model.distill_losses['loss_dkd']
    orig = dkd.forward

    def record(s, t, labels, **kw):  # the distiller passes the declared labels= keyword
        seen['labels'] = labels
        return orig(s, t, labels, **kw)
    dkd.forward = record
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    with torch.no_grad():
        s = model.backbone(data['inputs'])
        t = model.teacher.backbone(data['inputs']) / 2.0
    kl = F.kl_div(F.log_softmax(s / 4, 1), F.softmax(t / 4, 1), reduction='none').sum(1)
    assert losses['loss_kd'].item() == pytest.approx(0.9 * 16 * kl.mean().item(), rel=1e-4)
    assert losses['loss_cls'].item() == pytest.approx(
        0.1 * F.cross_entropy(s, torch.tensor(labels)).item(), rel=1e-4)
    assert seen['labels'].tolist() == labels
    losses['loss_kd'].backward()
    assert all(p.grad is None for p in model.teacher.parameters())


def test_two_iteration_kd_cal_run_on_cifar_format_data(tmp_path, wrn_teacher):
    write_cifar100_like(str(tmp_path / 'data'), n_train=16, n_test=16, seed=0)
    work = str(tmp_path / 'work')
    loaders = [f'{n}_dataloader.{k}' for n in ('train', 'val', 'test')
               for k in ('batch_size=8', 'num_workers=0', 'persistent_workers=False',
                         f'dataset.data_root={tmp_path / "data"}')]
    out = run_tool(
        'tools/train.py', osp.join(CFG, 'kd-cal_wrn16-2_wrn40-2_240e_cifar100.py'),
        '--work-dir', work, '--cfg-options',
        f'model.teacher_config={osp.join(CFG, "wrn40-2_240e_cifar100.py")}',
        f'model.teacher_ckpt={wrn_teacher}', 'train_cfg.max_epochs=1', 'param_scheduler=[]',
        # a random teacher has no NLL optimum (T -> inf); the bounded ECE search still works
        'custom_hooks.0.objective=ece', *loaders)
    assert 'Teacher calibration: temperature' in out
    with open(osp.join(work, 'teacher_calibration.json')) as f:
        report = json.load(f)
    assert report['fit_on'] == 'logits' and report['num_samples'] == 16
    assert 'Epoch(train) [1][2/2]' in out  # 16 images, batch 8: two iterations
    ckpt = load_checkpoint_file(last_checkpoint(work))
    assert ckpt['meta']['teacher_temperature'] == pytest.approx(report['temperature'])
    student = MODELS.build(Config.fromfile(osp.join(CFG, 'wrn16-2_240e_cifar100.py')).model)
    result = student.load_state_dict(ckpt['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
