"""A run's state from its work dir, and release checkpoints (what is stripped, what is kept)."""
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys
import time

import pytest
import torch

import mmkdcal  # noqa: F401  (registers the models; the checkpoint allow-list)
from mmengine.config import Config
from mmengine.logging import HistoryBuffer
from mmdet.registry import MODELS
from tools.harness.matrix.plan import Run
from tools.harness.matrix.release import plain_student_keys, release_checkpoint
from tools.harness.matrix.state import RECORD_FILE, inspect_run

from _helpers import ROOT

STUDENT = osp.join(ROOT, 'configs/demo/gfl_r18w16_digits.py')
KD = osp.join(ROOT, 'configs/demo/kd_gfl_r18w16_r18w32_digits.py')


def _save(path, iteration):
    torch.save(dict(meta=dict(iter=iteration, epoch=0), state_dict={'w': torch.ones(2)}), path)


def _run(work_dir, max_steps=6):
    return Run(config='configs/x.py', seed=0, work_dir=str(work_dir), cfg_options=['a=1'],
               by_epoch=False, max_steps=max_steps, checkpoint_name=f'iter_{max_steps}.pth')


def test_states_from_the_work_dir(tmp_path):
    run = _run(tmp_path)
    assert inspect_run(run).stage == 'new'
    _save(tmp_path / 'iter_2.pth', 2)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    state = inspect_run(run)
    assert (state.stage, state.progress, state.checkpoint) == \
        ('partial', 2, str(tmp_path / 'iter_2.pth'))
    # a save killed half-way: a truncated iter_4.pth is not a resume point
    _save(tmp_path / 'iter_4.pth', 4)
    data = (tmp_path / 'iter_4.pth').read_bytes()
    (tmp_path / 'iter_4.pth').write_bytes(data[:len(data) // 2])
    assert inspect_run(run).progress == 2
    # with max_keep_ckpts=1 the hook deletes the previous file before the next save completes:
    # last_checkpoint names a missing file, the complete iter_4.pth is found by its name
    _save(tmp_path / 'iter_4.pth', 4)
    os.remove(tmp_path / 'iter_2.pth')
    state = inspect_run(run)
    assert (state.stage, state.progress) == ('partial', 4)
    # a non-default name: the progress comes from the checkpoint's meta
    _save(tmp_path / 'final.pth', 6)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'final.pth'))
    state = inspect_run(run)
    assert (state.stage, state.checkpoint) == ('trained', str(tmp_path / 'final.pth'))
    metrics = tmp_path / 'test_metrics.json'
    metrics.write_text('{}')
    os.utime(metrics, (time.time() + 5, time.time() + 5))
    assert inspect_run(run).stage == 'done'
    # metrics older than the final checkpoint (re-trained since): evaluate again
    os.utime(metrics, (time.time() - 100, time.time() - 100))
    assert inspect_run(run).stage == 'trained'
    # a work dir holding checkpoints of other options is left alone
    (tmp_path / RECORD_FILE).write_text(json.dumps(dict(config='configs/x.py',
                                                        cfg_options=['a=2'], attempts=[])))
    state = inspect_run(run)
    assert state.stage == 'conflict' and "['a=2']" in state.message
    # without any checkpoint, a run with new options simply starts
    assert inspect_run(_run(tmp_path / 'other')).stage == 'new'
    (tmp_path / 'other').mkdir()
    (tmp_path / 'other' / RECORD_FILE).write_text((tmp_path / RECORD_FILE).read_text())
    assert inspect_run(_run(tmp_path / 'other')).stage == 'new'


@pytest.fixture(scope='module')
def student():
    torch.manual_seed(0)
    return MODELS.build(Config.fromfile(STUDENT).model)


def test_plain_student_keys_of_a_distiller_config(student):
    """Derived from the KD config without building its teacher: the plain student's keys."""
    keys = plain_student_keys(KD, ['model.teacher_ckpt=/nowhere.pth'])
    assert keys == {k: v.shape for k, v in student.state_dict().items()}


@pytest.mark.parametrize('config,stock', [
    ('configs/gfl/kd-cal_gfl_r50_r101_1x_coco.py', 'mmdet::gfl/gfl_r50_fpn_1x_coco.py'),
    ('configs/faster_rcnn/dkd_faster-rcnn_r18_r101_1x_coco.py',
     osp.join(ROOT, 'configs/faster_rcnn/faster-rcnn_r18_fpn_1x_coco.py')),
])
def test_plain_student_keys_of_coco_configs_are_the_stock_students(config, stock):
    """Single- and two-stage distillers: the same keys and shapes as the stock student."""
    from mmengine.hub import get_config
    cfg = get_config(stock) if stock.startswith('mmdet::') else Config.fromfile(stock)
    reference = MODELS.build(cfg.model).state_dict()
    assert plain_student_keys(config) == {k: v.shape for k, v in reference.items()}


def test_release_strips_optimizer_and_distillation_state(student, tmp_path):
    state = dict(student.state_dict())
    state['distill_losses.loss_fitnet.adapter.weight'] = torch.randn(8, 4, 1, 1)  # FitNet
    hub = dict(log_scalars={'loss': HistoryBuffer([1.0, 2.0], [1, 1])})
    training = dict(meta=dict(iter=400, epoch=0, seed=0, teacher_temperature=0.62,
                              teacher_temperature_source='fitted'),
                    state_dict=state, message_hub=hub,
                    optimizer=dict(state={}, param_groups=[dict(lr=0.1, params=[0])]),
                    param_schedulers=[dict(last_epoch=400)])
    src = str(tmp_path / 'iter_400.pth')
    torch.save(training, src)
    keys = plain_student_keys(KD, ['model.teacher_ckpt=/nowhere.pth'])
    info = release_checkpoint(src, str(tmp_path / 'out'), 'kd_gfl_seed0', student_keys=keys)
    with open(info['file'], 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert info['sha256'] == digest
    assert osp.basename(info['file']) == f'kd_gfl_seed0-{digest[:8]}.pth'
    assert info['dropped_keys'] == ['distill_losses.loss_fitnet.adapter.weight']
    assert info['dropped_entries'] == ['message_hub', 'optimizer', 'param_schedulers']
    # torch's own weights_only loader (no mmkdcal allow-list) reads the release, not the source
    code = ('import sys, torch\n'
            'for p in sys.argv[1:]:\n'
            '    try:\n'
            '        print(sorted(torch.load(p, weights_only=True)))\n'
            '    except Exception as e:\n'
            '        print("refused", type(e).__name__)\n')
    out = subprocess.run([sys.executable, '-c', code, src, info['file']], capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH='')).stdout.splitlines()
    assert out == ['refused UnpicklingError', "['meta', 'state_dict']"]
    released = torch.load(info['file'], weights_only=True)
    assert released['meta'] == training['meta']
    result = student.load_state_dict(released['state_dict'], strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for k, v in released['state_dict'].items():
        assert torch.equal(v, state[k])
    # a checkpoint of another model is refused
    del state['bbox_head.gfl_cls.weight']
    torch.save(dict(meta={}, state_dict=state), src)
    with pytest.raises(KeyError, match='lacks 1 weights of the plain student'):
        release_checkpoint(src, str(tmp_path / 'out'), 'x', student_keys=keys)
