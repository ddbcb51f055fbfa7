"""``tools/benchmark.py plan`` on the real COCO folders (nothing runs), and config discovery."""
import glob
import importlib.util
import os
import os.path as osp
import re
import shlex

import pytest

from tools.harness.matrix import plan as bplan
from tools.harness.matrix.plan import Launcher, discover_configs, make_plan, train_command

from _helpers import ROOT


def _tool(name):
    spec = importlib.util.spec_from_file_location(f'tools_{name}',
                                                  osp.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench, test_tool, train_tool = _tool('benchmark'), _tool('test'), _tool('train')

FAMILIES = ('gfl', 'retinanet', 'atss', 'fcos', 'faster_rcnn')
COCO_CONFIGS = sorted(p for f in FAMILIES for p in glob.glob(f'configs/{f}/*.py', root_dir=ROOT))


def test_slurm_plan_for_the_coco_folders_prints_every_command(capsys):
    assert len(COCO_CONFIGS) >= 21  # the sets of these folders (every one 1x)
    folders = [f'configs/{f}' for f in FAMILIES]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        assert bench.main(['plan', *folders, '--launcher', 'slurm', '--partition', 'gpu',
                           '--seeds', '0', '1', '--train-args', '--amp --auto-scale-lr']) == 0
    out = capsys.readouterr().out.splitlines()
    train = [shlex.split(ln) for ln in out if ln.startswith('GPUS=') and 'slurm_train' in ln]
    test = [shlex.split(ln) for ln in out if ln.startswith('GPUS=') and 'slurm_test' in ln]
    assert len(train) == len(test) == 2 * len(COCO_CONFIGS)
    env = ['GPUS=8', 'GPUS_PER_NODE=8', 'CPUS_PER_TASK=5']
    seen = set()
    for tr, te in zip(train, test):
        # GPUS=.. tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [PY_ARGS]
        assert tr[:5] == env + ['bash', 'tools/slurm_train.sh'] and tr[5] == 'gpu'
        job, config, work_dir, py_args = tr[6], tr[7], tr[8], tr[9:]
        name = osp.splitext(osp.basename(config))[0]
        seed = int(re.fullmatch(rf'{re.escape(name)}_seed(\d)', job).group(1))
        seen.add((config, seed))
        assert work_dir == f'work_dirs/benchmark/{name}/seed{seed}'
        # what MMDetection's slurm_train.sh runs: tools/train.py CONFIG --work-dir=W ... PY_ARGS
        args = train_tool.parse_args([config, f'--work-dir={work_dir}', '--launcher=slurm',
                                      *py_args])
        assert args.cfg_options == {'randomness.seed': seed}
        assert args.amp and args.auto_scale_lr and args.resume is None
        # GPUS=.. tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [PY_ARGS]
        assert te[:5] == env + ['bash', 'tools/slurm_test.sh'] and te[5] == 'gpu'
        assert te[6:9] == [f'{name}_seed{seed}_test', config, f'{work_dir}/epoch_12.pth']
        args = test_tool.parse_args([config, te[8], '--launcher=slurm', *te[9:]])
        assert args.work_dir == f'{work_dir}/test'
        assert args.metrics_out == f'{work_dir}/test_metrics.json'
        assert args.cfg_options == {'randomness.seed': seed}
    assert seen == {(c, s) for c in COCO_CONFIGS for s in (0, 1)}


def test_local_commands_and_the_config_they_give(monkeypatch):
    from tools.harness.launch import load_config
    monkeypatch.chdir(ROOT)  # the commands run from the repository root
    entries = discover_configs(['configs/gfl/kd-cal_gfl_r50_r101_1x_coco.py',
                                'configs/faster_rcnn/faster-rcnn_r18_fpn_1x_coco.py'])
    runs = make_plan(entries, 'work_dirs/bench', seeds=(3,), cfg_options=['data_root=/coco/'])
    for run in runs:
        wd = f'work_dirs/bench/{run.name}/seed3'
        opts = ['--cfg-options', 'data_root=/coco/', 'randomness.seed=3']
        # tools/dist_train.sh CONFIG GPUS [train.py args]
        assert train_command(run, Launcher('dist', gpus=4)).argv == [
            'bash', 'tools/dist_train.sh', run.config, '4', '--work-dir', wd, *opts]
        assert train_command(run, Launcher('dist', gpus=4), resume_from=f'{wd}/epoch_5.pth').argv \
            == ['bash', 'tools/dist_train.sh', run.config, '4', '--work-dir', wd, '--resume',
                f'{wd}/epoch_5.pth', *opts]
        # tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args]
        assert bplan.test_command(run, Launcher('dist', gpus=4)).argv[:5] == [
            'bash', 'tools/dist_test.sh', run.config, f'{wd}/epoch_12.pth', '4']
        argv = train_command(run, Launcher('python')).argv
        assert argv[:3] == ['python', 'tools/train.py', run.config]
        cfg = load_config(train_tool.parse_args(argv[2:]))
        assert cfg.work_dir == wd and cfg.randomness.seed == 3 and cfg.data_root == '/coco/'
        assert cfg.train_cfg.max_epochs == 12
    assert runs[0].is_distiller and runs[0].teacher_temperature is None  # fitted by the hook
    assert not runs[1].is_distiller


def test_discovery_folders_globs_and_list_files(tmp_path):
    names = [osp.basename(e.path) for e in discover_configs([osp.join(ROOT, 'configs/atss')])]
    # a folder: its configs, sorted (READMEs and other files left out)
    assert names == sorted(f for f in os.listdir(osp.join(ROOT, 'configs/atss'))
                           if f.endswith('.py'))
    assert {'kd-cal_atss_r50_r101_1x_coco.py', 'kd_atss_r50_r101_1x_coco.py'} <= set(names)
    found = discover_configs([osp.join(ROOT, 'configs/*/kd-cal_*.py')])
    assert sorted(e.path for e in found) == sorted(
        osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs/*/kd-cal_*.py')))
    assert len(found) >= 7 and all('/kd-cal_' in e.path for e in found)
    lst = tmp_path / 'set.txt'
    lst.write_text('# COCO subset\n'
                   f'{ROOT}/configs/gfl/kd_gfl_r50_r101_1x_coco.py  model.teacher_ckpt=/t.pth\n\n'
                   f'{ROOT}/configs/retinanet/kd_retinanet_r50_r101_1x_coco.py  # default\n')
    entries = discover_configs([str(lst)])
    assert [(e.path, e.options) for e in entries] == [
        ('configs/gfl/kd_gfl_r50_r101_1x_coco.py', ['model.teacher_ckpt=/t.pth']),
        ('configs/retinanet/kd_retinanet_r50_r101_1x_coco.py', [])]
    # the same config twice is kept once; two different configs of one name would collide
    assert len(discover_configs([osp.join(ROOT, 'configs/atss')] * 2)) == len(names)
    other = tmp_path / 'kd_atss_r50_r101_1x_coco.py'
    other.write_text("_base_ = '" + osp.join(ROOT, 'configs/atss/kd_atss_r50_r101_1x_coco.py')
                     + "'\n")
    with pytest.raises(ValueError, match='two configs are named'):
        discover_configs([osp.join(ROOT, 'configs/atss'), str(other)])
    lst.write_text(f'{ROOT}/configs/gfl/kd_gfl_r50_r101_1x_coco.py --amp\n')
    with pytest.raises(ValueError, match=r'set.txt:1: .*not key=value'):
        discover_configs([str(lst)])
    lst.write_text('configs/gfl/missing.py\n')
    with pytest.raises(FileNotFoundError, match='set.txt:1: config'):
        discover_configs([str(lst)])
    with pytest.raises(ValueError, match='matches no config'):
        discover_configs([osp.join(ROOT, 'configs/nothing_*.py')])


def test_bad_launcher_settings_fail_early():
    with pytest.raises(ValueError, match='--partition'):
        Launcher('slurm')
    with pytest.raises(ValueError, match='--work-dir is set by the benchmark'):
        Launcher('python', train_args=['--work-dir', 'x'])
    with pytest.raises(ValueError, match='--gpus'):
        Launcher('dist', gpus=0)
    with pytest.raises(ValueError, match='launcher must be one of'):
        Launcher('mpi')
