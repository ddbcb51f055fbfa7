"""One run per work dir, through ``tools/train.py``'s ``main``: a live run's work dir is refused
(a dead run's lock is taken over), a new run never writes over an earlier run's checkpoints, and
``--resume`` on a work dir without checkpoints (a misspelt one) refuses instead of starting over.
"""
import hashlib
import importlib.util
import os
import os.path as osp
import signal

import pytest

from mmkdcal.utils.checkpoint import load_checkpoint_file
from mmkdcal.utils.checkpoint_files import ResumeError
from mmkdcal.utils.work_dir import LOCK_NAME, WorkDirInUseError
from tools.harness.work_dir import UsedWorkDirError

from _helpers import ROOT, dump_config, retinanet_model, start_lock_holder, train_config, write_coco


def _train_tool():
    spec = importlib.util.spec_from_file_location('_tool_train_work_dir',
                                                  osp.join(ROOT, 'tools', 'train.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    """A tiny RetinaNet config: 2 iterations, a checkpoint at 2, no validation."""
    root = tmp_path_factory.mktemp('work_dir_rules')
    data = write_coco(str(root / 'data'), n_images=4)
    cfg = train_config(retinanet_model(), data, max_iters=2, checkpoint_interval=2)
    cfg['train_cfg']['val_interval'] = 100
    cfg['default_hooks']['checkpoint']['type'] = 'AtomicCheckpointHook'
    return dump_config(cfg, str(root / 'retinanet_tiny.py'))


def _sha(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def _checkpoints(work):
    return sorted(n for n in os.listdir(work) if n.startswith('iter_') and n.endswith('.pth'))


def test_a_live_runs_work_dir_is_refused_and_a_dead_runs_lock_is_taken_over(
        tiny, tmp_path, capfd):
    work = str(tmp_path / 'work')
    # another training process holding the work dir (the lock a running tools/train.py takes)
    holder = start_lock_holder(work)
    try:
        with pytest.raises(WorkDirInUseError) as err:
            _train_tool().main([tiny, '--work-dir', work])
        msg = str(err.value)
        assert f'process {holder.pid} on host' in msg and '--work-dir NEW_DIR' in msg
        assert _checkpoints(work) == []  # nothing trained, nothing written
    finally:
        holder.send_signal(signal.SIGKILL)  # dies without removing its lock
        holder.wait()
    assert osp.isfile(osp.join(work, LOCK_NAME))
    capfd.readouterr()
    _train_tool().main([tiny, '--work-dir', work])
    out = capfd.readouterr()
    assert f'took over the lock {osp.join(work, LOCK_NAME)} left by process {holder.pid}' in \
        out.out + out.err
    assert _checkpoints(work) == ['iter_2.pth']
    assert not osp.exists(osp.join(work, LOCK_NAME))  # released when the run ended


def test_a_new_run_in_a_used_work_dir_is_refused_and_both_named_fixes_work(tiny, tmp_path):
    work = str(tmp_path / 'work')
    train = _train_tool().main
    train([tiny, '--work-dir', work])
    ckpt = osp.join(work, 'iter_2.pth')
    before = _sha(ckpt)
    with pytest.raises(UsedWorkDirError) as err:
        train([tiny, '--work-dir', work])
    msg = str(err.value)
    assert ckpt in msg and '--resume' in msg and '--work-dir NEW_DIR' in msg
    assert _sha(ckpt) == before and _checkpoints(work) == ['iter_2.pth']
    assert not osp.exists(osp.join(work, LOCK_NAME))  # released on the refusal too
    # fix 1: continue that run
    train([tiny, '--work-dir', work, '--resume', '--cfg-options', 'train_cfg.max_iters=4'])
    assert _sha(ckpt) == before
    assert load_checkpoint_file(osp.join(work, 'iter_4.pth'))['meta']['iter'] == 4
    # fix 2: a new run in another directory
    other = str(tmp_path / 'other')
    train([tiny, '--work-dir', other])
    assert _checkpoints(other) == ['iter_2.pth'] and _sha(ckpt) == before


def test_a_truncated_checkpoint_does_not_make_a_work_dir_used(tiny, tmp_path):
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'iter_2.pth').write_bytes(b'PK\x03\x04' + b'\0' * 64)  # a save cut short
    _train_tool().main([tiny, '--work-dir', str(work)])
    assert load_checkpoint_file(str(work / 'iter_2.pth'))['meta']['iter'] == 2


def test_resume_on_a_work_dir_without_checkpoints_refuses(tiny, tmp_path):
    misspelt = str(tmp_path / 'wrok')
    with pytest.raises(ResumeError) as err:
        _train_tool().main([tiny, '--work-dir', misspelt, '--resume'])
    msg = str(err.value)
    assert f'{misspelt} does not exist' in msg and 'leave out --resume' in msg
    assert not osp.exists(misspelt)  # nothing was created, nothing trained
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ResumeError, match=r'holds no iter_\*\.pth checkpoint'):
        _train_tool().main([tiny, '--work-dir', str(empty), '--resume'])
    assert os.listdir(empty) == []
