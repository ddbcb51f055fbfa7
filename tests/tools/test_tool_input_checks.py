"""The entry points refuse bad inputs early, naming the file and the fix: a checkpoint of another
model (tools/test.py), a truncated checkpoint (test, calibrate, --resume), a work dir that cannot
be written, and ``--resume`` in a work dir without ``last_checkpoint`` (which stock MMEngine
answers by starting over and overwriting the checkpoints).
"""
import glob
import hashlib
import importlib.util
import os
import os.path as osp
import shutil

import pytest
import torch

from mmdet.registry import MODELS

from mmkdcal.utils.checkpoint import CheckpointReadError, load_checkpoint_file
from tools.harness.trained_model import CheckpointMismatchError

from _helpers import ROOT, dump_config, gfl_model, retinanet_model, train_config, write_coco


def _tool(name):
    spec = importlib.util.spec_from_file_location(f'_tool_{name}', osp.join(ROOT, 'tools',
                                                                            f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A tiny RetinaNet trained 4 iterations in-process: work/iter_2.pth, work/iter_4.pth."""
    from mmengine.config import Config
    from mmengine.runner import Runner
    root = tmp_path_factory.mktemp('trained')
    data = write_coco(str(root / 'data'), n_images=4)
    cfg = train_config(retinanet_model(), data, max_iters=4, checkpoint_interval=2)
    cfg['train_cfg']['val_interval'] = 100
    cfg['default_hooks']['checkpoint']['type'] = 'AtomicCheckpointHook'
    cfg_path = dump_config(cfg, str(root / 'retinanet_tiny.py'))
    config = Config.fromfile(cfg_path)
    config.work_dir = str(root / 'work')
    Runner.from_cfg(config).train()
    return dict(root=root, data=data, cfg=cfg_path, work=str(root / 'work'))


def _copy_work(trained, tmp_path):
    work = str(tmp_path / 'work')
    shutil.copytree(trained['work'], work)
    return work


def _truncate(path):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])


def _sha(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


# ---- case 1: a checkpoint of another model --------------------------------------------------

def _saved_state(tmp_path, name, model_cfg, edit=None):
    state = MODELS.build(model_cfg).state_dict()
    if edit:
        edit(state)
    path = str(tmp_path / name)
    torch.save({'state_dict': state, 'meta': {}}, path)
    return path


def _test_config(tmp_path, trained, model_cfg):
    cfg = train_config(model_cfg, trained['data'])
    return dump_config(cfg, str(tmp_path / 'test_cfg.py'))


def test_test_refuses_a_checkpoint_of_another_architecture(tmp_path, trained):
    cfg = _test_config(tmp_path, trained, gfl_model())
    ckpt = _saved_state(tmp_path, 'retinanet.pth', retinanet_model())
    with pytest.raises(CheckpointMismatchError) as err:
        _tool('test').main([cfg, ckpt, '--work-dir', str(tmp_path / 'out')])
    msg = str(err.value)
    assert ckpt in msg and cfg in msg
    # examples of what does not match: GFL head weights missing, RetinaNet head weights extra
    assert 'weights are missing from the checkpoint (bbox_head.' in msg
    assert 'weights of the checkpoint are not in the model (bbox_head.' in msg
    assert 'bbox_head.retina_cls.weight' in msg


def test_test_refuses_a_shape_mismatch_with_the_same_keys(tmp_path, trained):
    cfg = _test_config(tmp_path, trained, retinanet_model(num_classes=3))
    ckpt = _saved_state(tmp_path, 'four_classes.pth', retinanet_model(num_classes=4))
    with pytest.raises(CheckpointMismatchError) as err:
        _tool('test').main([cfg, ckpt, '--work-dir', str(tmp_path / 'out')])
    msg = str(err.value)
    # 6 anchors (2 scales x 3 ratios) x 4 classes = 24 output channels in the checkpoint,
    # 6 x 3 = 18 in the model; the weight and the bias of retina_cls
    assert '2 weights have another shape (bbox_head.retina_cls.weight (24, 16, 3, 3) in the ' \
           'checkpoint vs (18, 16, 3, 3) in the model' in msg
    assert 'missing' not in msg and 'not in the model' not in msg


def test_test_refuses_an_extra_weight(tmp_path, trained):
    cfg = _test_config(tmp_path, trained, retinanet_model())
    ckpt = _saved_state(tmp_path, 'extra.pth', retinanet_model(),
                        lambda sd: sd.__setitem__('adapter.weight', torch.zeros(2)))
    with pytest.raises(CheckpointMismatchError, match=r'1 weights of the checkpoint are not in '
                                                      r'the model \(adapter.weight\)'):
        _tool('test').main([cfg, ckpt, '--work-dir', str(tmp_path / 'out')])


# ---- truncated checkpoints ------------------------------------------------------------------

def test_truncated_checkpoint_is_named_with_the_previous_one(tmp_path, trained):
    work = _copy_work(trained, tmp_path)
    bad, good = osp.join(work, 'iter_4.pth'), osp.join(work, 'iter_2.pth')
    _truncate(bad)
    expected = (f'checkpoint file {bad!r} could not be read: it is truncated or corrupt',
                f'The previous complete checkpoint in {work} is {good}')

    def check(call):
        with pytest.raises(CheckpointReadError) as err:
            call()
        assert all(e in str(err.value) for e in expected), str(err.value)

    # the loader that MMEngine uses (runner.resume, load_from, teacher_ckpt)
    from mmengine.runner.checkpoint import _load_checkpoint
    check(lambda: _load_checkpoint(bad, map_location='cpu'))
    check(lambda: load_checkpoint_file(bad))
    # the entry points, before they build anything
    out = str(tmp_path / 'out')
    check(lambda: _tool('test').main([trained['cfg'], bad, '--work-dir', out]))
    check(lambda: _tool('calibrate').main([trained['cfg'], bad, '--out', out]))
    check(lambda: _tool('train').main([trained['cfg'], '--work-dir', work, '--resume', bad]))
    os.remove(osp.join(work, 'last_checkpoint'))  # --resume alone finds iter_4, the newest
    check(lambda: _tool('train').main([trained['cfg'], '--work-dir', work, '--resume']))


# ---- a work dir that cannot be written ------------------------------------------------------

@pytest.mark.parametrize('where', ['proc', 'under_a_file'])
def test_unwritable_work_dir_is_named_before_anything_runs(tmp_path, trained, where):
    if where == 'proc':
        work = '/proc/mmkdcal_work_dir/run'
    else:
        (tmp_path / 'a_file').write_text('')
        work = str(tmp_path / 'a_file' / 'run')
    with pytest.raises(OSError) as err:
        _tool('train').main([trained['cfg'], '--work-dir', work])
    assert f"work dir {work!r} cannot be written" in str(err.value)
    assert '--work-dir DIR' in str(err.value)


@pytest.mark.skipif(hasattr(os, 'geteuid') and os.geteuid() == 0,
                    reason='root writes into read-only directories')
def test_read_only_work_dir_is_named(tmp_path, trained):
    ro = tmp_path / 'ro'
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OSError, match='cannot be written'):
            _tool('train').main([trained['cfg'], '--work-dir', str(ro / 'run')])
    finally:
        ro.chmod(0o700)


# ---- case 5: --resume without last_checkpoint -----------------------------------------------

def test_resume_without_last_checkpoint_resumes_from_the_newest(tmp_path, trained):
    work = _copy_work(trained, tmp_path)
    os.remove(osp.join(work, 'last_checkpoint'))
    before = {n: _sha(osp.join(work, n)) for n in ('iter_2.pth', 'iter_4.pth')}
    _tool('train').main([trained['cfg'], '--work-dir', work, '--resume',
                         '--cfg-options', 'train_cfg.max_iters=6'])
    log = max(glob.glob(osp.join(work, '*', '*.log')), key=osp.getmtime)
    with open(log) as f:
        out = f.read()
    assert 'resumed epoch: 0, iter: 4' in out
    assert 'Iter(train) [5/6]' in out and 'Iter(train) [1/6]' not in out
    assert {n: _sha(osp.join(work, n)) for n in before} == before  # nothing overwritten
    assert load_checkpoint_file(osp.join(work, 'iter_6.pth'))['meta']['iter'] == 6


def test_hook_refuses_a_resume_that_resumed_nothing(tmp_path, trained):
    """The same case under MMDetection's own tools/train.py (``resume=True``, no load_from, no
    last_checkpoint): MMEngine resumes nothing; the config's AtomicCheckpointHook refuses to
    start over before iteration 1."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mmkdcal.utils.checkpoint_files import ResumeError
    work = _copy_work(trained, tmp_path)
    os.remove(osp.join(work, 'last_checkpoint'))
    before = {n: _sha(osp.join(work, n)) for n in ('iter_2.pth', 'iter_4.pth')}
    cfg = Config.fromfile(trained['cfg'])
    cfg.work_dir, cfg.resume, cfg.load_from = work, True, None
    cfg.train_cfg.max_iters = 6
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ResumeError, match=f'--resume {osp.join(work, "iter_4.pth")}'):
        runner.train()
    assert runner.iter == 0
    assert {n: _sha(osp.join(work, n)) for n in before} == before
