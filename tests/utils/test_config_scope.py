"""``mmkdcal::`` config paths in a checkout: bases, teacher configs, tool arguments, layouts."""
import argparse
import os
import os.path as osp
import re

import pytest
from mmengine.config import Config

import mmkdcal  # noqa: F401  (registers the scope)
from mmkdcal.models.distillers import load_teacher_config
from mmkdcal.utils.config_scope import (package_configs_dir, register_config_scope,
                                        resolve_config_path)

from _helpers import ROOT

KD_CAL = 'demo/kd-cal_gfl_r18w16_r18w32_digits.py'


def _strip_scope(x):
    if isinstance(x, dict):
        return {k: _strip_scope(v) for k, v in x.items() if k != '_scope_'}
    if isinstance(x, (list, tuple)):
        return type(x)(_strip_scope(v) for v in x)
    return x


def test_resolve_in_a_checkout_and_errors():
    assert resolve_config_path(f'mmkdcal::{KD_CAL}') == osp.join(ROOT, 'configs', KD_CAL)
    assert resolve_config_path('configs/x.py') == 'configs/x.py'
    mmdet_path = resolve_config_path('mmdet::gfl/gfl_r50_fpn_1x_coco.py')
    assert mmdet_path.endswith(osp.join('mmdet', '.mim', 'configs', 'gfl',
                                        'gfl_r50_fpn_1x_coco.py'))
    # the message lists what the folder holds (the first files, sorted)
    first = sorted(f for f in os.listdir(osp.join(ROOT, 'configs', 'demo'))
                   if f.endswith('.py'))[0]
    with pytest.raises(FileNotFoundError, match=rf"demo/ holds \['{re.escape(first)}'"):
        resolve_config_path('mmkdcal::demo/nope.py')
    with pytest.raises(ValueError, match='<scope>::'):
        resolve_config_path('mmkdcal::')


def test_scoped_base_equals_the_file_and_builds_in_mmdet_scope(tmp_path):
    (tmp_path / 'scoped.py').write_text(f"_base_ = 'mmkdcal::{KD_CAL}'\n"
                                        "model = dict(teacher_ckpt='t.pth')\n")
    (tmp_path / 'plain.py').write_text(f"_base_ = '{osp.join(ROOT, 'configs', KD_CAL)}'\n"
                                       "model = dict(teacher_ckpt='t.pth')\n")
    scoped = Config.fromfile(str(tmp_path / 'scoped.py'))
    plain = Config.fromfile(str(tmp_path / 'plain.py'))
    assert _strip_scope(scoped.to_dict()) == _strip_scope(plain.to_dict())
    assert scoped.model.type == 'DistillGFL'
    # dicts of the base are pinned to mmdet's registries, as those of an mmdet:: base are
    assert scoped.model._scope_ == 'mmdet' and scoped.custom_hooks[0]._scope_ == 'mmdet'
    assert scoped.default_scope == 'mmdet'


def test_teacher_config_and_tool_argument_accept_the_scope():
    direct = Config.fromfile(osp.join(ROOT, 'configs/demo/gfl_r18w32_digits.py')).model
    assert load_teacher_config('mmkdcal::demo/gfl_r18w32_digits.py') == direct
    with pytest.raises(FileNotFoundError, match='no demo/teacher.py'):
        load_teacher_config('mmkdcal::demo/teacher.py')
    from tools.harness.launch import load_config
    args = argparse.Namespace(config='mmkdcal::demo/gfl_r18w32_digits.py', cfg_options=None,
                              launcher='none', work_dir=None, local_rank=0)
    cfg = load_config(args)
    assert cfg.model == direct and cfg.work_dir == './work_dirs/gfl_r18w32_digits'


def test_registration_is_idempotent_and_leaves_other_scopes_to_mmengine():
    from mmengine.config.utils import MODULE2PACKAGE
    register_config_scope()
    register_config_scope()
    wrapper = Config._get_cfg_path
    original = wrapper.__wrapped__
    assert not getattr(original, '_mmkdcal_scope', False)
    assert MODULE2PACKAGE['mmkdcal'] == 'mmkdcal'
    path = 'mmdet::gfl/gfl_r50_fpn_1x_coco.py'
    assert wrapper(path, 'x.py') == original(path, 'x.py')
    assert wrapper('../a.py', '/c/d/x.py') == original('../a.py', '/c/d/x.py')


def test_layouts_checkout_shipped_and_missing(tmp_path):
    checkout = tmp_path / 'src'
    (checkout / 'mmkdcal').mkdir(parents=True)
    (checkout / 'configs').mkdir()
    (checkout / 'setup.py').write_text('')
    assert package_configs_dir(str(checkout / 'mmkdcal')) == str(checkout / 'configs')
    site = tmp_path / 'site'
    (site / 'mmkdcal' / '.mim' / 'configs').mkdir(parents=True)
    assert package_configs_dir(str(site / 'mmkdcal')) == str(site / 'mmkdcal/.mim/configs')
    (tmp_path / 'bare' / 'mmkdcal').mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match='Reinstall mmkdcal'):
        package_configs_dir(str(tmp_path / 'bare' / 'mmkdcal'))
