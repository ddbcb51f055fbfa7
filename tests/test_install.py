"""``pip install`` ships configs/ inside the package; ``mmkdcal::`` works outside the checkout.

Both install modes, from a copy of the source tree, run from a folder outside any checkout:

- non-editable (``pip install --target``): ``mmkdcal/.mim/configs`` is a copy; a user config
  there inheriting ``mmkdcal::`` (its teacher also named by ``mmkdcal::``) builds and trains two
  iterations with the installed ``tools/train.py``;
- editable (PEP 660, in a virtual environment): ``mmkdcal/.mim/configs`` is a symlink to the
  checkout's ``configs/``, so an edit there is what the next parse sees.
"""
import os
import os.path as osp
import shutil
import subprocess
import sys

import torch

from _helpers import ROOT

USER_CONFIG = '''
_base_ = 'mmkdcal::demo/kd-cal_gfl_r18w16_r18w32_digits.py'

data_root = {data!r}
build = dict(n_train=8, n_calib=4, n_val=4)
small = dict(batch_size=2, num_workers=0, persistent_workers=False)
model = dict(teacher_config='mmkdcal::demo/gfl_r18w32_digits.py', teacher_ckpt={ckpt!r},
             test_cfg=dict(score_thr=0.0))  # an untrained student scores below the default
train_dataloader = dict(**small, dataset=dict(data_root=data_root, build_cfg=build))
val_dataloader = dict(**small, dataset=dict(data_root=data_root, build_cfg=build))
test_dataloader = val_dataloader
val_evaluator = [dict(type='CocoMetric', ann_file=data_root + 'annotations/val.json',
                      metric='bbox')]
test_evaluator = val_evaluator
custom_hooks = [dict(type='TeacherCalibrationHook', fit_on='anchors', dataloader=dict(
    **small, sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='DigitsDetDataset', data_root=data_root, build_cfg=build,
                 ann_file='annotations/calib.json', data_prefix=dict(img='calib/'),
                 test_mode=True, pipeline={{{{_base_.test_pipeline}}}})))]
train_cfg = dict(max_iters=2, val_interval=2)
default_hooks = dict(logger=dict(interval=1))
'''

PROBE = ('import mmkdcal; from mmengine.config import Config; '
         'print(mmkdcal.__file__); '
         "print(Config._get_cfg_path('mmkdcal::demo/gfl_r18w32_digits.py', 'x.py')[0]); "
         "cfg = Config.fromfile('user.py'); print(cfg.model.type, cfg.get('marker'))")


def _copy_source(dst):
    """The files of the checkout that git tracks or would track (no data, no work dirs)."""
    try:
        files = subprocess.run(['git', 'ls-files', '-co', '--exclude-standard', '-z'], cwd=ROOT,
                               check=True, capture_output=True).stdout.decode().split('\0')
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (e.g. an sdist)
        shutil.copytree(ROOT, dst, ignore=shutil.ignore_patterns(
            'data', 'work_dirs', 'build', '*.egg-info', '.mim', '__pycache__'))
        return dst
    for rel in filter(None, files):
        if osp.isfile(osp.join(ROOT, rel)):
            os.makedirs(osp.dirname(osp.join(dst, rel)), exist_ok=True)
            shutil.copy2(osp.join(ROOT, rel), osp.join(dst, rel))
    return dst


def _run(cmd, cwd, env, timeout=600):
    full = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    full.update(OMP_NUM_THREADS='1', **env)
    proc = subprocess.run(cmd, cwd=cwd, env=full, timeout=timeout, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise AssertionError(f'{" ".join(cmd)} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-6000:]}')
    return proc.stdout


def _user_dir(tmp_path):
    """A user's folder: a random demo teacher checkpoint and a config inheriting mmkdcal::."""
    from mmengine.config import Config
    from mmdet.registry import MODELS
    user = tmp_path / 'user'
    user.mkdir()
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(
        osp.join(ROOT, 'configs/demo/gfl_r18w32_digits.py')).model)
    teacher.init_weights()
    torch.save({'state_dict': teacher.state_dict()}, str(user / 'teacher.pth'))
    (user / 'user.py').write_text(USER_CONFIG.format(data=str(tmp_path / 'digits') + '/',
                                                     ckpt=str(user / 'teacher.pth')))
    return user


def test_wheel_install_ships_configs_and_trains_from_outside(tmp_path):
    src = _copy_source(str(tmp_path / 'src'))
    site = str(tmp_path / 'site')
    _run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--no-build-isolation',
          '--target', site, src], cwd=str(tmp_path), env={})
    mim = osp.join(site, 'mmkdcal', '.mim')
    shipped = osp.join(mim, 'configs', 'demo', 'gfl_r18w32_digits.py')
    assert osp.isfile(shipped) and not osp.islink(osp.join(mim, 'configs'))
    with open(shipped) as a, open(osp.join(ROOT, 'configs/demo/gfl_r18w32_digits.py')) as b:
        assert a.read() == b.read()
    assert osp.isfile(osp.join(mim, 'model-index.yml'))
    assert osp.isfile(osp.join(mim, 'tools', 'train.py'))
    assert not osp.exists(osp.join(src, 'mmkdcal', '.mim'))  # the build left the tree alone

    user = _user_dir(tmp_path)
    out = _run([sys.executable, '-c', PROBE], cwd=str(user), env=dict(PYTHONPATH=site))
    module, resolved, parsed = out.strip().splitlines()[-3:]
    assert module == osp.join(site, 'mmkdcal', '__init__.py')
    assert resolved == shipped
    assert parsed == 'DistillGFL None'

    work = str(tmp_path / 'work')
    out = _run([sys.executable, osp.join(mim, 'tools', 'train.py'), 'user.py', '--work-dir',
                work], cwd=str(user), env=dict(PYTHONPATH=site), timeout=900)
    assert 'Teacher calibration: temperature' in out
    assert 'Iter(train) [2/2]' in out and 'coco/bbox_mAP' in out
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
    assert not osp.exists(osp.join(user, 'data'))  # nothing fell back to the base's data_root


def test_editable_install_links_configs(tmp_path):
    src = _copy_source(str(tmp_path / 'src'))
    venv = tmp_path / 'venv'
    _run([sys.executable, '-m', 'venv', '--without-pip', '--system-site-packages', str(venv)],
         cwd=str(tmp_path), env={})
    py = str(venv / 'bin' / 'python')
    _run([py, '-m', 'pip', 'install', '-q', '--no-deps', '--no-build-isolation', '--use-pep517',
          '-e', src], cwd=str(tmp_path), env={})
    link = osp.join(src, 'mmkdcal', '.mim', 'configs')
    assert osp.islink(link) and osp.realpath(link) == osp.realpath(osp.join(src, 'configs'))

    user = tmp_path / 'user'
    user.mkdir()
    (user / 'user.py').write_text("_base_ = 'mmkdcal::demo/gfl_r18w32_digits.py'\n")
    with open(osp.join(src, 'configs/demo/gfl_r18w32_digits.py'), 'a') as f:
        f.write('marker = 42\n')  # an edit in the checkout...
    out = _run([py, '-c', PROBE.replace('DistillSingleStageDetector', '')], cwd=str(user),
               env={})
    module, resolved, parsed = out.strip().splitlines()[-3:]
    assert module == osp.join(src, 'mmkdcal', '__init__.py')
    assert resolved == osp.join(src, 'configs', 'demo', 'gfl_r18w32_digits.py')
    assert parsed == 'GFL 42'  # ...is what the next parse sees
