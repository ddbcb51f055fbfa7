"""``tools/train.py --resume [PATH]``: which checkpoint it picks, what it puts into the config."""
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmkdcal.utils.checkpoint import CheckpointReadError
from mmkdcal.utils.checkpoint_files import ResumeError
from tools.harness.work_dir import configure_resume, resolve_resume


def _save(path, step):
    torch.save({'state_dict': {'w': torch.full((64, ), float(step))}, 'meta': {'iter': step}},
               path)
    return str(path)


def _point(work, path):
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(str(path))


def _cfg(work, **hook):
    return Config(dict(work_dir=str(work), resume=False, load_from='pretrained.pth',
                       default_hooks=dict(checkpoint=dict(type='AtomicCheckpointHook',
                                                          by_epoch=False, **hook))))


def test_no_checkpoint_is_refused_and_the_config_left_alone(tmp_path):
    """``--resume`` asks to continue a run: a work dir without one (misspelt, or empty) is
    refused rather than silently starting a new run."""
    for work in (tmp_path / 'missing', tmp_path):
        cfg = _cfg(work)
        with pytest.raises(ResumeError, match='there is no run to continue'):
            configure_resume(cfg, 'auto')
        assert cfg.resume is False and cfg.load_from == 'pretrained.pth'
    assert not (tmp_path / 'missing').exists()


def test_auto_resume_sets_the_newest_checkpoint(tmp_path):
    for step in (3, 12):
        torch.save({'meta': {'iter': step}}, str(tmp_path / f'iter_{step}.pth'))
    cfg = _cfg(tmp_path)
    assert configure_resume(cfg, 'auto') == str(tmp_path / 'iter_12.pth')
    assert cfg.resume is True and cfg.load_from == str(tmp_path / 'iter_12.pth')


def test_checkpoints_under_the_hooks_out_dir(tmp_path):
    out = tmp_path / 'out' / 'work'
    out.mkdir(parents=True)
    torch.save({}, str(out / 'iter_5.pth'))
    cfg = _cfg(tmp_path / 'work', out_dir=str(tmp_path / 'out'))
    assert configure_resume(cfg, 'auto') == str(out / 'iter_5.pth')


def test_explicit_path_must_exist_and_be_complete(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        configure_resume(_cfg(tmp_path), str(tmp_path / 'nope.pth'))
    path = str(tmp_path / 'iter_2.pth')
    torch.save({'w': torch.ones(256)}, path)
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 3])
    with pytest.raises(CheckpointReadError, match=osp.basename(path)):
        configure_resume(_cfg(tmp_path), path)


def test_without_last_checkpoint_the_newest_by_step_wins(tmp_path):
    for step in (2, 4, 10):
        _save(tmp_path / f'iter_{step}.pth', step)
    (tmp_path / 'epoch_99.pth').write_bytes(b'other kind')
    # numeric order: iter_10 is newer than iter_4 (a string sort would pick iter_4)
    assert resolve_resume(str(tmp_path), 'iter_{}.pth') == str(tmp_path / 'iter_10.pth')
    assert resolve_resume(str(tmp_path), 'epoch_{}.pth') == str(tmp_path / 'epoch_99.pth')


def test_last_checkpoint_is_used_when_it_names_the_newest(tmp_path):
    for step in (2, 4):
        _save(tmp_path / f'iter_{step}.pth', step)
    _point(tmp_path, tmp_path / 'iter_4.pth')
    assert resolve_resume(str(tmp_path), 'iter_{}.pth') == str(tmp_path / 'iter_4.pth')


def test_last_checkpoint_older_than_a_checkpoint_is_refused(tmp_path):
    for step in (2, 4):
        _save(tmp_path / f'iter_{step}.pth', step)
    _point(tmp_path, tmp_path / 'iter_2.pth')
    with pytest.raises(ResumeError) as err:
        resolve_resume(str(tmp_path), 'iter_{}.pth')
    msg = str(err.value)
    assert 'iter_2.pth' in msg and f'--resume {tmp_path / "iter_4.pth"}' in msg


def test_last_checkpoint_naming_a_missing_file(tmp_path):
    _point(tmp_path, tmp_path / 'iter_8.pth')
    with pytest.raises(ResumeError, match='iter_8.pth, which does not exist'):
        resolve_resume(str(tmp_path), 'iter_{}.pth')
    _save(tmp_path / 'iter_6.pth', 6)
    assert resolve_resume(str(tmp_path), 'iter_{}.pth') == str(tmp_path / 'iter_6.pth')
    # an empty pointer (a save killed while writing it) counts as missing
    (tmp_path / 'last_checkpoint').write_text('')
    assert resolve_resume(str(tmp_path), 'iter_{}.pth') == str(tmp_path / 'iter_6.pth')


def test_nothing_to_resume_is_a_new_run(tmp_path):
    assert resolve_resume(str(tmp_path), 'iter_{}.pth') is None
    assert resolve_resume(str(tmp_path / 'not_yet'), 'iter_{}.pth') is None


def test_checkpoints_in_another_out_dir(tmp_path):
    work, out = tmp_path / 'work', tmp_path / 'out' / 'work'
    os.makedirs(work)
    os.makedirs(out)
    _save(out / 'iter_3.pth', 3)
    assert resolve_resume(str(work), 'iter_{}.pth', str(out)) == str(out / 'iter_3.pth')
