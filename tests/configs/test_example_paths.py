"""Paths a new user follows: every local checkpoint a config or a documented command names is the
file that the documented training command writes; every training config saves atomically.

The expected file is derived from the config that trains it (its work dir ``work_dirs/<config
name>``, its ``CheckpointHook`` template, and its last step: ``max_iters`` or ``max_epochs``),
never written out here.
"""
import functools
import glob
import os.path as osp
import re
from typing import List, Tuple

import pytest
from mmengine.config import Config

from _helpers import ROOT

CONFIG_FILES = sorted(osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs', '**',
                                                                       '*.py'), recursive=True)
                      if '_base_' not in osp.relpath(p, ROOT).split(osp.sep))
CONFIG_BY_NAME = {osp.splitext(osp.basename(p))[0]: p for p in CONFIG_FILES}
DOC_FILES = ['tools/test.py', 'tools/calibrate.py', 'tools/train.py', 'README.md',
             *sorted(osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'docs', '*.md'))),
             *sorted(osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs', '**',
                                                                      'README.md'),
                                                             recursive=True))]
# `python tools/test.py CONFIG CKPT`, `tools/calibrate.py CONFIG CKPT`, `dist_test.sh CONFIG CKPT`
COMMAND = re.compile(r'tools/(?:test\.py|calibrate\.py|dist_test\.sh)\s+(?:\\\s+)?(\S+\.py)'
                     r'\s+(?:\\\s+)?(work_dirs/\S+\.pth)')


@functools.lru_cache(maxsize=None)
def _load(rel: str) -> Config:
    return Config.fromfile(osp.join(ROOT, rel), import_custom_modules=False)


def _written_by_training(rel: str) -> str:
    """The last checkpoint that ``python tools/train.py <rel>`` writes (relative to the repo)."""
    cfg = _load(rel)
    work_dir = cfg.get('work_dir', None) or osp.join(
        'work_dirs', osp.splitext(osp.basename(rel))[0])
    hook = cfg.default_hooks.checkpoint
    by_epoch = hook.get('by_epoch', True)
    last = cfg.train_cfg.max_epochs if by_epoch else cfg.train_cfg.max_iters
    template = hook.get('filename_tmpl', None) or ('epoch_{}.pth' if by_epoch else 'iter_{}.pth')
    # the hook writes the final step when the interval divides it or save_last is on (default)
    assert hook.get('save_last', True) or last % hook.interval == 0, rel
    return osp.normpath(osp.join(work_dir, template.format(last)))


def _local_teacher_ckpts() -> List[Tuple[str, str, str]]:
    found = []
    for rel in CONFIG_FILES:
        model = _load(rel).model
        ckpt = model.get('teacher_ckpt', None)
        if ckpt and '://' not in ckpt:
            found.append((rel, model.teacher_config, ckpt))
    return found


def _documented_commands() -> List[Tuple[str, str, str]]:
    found = []
    for doc in DOC_FILES:
        with open(osp.join(ROOT, doc)) as f:
            for config, ckpt in COMMAND.findall(f.read()):
                found.append((doc, config, ckpt))
    return found


def test_the_scan_finds_the_shipped_examples():
    """Premise: the demo KD configs and the tools' docstrings are among what is checked."""
    configs = {rel for rel, _, _ in _local_teacher_ckpts()}
    assert {'configs/demo/kd_gfl_r18w16_r18w32_digits.py',
            'configs/demo/kd-cal_gfl_r18w16_r18w32_digits.py'} <= configs
    docs = {doc for doc, _, _ in _documented_commands()}
    assert {'tools/test.py', 'tools/calibrate.py', 'README.md', 'docs/own_teacher.md'} <= docs


@pytest.mark.parametrize('rel,teacher_config,teacher_ckpt', _local_teacher_ckpts())
def test_teacher_ckpt_is_what_training_the_teacher_writes(rel, teacher_config, teacher_ckpt):
    assert osp.isfile(osp.join(ROOT, teacher_config)), (rel, teacher_config)
    assert osp.normpath(teacher_ckpt) == _written_by_training(teacher_config), rel


@pytest.mark.parametrize('doc,config,ckpt', _documented_commands())
def test_documented_checkpoint_is_what_training_writes(doc, config, ckpt):
    assert config in CONFIG_FILES, (doc, config)
    name = osp.normpath(ckpt).split(osp.sep)[1]
    assert name in CONFIG_BY_NAME, f'{doc}: {ckpt} is not in the work dir of a shipped config'
    assert osp.normpath(ckpt) == _written_by_training(CONFIG_BY_NAME[name]), doc


@pytest.mark.parametrize('rel', CONFIG_FILES)
def test_every_config_saves_checkpoints_atomically(rel):
    """Also under MMDetection's own tools/train.py: the config selects the hook and imports it."""
    cfg = _load(rel)
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook', rel
    assert 'mmkdcal' in cfg.custom_imports.imports, rel
