"""``configure_resume``: what ``tools/train.py --resume [PATH]`` puts into the config."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmkdcal.utils.checkpoint import CheckpointReadError
from mmkdcal.utils.checkpoint_files import ResumeError
from mmkdcal.utils.launch import configure_resume


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
