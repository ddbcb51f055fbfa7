"""tools/slurm_{train,test}.sh and tools/dist_{train,test}.sh: the command lines they produce
(fake srun / python on PATH record their arguments), and a real CPU run through srun's protocol.
"""
import importlib.util
import os
import os.path as osp
import socket
import stat
import subprocess
import sys

import pytest

from _helpers import ROOT, dump_config, gfl_model, train_config, write_coco

TOOLS = osp.join(ROOT, 'tools')

RECORDER = '''#!/bin/sh
# records its arguments (one per line) and PYTHONPATH, then succeeds
printf '%s\\n' "$@" > "$RECORD_DIR/$(basename "$0").args"
printf '%s' "$PYTHONPATH" > "$RECORD_DIR/$(basename "$0").pythonpath"
'''


def _fake_bin(tmp_path, names, text=RECORDER):
    folder = tmp_path / 'bin'
    folder.mkdir(exist_ok=True)
    for name in names:
        path = folder / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return folder


def _script(tmp_path, script, args, env=None, fakes=('srun', 'python')):
    folder = _fake_bin(tmp_path, fakes)
    full = {k: v for k, v in os.environ.items()
            if k not in ('GPUS', 'GPUS_PER_NODE', 'CPUS_PER_TASK', 'SRUN_ARGS', 'PYTHON', 'PORT',
                         'NNODES', 'NODE_RANK', 'MASTER_ADDR', 'PYTHONPATH')}
    full.update(PATH=f'{folder}{os.pathsep}{os.environ["PATH"]}', RECORD_DIR=str(tmp_path),
                **(env or {}))
    return subprocess.run(['bash', osp.join(TOOLS, script), *args], env=full, text=True,
                          capture_output=True, timeout=60)


def _recorded(tmp_path, name):
    return (tmp_path / f'{name}.args').read_text().splitlines()


def _tool_args(name, argv):
    """Parse ``argv`` with the real argument parser of tools/<name>."""
    spec = importlib.util.spec_from_file_location(f'_tool_{name[:-3]}', osp.join(TOOLS, name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.parse_args(argv)


def test_slurm_train_command_line(tmp_path):
    proc = _script(tmp_path, 'slurm_train.sh',
                   ['dev', 'kd job', 'configs/x.py', 'work dirs/x', '--cfg-options',
                    'model.teacher_temperature=[1, 2]', '--amp'],
                   env=dict(GPUS='16', GPUS_PER_NODE='8', CPUS_PER_TASK='4',
                            SRUN_ARGS='--quotatype=auto --time=1:00:00'))
    assert proc.returncode == 0, proc.stderr
    argv = _recorded(tmp_path, 'srun')
    assert argv == ['-p', 'dev', '--job-name=kd job', '--gres=gpu:8', '--ntasks=16',
                    '--ntasks-per-node=8', '--cpus-per-task=4', '--kill-on-bad-exit=1',
                    '--quotatype=auto', '--time=1:00:00',
                    'python', '-u', f'{TOOLS}/train.py', 'configs/x.py', '--work-dir=work dirs/x',
                    '--launcher=slurm', '--cfg-options', 'model.teacher_temperature=[1, 2]',
                    '--amp']
    assert (tmp_path / 'srun.pythonpath').read_text() == f'{TOOLS}/..'
    # what srun runs is a command line tools/train.py accepts
    args = _tool_args('train.py', argv[argv.index('-u') + 2:])
    assert (args.config, args.work_dir, args.launcher, args.amp) == (
        'configs/x.py', 'work dirs/x', 'slurm', True)
    assert args.cfg_options == {'model.teacher_temperature': [1, 2]}


def test_slurm_test_command_line_and_defaults(tmp_path):
    proc = _script(tmp_path, 'slurm_test.sh', ['p1', 'j', 'c.py', 'ckpt.pth', '--out', 'r.pkl'],
                   env=dict(PYTHONPATH='/elsewhere'))
    assert proc.returncode == 0, proc.stderr
    argv = _recorded(tmp_path, 'srun')
    assert argv == ['-p', 'p1', '--job-name=j', '--gres=gpu:8', '--ntasks=8',
                    '--ntasks-per-node=8', '--cpus-per-task=5', '--kill-on-bad-exit=1',
                    'python', '-u', f'{TOOLS}/test.py', 'c.py', 'ckpt.pth', '--launcher=slurm',
                    '--out', 'r.pkl']
    assert (tmp_path / 'srun.pythonpath').read_text() == f'{TOOLS}/..:/elsewhere'
    args = _tool_args('test.py', argv[argv.index('-u') + 2:])
    assert (args.config, args.checkpoint, args.launcher, args.out) == (
        'c.py', 'ckpt.pth', 'slurm', 'r.pkl')


@pytest.mark.parametrize('script,args', [('slurm_train.sh', ['p', 'j', 'c.py']),
                                         ('slurm_test.sh', ['p', 'j', 'c.py']),
                                         ('dist_train.sh', ['c.py']),
                                         ('dist_test.sh', ['c.py', 'x.pth'])])
def test_missing_arguments_fail_with_usage(tmp_path, script, args):
    proc = _script(tmp_path, script, args)
    assert proc.returncode == 2 and 'usage:' in proc.stderr
    assert not (tmp_path / 'srun.args').exists() and not (tmp_path / 'python.args').exists()


def test_dist_train_and_test_multi_node_command_lines(tmp_path):
    env = dict(NNODES='2', NODE_RANK='1', MASTER_ADDR='10.1.2.3', PORT='29871')
    proc = _script(tmp_path, 'dist_train.sh', ['c.py', '4', '--resume', '--cfg-options', 'a=1'],
                   env=env)
    assert proc.returncode == 0, proc.stderr
    assert _recorded(tmp_path, 'python') == [
        '-m', 'torch.distributed.run', '--nnodes=2', '--node_rank=1', '--master_addr=10.1.2.3',
        '--nproc_per_node=4', '--master_port=29871', f'{TOOLS}/train.py', 'c.py', '--launcher',
        'pytorch', '--resume', '--cfg-options', 'a=1']
    proc = _script(tmp_path, 'dist_test.sh', ['c.py', 'w.pth', '2'])
    assert proc.returncode == 0, proc.stderr
    assert _recorded(tmp_path, 'python') == [
        '-m', 'torch.distributed.run', '--nnodes=1', '--node_rank=0', '--master_addr=127.0.0.1',
        '--nproc_per_node=2', '--master_port=29500', f'{TOOLS}/test.py', 'c.py', 'w.pth',
        '--launcher', 'pytorch']
    assert (tmp_path / 'python.pythonpath').read_text() == f'{TOOLS}/..'


FAKE_SRUN = '''#!{python}
"""Plays srun on one node: runs the command --ntasks times with Slurm's task variables."""
import os, subprocess, sys
args, ntasks, i = sys.argv[1:], 1, 0
while i < len(args) and args[i].startswith('-'):
    if args[i] == '-p':
        i += 1
    elif args[i].startswith('--ntasks='):
        ntasks = int(args[i].split('=')[1])
    i += 1
procs = [subprocess.Popen(args[i:], env=dict(os.environ, SLURM_PROCID=str(r),
                                              SLURM_LOCALID=str(r), SLURM_NTASKS=str(ntasks),
                                              SLURM_NODELIST='node-[1]'))
         for r in range(ntasks)]
sys.exit(max(p.wait() for p in procs))
'''
FAKE_SCONTROL = '''#!/bin/sh
[ "$1 $2 $3" = "show hostname node-[1]" ] && echo 127.0.0.1
'''


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_slurm_train_runs_two_cpu_tasks(tmp_path):
    """srun's protocol end to end on CPU: 2 tasks, gloo, 2 iterations of tools/train.py."""
    data = write_coco(str(tmp_path / 'data'), n_images=4)
    cfg = dump_config(train_config(gfl_model(width=8), data, max_iters=2), str(tmp_path / 'c.py'))
    folder = _fake_bin(tmp_path, ['srun'], FAKE_SRUN.format(python=sys.executable))
    _fake_bin(tmp_path, ['scontrol'], FAKE_SCONTROL)
    work = str(tmp_path / 'work')
    env = {k: v for k, v in os.environ.items() if k not in ('MASTER_ADDR', 'PYTHONPATH')}
    env.update(PATH=f'{folder}{os.pathsep}{os.environ["PATH"]}', GPUS='2', GPUS_PER_NODE='2',
               PYTHON=sys.executable, MASTER_PORT=str(_free_port()), OMP_NUM_THREADS='1')
    proc = subprocess.run(['bash', osp.join(TOOLS, 'slurm_train.sh'), 'cpu', 'job', cfg, work,
                           '--cfg-options', 'train_cfg.val_interval=100'],
                          env=env, text=True, capture_output=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert 'Distributed launcher: slurm' in out and 'GPU number: 2' in out
    assert 'Iter(train) [2/2]' in out
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read().strip().endswith('iter_2.pth')
