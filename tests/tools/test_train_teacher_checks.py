"""Through ``tools/train.py``'s ``main``, before any iteration runs: a teacher checkpoint whose
classes are another order (or other names) than the student's is refused, naming both lists; a
teacher URL that cannot be reached is told from a damaged download; a disk without room for a
checkpoint is refused (with room for one but not two: a warning).
"""
import copy
import functools
import http.server
import importlib.util
import os
import os.path as osp
import shutil
import threading
from collections import namedtuple

import pytest
import torch
from mmengine.config import ConfigDict

from mmdet.registry import MODELS

from tools.harness.teacher_classes import TeacherClassesError
from tools.harness.work_dir import DiskSpaceError

from _helpers import CLASSES, ROOT, dump_config, gfl_model, train_config, write_coco


def _train(argv):
    spec = importlib.util.spec_from_file_location('_tool_train_teacher_checks',
                                                  osp.join(ROOT, 'tools', 'train.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return write_coco(str(tmp_path_factory.mktemp('teacher_checks')), n_images=4)


def _teacher(tmp_path, meta):
    """A GFL teacher with random weights, saved with ``meta``: (config path, checkpoint path)."""
    teacher_cfg = gfl_model(width=8)
    torch.manual_seed(1)
    teacher = MODELS.build(ConfigDict(copy.deepcopy(teacher_cfg)))
    cfg_path = dump_config(dict(model=teacher_cfg), str(tmp_path / 'teacher.py'))
    ckpt = str(tmp_path / 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict(), 'meta': meta}, ckpt)
    return cfg_path, ckpt


def _kd_config(tmp_path, data, teacher_cfg, teacher_ckpt, max_iters=1):
    student = gfl_model(width=8)
    student.update(type='DistillSingleStageDetector', teacher_config=teacher_cfg,
                   teacher_ckpt=teacher_ckpt, teacher_temperature=1.0,
                   distill_losses=dict(loss_kd=dict(type='BinaryKDLoss', inputs='cls')))
    cfg = train_config(student, data, max_iters=max_iters)
    cfg['train_cfg']['val_interval'] = 100
    cfg['default_hooks']['checkpoint']['type'] = 'AtomicCheckpointHook'
    return dump_config(cfg, str(tmp_path / 'kd.py'))


# ---- the teacher's classes ------------------------------------------------------------------

def test_a_teacher_with_the_classes_in_another_order_is_refused(data, tmp_path):
    permuted = ('blue', 'red', 'green')
    t_cfg, ckpt = _teacher(tmp_path, dict(dataset_meta=dict(classes=permuted)))
    cfg = _kd_config(tmp_path, data, t_cfg, ckpt)
    work = str(tmp_path / 'work')
    with pytest.raises(TeacherClassesError) as err:
        _train([cfg, '--work-dir', work])
    msg = str(err.value)
    assert ckpt in msg and 'the same classes in another order' in msg
    assert "Teacher classes (its meta): ['blue', 'red', 'green']" in msg
    assert "student classes (train_dataloader.dataset): ['red', 'green', 'blue']" in msg
    assert "the student's 'red' gets the teacher's 'blue'" in msg
    assert not any(n.endswith('.pth') for n in os.listdir(work))  # refused before training


def test_a_teacher_of_other_classes_is_refused(data, tmp_path):
    t_cfg, ckpt = _teacher(tmp_path, dict(dataset_meta=dict(classes=('cat', 'green', 'blue'))))
    cfg = _kd_config(tmp_path, data, t_cfg, ckpt)
    with pytest.raises(TeacherClassesError, match=r"only in the teacher: \['cat'\], only in the "
                                                  r"student: \['red'\]"):
        _train([cfg, '--work-dir', str(tmp_path / 'work')])


def test_same_classes_train_and_missing_classes_are_reported_unchecked(data, tmp_path, capfd):
    t_cfg, ckpt = _teacher(tmp_path, dict(dataset_meta=dict(classes=CLASSES)))
    cfg = _kd_config(tmp_path, data, t_cfg, ckpt)
    _train([cfg, '--work-dir', str(tmp_path / 'same')])
    assert osp.isfile(osp.join(tmp_path, 'same', 'iter_1.pth'))
    capfd.readouterr()
    t_cfg, ckpt = _teacher(tmp_path, {})  # a checkpoint that names no classes
    _train([_kd_config(tmp_path, data, t_cfg, ckpt), '--work-dir', str(tmp_path / 'none')])
    out = capfd.readouterr()
    assert (f"the teacher checkpoint {ckpt!r} names no classes (meta['dataset_meta']"
            "['classes']), so whether the teacher orders its classes as the student does could "
            'not be checked') in out.out + out.err
    assert osp.isfile(osp.join(tmp_path, 'none', 'iter_1.pth'))


# ---- a teacher URL: no network vs a damaged download -----------------------------------------

def test_an_unreachable_teacher_url_says_download_it_first(data, tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))  # no cached copy
    t_cfg, _ = _teacher(tmp_path, {})
    url = 'http://127.0.0.1:9/teacher_unreachable.pth'  # the discard port: connection refused
    cfg = _kd_config(tmp_path, data, t_cfg, url)
    with pytest.raises(RuntimeError) as err:
        _train([cfg, '--work-dir', str(tmp_path / 'work')])
    msg = str(err.value)
    assert f'model.teacher_ckpt {url!r} could not be downloaded (URLError' in msg
    assert f'`wget {url}`' in msg and 'set model.teacher_ckpt to its local path' in msg
    assert 'complete' not in msg  # not about a file: none was written


def test_a_damaged_download_is_named_with_its_cached_copy(data, tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    t_cfg, ckpt = _teacher(tmp_path, {})
    served = tmp_path / 'served'
    served.mkdir()
    whole = open(ckpt, 'rb').read()
    (served / 'teacher_cut.pth').write_bytes(whole[:len(whole) // 2])
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f'http://127.0.0.1:{server.server_address[1]}/teacher_cut.pth'
        cfg = _kd_config(tmp_path, data, t_cfg, url)
        with pytest.raises(RuntimeError) as err:
            _train([cfg, '--work-dir', str(tmp_path / 'work')])
    finally:
        server.shutdown()
        server.server_close()
    cached = str(tmp_path / 'torch_home' / 'hub' / 'checkpoints' / 'teacher_cut.pth')  # torch's
    msg = str(err.value)
    assert f'was downloaded to {cached}, but that file could not be read' in msg
    assert 'could not be downloaded' not in msg
    assert osp.getsize(cached) == len(whole) // 2  # the message names the file that is cut


# ---- disk space -----------------------------------------------------------------------------

_Usage = namedtuple('_Usage', 'total used free')


def _fake_free(monkeypatch, free):
    monkeypatch.setattr(shutil, 'disk_usage', lambda path: _Usage(10 * free + 1, 0, int(free)))


def test_a_disk_without_room_for_a_checkpoint_is_refused_before_training(data, tmp_path,
                                                                         monkeypatch, capfd):
    t_cfg, ckpt = _teacher(tmp_path, {})
    cfg = _kd_config(tmp_path, data, t_cfg, ckpt)
    # the reference: the size of a real checkpoint of this run (weights + SGD momentum)
    _train([cfg, '--work-dir', str(tmp_path / 'reference')])
    size = osp.getsize(osp.join(tmp_path, 'reference', 'iter_1.pth'))
    work = str(tmp_path / 'work')
    _fake_free(monkeypatch, 0.4 * size)
    with pytest.raises(DiskSpaceError) as err:
        _train([cfg, '--work-dir', work])
    assert err.value.errno == 28  # ENOSPC
    assert f'{work} has {int(0.4 * size) / 2**20:.1f} MiB free' in str(err.value)
    assert '--work-dir DIR' in str(err.value)
    assert not osp.exists(osp.join(work, 'iter_1.pth'))
    # room for one checkpoint, not two: a warning, and the run trains
    capfd.readouterr()
    _fake_free(monkeypatch, 1.2 * size)
    _train([cfg, '--work-dir', work])
    out = capfd.readouterr()
    assert 'room for one but not two' in out.out + out.err
    assert osp.isfile(osp.join(work, 'iter_1.pth'))
    # room for two: silent
    capfd.readouterr()
    _fake_free(monkeypatch, 2.5 * size)
    _train([cfg, '--work-dir', str(tmp_path / 'roomy')])
    out = capfd.readouterr()
    assert 'MiB free' not in out.out + out.err
