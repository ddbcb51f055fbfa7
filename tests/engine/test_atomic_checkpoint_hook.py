"""AtomicCheckpointHook: a save that is killed or runs out of disk loses nothing.

Tiny RetinaNet runs (2 + 2 iterations, a checkpoint every 2, max_keep_ckpts=1). A test-only patch
of MMEngine's local file write (``LocalBackend.put``, which every checkpoint save goes through)
makes the save of ``iter_4`` deterministic: it writes half of the bytes, then either hangs (in a
real training process, which the test kills with SIGKILL) or raises ENOSPC. With MMEngine's own
CheckpointHook, ``iter_2.pth`` is already deleted at that moment, so both tests fail.
"""
import errno
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
from mmengine.config import Config
from mmengine.fileio.backends.local_backend import LocalBackend
from mmengine.runner import Runner

from mmkdcal.utils.checkpoint import load_checkpoint_file
from mmkdcal.utils.checkpoint_files import is_complete
from mmkdcal.utils.work_dir import LOCK_NAME, WorkDirInUseError
from _helpers import (ROOT, dump_config, last_checkpoint, retinanet_model, start_lock_holder,
                      train_config, write_coco)

MMDET_TRAIN = osp.join(osp.dirname(__import__('mmdet').__file__), '.mim', 'tools', 'train.py')

HANG_IN_SAVE = r'''
import os, runpy, sys, time
from mmengine.fileio.backends.local_backend import LocalBackend

TARGET, MARKER = sys.argv[1:3]
stock_put = LocalBackend.put


def put(self, obj, filepath):
    if TARGET not in os.path.basename(str(filepath)):
        return stock_put(self, obj, filepath)
    with open(filepath, 'wb') as f:
        f.write(obj[:len(obj) // 2])
        f.flush()
        os.fsync(f.fileno())
        open(MARKER, 'w').close()
        while True:  # hang in the middle of the write until killed
            time.sleep(1)


LocalBackend.put = put
sys.argv = sys.argv[3:]
runpy.run_path(sys.argv[0], run_name='__main__')
'''


def _setup(tmp_path):
    data = write_coco(str(tmp_path / 'data'), n_images=4)
    cfg = train_config(retinanet_model(), data, max_iters=4, checkpoint_interval=2)
    cfg['train_cfg']['val_interval'] = 100  # no validation: only the saves matter here
    cfg['default_hooks']['checkpoint'].update(type='AtomicCheckpointHook', max_keep_ckpts=1)
    cfg_path = dump_config(cfg, str(tmp_path / 'retinanet_tiny.py'))
    return cfg_path, str(tmp_path / 'work')


def _runner(cfg_path, work, resume=False):
    cfg = Config.fromfile(cfg_path)
    cfg.work_dir, cfg.resume = work, resume  # resume=True, no load_from: as `--resume`
    return Runner.from_cfg(cfg)


def _log(runner):
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        return f.read()


def _assert_iter_2_is_the_good_checkpoint(work):
    good = osp.join(work, 'iter_2.pth')
    assert is_complete(good)
    assert load_checkpoint_file(good)['meta']['iter'] == 2
    assert osp.samefile(last_checkpoint(work), good)
    assert not osp.exists(osp.join(work, 'iter_4.pth'))


def _assert_resumes_from_iter_2(cfg_path, work):
    runner = _runner(cfg_path, work, resume=True)
    runner.train()
    log = _log(runner)
    assert 'resumed epoch: 0, iter: 2' in log and 'Iter(train) [3/4]' in log
    assert 'Iter(train) [1/4]' not in log
    assert load_checkpoint_file(osp.join(work, 'iter_4.pth'))['meta']['iter'] == 4
    assert osp.samefile(last_checkpoint(work), osp.join(work, 'iter_4.pth'))
    # max_keep_ckpts=1: the old one goes, after the new one is complete; no partial file stays
    assert sorted(n for n in os.listdir(work) if '.pth' in n) == ['iter_4.pth']
    return log


def test_sigkill_during_a_save_keeps_the_previous_checkpoint(tmp_path):
    """Killed inside a real training process run by MMDetection's own tools/train.py: the
    config alone selects the hook."""
    cfg_path, work = _setup(tmp_path)
    marker = str(tmp_path / 'writing')
    hang = tmp_path / 'hang_in_save.py'
    hang.write_text(HANG_IN_SAVE)
    with open(tmp_path / 'train.log', 'w') as log:
        proc = subprocess.Popen(
            [sys.executable, str(hang), 'iter_4.pth', marker, MMDET_TRAIN, cfg_path,
             '--work-dir', work], cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT,
                                                     OMP_NUM_THREADS='1'),
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 900  # a guard against a hang, not a speed requirement
        while not osp.exists(marker) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        running = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert running and osp.exists(marker), (tmp_path / 'train.log').read_text()[-4000:]
    _assert_iter_2_is_the_good_checkpoint(work)
    # killed while the new checkpoint was half written: it is only a .part file
    assert osp.isfile(osp.join(work, 'iter_4.pth.part'))

    log = _assert_resumes_from_iter_2(cfg_path, work)
    assert 'iter_4.pth.part, left by an interrupted save' in log


def test_disk_full_at_a_save_names_the_file_and_leaves_no_partial_file(tmp_path, monkeypatch):
    cfg_path, work = _setup(tmp_path)
    stock_put = LocalBackend.put

    def put(self, obj, filepath):
        if 'iter_4.pth' not in osp.basename(filepath):
            return stock_put(self, obj, filepath)
        with open(filepath, 'wb') as f:  # the disk fills up half way through the write
            f.write(obj[:len(obj) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # no file name, as the OS

    monkeypatch.setattr(LocalBackend, 'put', put)
    with pytest.raises(OSError) as err:
        _runner(cfg_path, work).train()
    monkeypatch.undo()
    final = osp.join(work, 'iter_4.pth')
    assert err.value.errno == errno.ENOSPC
    msg = str(err.value)
    assert f'could not write checkpoint {final} (No space left on device)' in msg
    assert f'the partial file {final}.part was removed' in msg
    assert f'The last complete checkpoint, {osp.join(work, "iter_2.pth")}, is intact' in msg
    assert not osp.exists(final + '.part')
    _assert_iter_2_is_the_good_checkpoint(work)
    _assert_resumes_from_iter_2(cfg_path, work)


@pytest.mark.parametrize('save_best', [False, True])
def test_old_checkpoints_are_removed_only_after_the_new_one_is_written(tmp_path, monkeypatch,
                                                                       save_best):
    """In-process: the order of the file operations of one save (and of a best-checkpoint save)."""
    cfg_path, work = _setup(tmp_path)
    cfg = Config.fromfile(cfg_path)
    cfg.work_dir = work
    if save_best:  # validate every 2 iterations and keep the best by bbox mAP
        cfg.train_cfg.val_interval = 2
        cfg.default_hooks.checkpoint.save_best = 'coco/bbox_mAP_50'
        cfg.default_hooks.checkpoint.rule = 'greater'
    runner = Runner.from_cfg(cfg)
    if save_best:  # every new value counts as better, so that the best checkpoint changes
        hook = [h for h in runner.hooks if type(h).__name__ == 'AtomicCheckpointHook'][0]
        hook.is_better_than['coco/bbox_mAP_50'] = lambda new, best: True
    events = []
    stock_put, stock_remove = LocalBackend.put, LocalBackend.remove

    def put(self, obj, filepath):
        events.append(('write', osp.basename(filepath), sorted(
            n for n in os.listdir(work) if n.endswith('.pth'))))
        return stock_put(self, obj, filepath)

    def remove(self, filepath):
        events.append(('remove', osp.basename(filepath), None))
        return stock_remove(self, filepath)

    monkeypatch.setattr(LocalBackend, 'put', put)
    monkeypatch.setattr(LocalBackend, 'remove', remove)
    runner.train()
    monkeypatch.undo()
    writes = [e for e in events if e[0] == 'write']
    # (a best-checkpoint save writes iter_N again, to store the new best in it)
    assert sorted({w[1] for w in writes if w[1].startswith('iter_')}) == ['iter_2.pth.part',
                                                                          'iter_4.pth.part']
    # when iter_4 is being written, iter_2 is still there; it is removed only afterwards
    assert 'iter_2.pth' in [w for w in writes if w[1] == 'iter_4.pth.part'][0][2]
    removed = [e[1] for e in events if e[0] == 'remove']
    assert 'iter_2.pth' in removed
    assert events.index(('remove', 'iter_2.pth', None)) > events.index(
        [w for w in writes if w[1] == 'iter_4.pth.part'][0])
    names = sorted(n for n in os.listdir(work) if '.pth' in n)
    if save_best:
        best = [w for w in writes if w[1].startswith('best_')]
        assert [b[1] for b in best] == ['best_coco_bbox_mAP_50_iter_2.pth.part',
                                        'best_coco_bbox_mAP_50_iter_4.pth.part']
        assert ('remove', 'best_coco_bbox_mAP_50_iter_2.pth', None) in events
        assert 'best_coco_bbox_mAP_50_iter_2.pth' in best[1][2]  # old best kept during the write
        assert names == ['best_coco_bbox_mAP_50_iter_4.pth', 'iter_4.pth']
    else:
        assert names == ['iter_4.pth']


def test_the_hook_locks_the_work_dir_under_a_plain_runner(tmp_path):
    """As under MMDetection's own tools/train.py (a Runner, no mmkdcal entry point): a live
    run's lock refuses the training before iteration 1; the run's own lock goes when it ends."""
    cfg_path, work = _setup(tmp_path)
    holder = start_lock_holder(work)
    try:
        runner = _runner(cfg_path, work)
        with pytest.raises(WorkDirInUseError, match=f'process {holder.pid} on host'):
            runner.train()
        assert runner.iter == 0 and not osp.exists(osp.join(work, 'iter_2.pth'))
    finally:
        holder.kill()
        holder.wait()
    runner = _runner(cfg_path, work)
    runner.train()
    assert runner.iter == 4 and not osp.exists(osp.join(work, LOCK_NAME))
