"""``tools/install.sh``: which mmcv build it runs, with which environment, and what it checks.

The script runs for real (bash, its own logic) with ``PYTHON`` pointing at a fake interpreter
that records every call (arguments and the build variables of its environment) and answers the
script's probes as a machine with or without a GPU would. Nothing is installed or compiled. One
case hands the CUDA probe to the real interpreter, so the probe's own code runs on this machine.
"""
import json
import os
import os.path as osp
import stat
import subprocess
import sys
import textwrap

import pytest

from _helpers import ROOT

SCRIPT = osp.join(ROOT, 'tools', 'install.sh')
BUILD_VARS = ('FORCE_CUDA', 'TORCH_CUDA_ARCH_LIST', 'MAX_JOBS')

FAKE = textwrap.dedent('''\
    #!{python}
    """A stand-in interpreter: logs each call as one JSON line and answers install.sh's probes."""
    import json, os, subprocess, sys
    state = os.environ['FAKE_STATE']
    args = sys.argv[1:]
    env = {{k: os.environ[k] for k in {build_vars!r} if k in os.environ}}
    code = args[1] if args[:1] == ['-c'] else ''
    with open(os.path.join(state, 'log'), 'a') as f:
        f.write(json.dumps(dict(args=args if not code else ['-c', code.strip().splitlines()[0]]
                                + args[2:], env=env)) + '\\n')
    built = os.path.exists(os.path.join(state, 'built'))
    if args[:2] == ['-m', 'pip']:
        if 'install' in args and 'mmcv==2.1.0' in args:
            open(os.path.join(state, 'built'), 'w').close()
        sys.exit(0)
    if args[:1] == ['-']:            # the requirements check reads its program from stdin
        sys.stdin.read()
        sys.exit(0)
    if '# probe: cuda' in code:
        answer = os.environ['FAKE_CUDA']
        if answer == 'real':
            sys.exit(subprocess.call([{python!r}, '-c', code]))
        print(answer)
        sys.exit(0)
    if '# probe: mmcv-ops' in code:
        want_cuda = args[2] == '1'
        ops = os.environ['FAKE_OPS_AFTER' if built else 'FAKE_OPS_BEFORE']  # 'cpu', 'cuda', 'none'
        sys.exit(0 if ops == 'cuda' or (ops == 'cpu' and not want_cuda) else 1)
    if 'mmkdcal.__file__' in code:   # where mmkdcal is installed: this checkout
        print(os.environ['FAKE_ROOT'])
        sys.exit(0)
    if '[install] ready' in code:
        print('[install] ready: mmkdcal (fake)')
    sys.exit(0)
    ''')


def _run(tmp_path, cuda, ops_before='none', ops_after=None, env=None):
    """Run install.sh with the fake interpreter; return (returncode, output, calls)."""
    state = tmp_path / 'state'
    state.mkdir()
    fake = tmp_path / 'python'
    fake.write_text(FAKE.format(python=sys.executable, build_vars=BUILD_VARS))
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    full = {k: v for k, v in os.environ.items()
            if k not in BUILD_VARS and k != 'MMKDCAL_CUDA'}
    full.update(PYTHON=str(fake), FAKE_STATE=str(state), FAKE_CUDA=cuda, FAKE_ROOT=ROOT,
                FAKE_OPS_BEFORE=ops_before, FAKE_OPS_AFTER=ops_after or ops_before,
                MAX_JOBS='3', **(env or {}))
    proc = subprocess.run(['bash', SCRIPT], env=full, text=True, timeout=120,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log = state / 'log'
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return proc.returncode, proc.stdout, calls


def _pip(calls):
    """The pip calls: (arguments after `-m pip --disable-pip-version-check`, build variables)."""
    out = []
    for c in calls:
        if c['args'][:2] == ['-m', 'pip']:
            assert c['args'][2] == '--disable-pip-version-check', c
            out.append((c['args'][3:], c['env']))
    return out


def _ops_probes(calls):
    return [c['args'][2] for c in calls if c['args'][:2] == ['-c', '# probe: mmcv-ops']]


GPU = '12.8 1 8.6 /usr/local/cuda'       # torch CUDA 12.8, one card of capability 8.6, nvcc
CPU = 'none 0 none none'                 # a CPU build of torch


def test_visible_card_builds_cuda_ops_for_its_capability(tmp_path):
    rc, out, calls = _run(tmp_path, GPU, ops_before='cpu', ops_after='cuda')
    assert rc == 0, out
    assert _pip(calls)[-2:] == [
        (['uninstall', '-y', '-q', 'mmcv'], {'MAX_JOBS': '3'}),
        (['install', '--no-build-isolation', '--no-cache-dir', 'mmcv==2.1.0'],
         {'FORCE_CUDA': '1', 'TORCH_CUDA_ARCH_LIST': '8.6', 'MAX_JOBS': '3'})]
    assert _ops_probes(calls) == ['1', '1']  # a CPU-only mmcv is rebuilt; checked on CUDA after
    assert 'building for the visible card, compute capability 8.6' in out
    assert 'ops checked on CUDA' in out


def test_given_arch_list_is_kept(tmp_path):
    rc, out, calls = _run(tmp_path, GPU, ops_after='cuda',
                          env=dict(TORCH_CUDA_ARCH_LIST='8.0;9.0'))
    assert rc == 0, out
    assert _pip(calls)[-1] == (
        ['install', '--no-build-isolation', '--no-cache-dir', 'mmcv==2.1.0'],
        {'FORCE_CUDA': '1', 'TORCH_CUDA_ARCH_LIST': '8.0;9.0', 'MAX_JOBS': '3'})
    assert 'TORCH_CUDA_ARCH_LIST=8.0;9.0 (given)' in out


def test_cpu_torch_builds_cpu_ops_without_cuda_variables(tmp_path):
    rc, out, calls = _run(tmp_path, CPU, ops_after='cpu')
    assert rc == 0, out
    assert _pip(calls)[-1] == (['install', '--no-build-isolation', 'mmcv==2.1.0'],
                               {'MAX_JOBS': '3'})
    assert _ops_probes(calls) == ['0', '0']


def test_real_cuda_probe_on_this_machine(tmp_path):
    """The probe's own code, run by the real interpreter, decides like torch does here."""
    import torch
    from torch.utils.cpp_extension import CUDA_HOME
    has_gpu = bool(torch.version.cuda) and torch.cuda.is_available()
    rc, out, calls = _run(tmp_path, 'real', ops_before='cuda' if has_gpu else 'cpu')
    if has_gpu and CUDA_HOME is None:  # a GPU without the toolkit: refused before building
        assert rc == 1 and 'no CUDA toolkit (nvcc) was found' in out, out
        return
    assert rc == 0, out
    assert _ops_probes(calls) == ['1' if has_gpu else '0']
    assert not [args for args, _ in _pip(calls) if 'mmcv==2.1.0' in args]  # present: no build


def test_present_cuda_build_is_not_rebuilt(tmp_path):
    rc, out, calls = _run(tmp_path, GPU, ops_before='cuda')
    assert rc == 0, out
    assert not [args for args, _ in _pip(calls) if 'mmcv' in args]
    assert 'mmcv 2.1.0 with CUDA ops: present' in out


@pytest.mark.parametrize('answer,env,message', [
    ('12.8 1 8.6 none', {}, 'no CUDA toolkit (nvcc) was found'),
    ('12.8 0 none /usr/local/cuda', dict(MMKDCAL_CUDA='1'), 'set TORCH_CUDA_ARCH_LIST'),
    (CPU, dict(MMKDCAL_CUDA='1'), 'the installed torch is a CPU build'),
])
def test_cuda_set_up_that_cannot_build_is_refused_before_building(tmp_path, answer, env,
                                                                  message):
    rc, out, calls = _run(tmp_path, answer, env=env)
    assert rc == 1 and message in out, out
    assert not [args for args, _ in _pip(calls) if 'mmcv' in ' '.join(args)]


def test_forced_cuda_without_card_builds_for_the_given_arch(tmp_path):
    rc, out, calls = _run(tmp_path, '12.8 0 none /usr/local/cuda', ops_after='cuda',
                          env=dict(MMKDCAL_CUDA='1', TORCH_CUDA_ARCH_LIST='9.0'))
    assert rc == 0, out
    assert _pip(calls)[-1][1] == {'FORCE_CUDA': '1', 'TORCH_CUDA_ARCH_LIST': '9.0',
                                  'MAX_JOBS': '3'}


def test_mmkdcal_cuda_0_builds_cpu_ops_on_a_gpu_machine(tmp_path):
    rc, out, calls = _run(tmp_path, GPU, ops_after='cpu', env=dict(MMKDCAL_CUDA='0'))
    assert rc == 0, out
    assert not [c for c in calls if c['args'][:2] == ['-c', '# probe: cuda']]
    assert _pip(calls)[-1] == (['install', '--no-build-isolation', 'mmcv==2.1.0'],
                               {'MAX_JOBS': '3'})


def test_cuda_build_without_working_ops_fails(tmp_path):
    rc, out, _ = _run(tmp_path, GPU, ops_after='cpu')
    assert rc == 1
    assert 'mmcv was installed without working CUDA ops' in out


def test_torch_cuda_build_without_card_says_cpu_only(tmp_path):
    rc, out, calls = _run(tmp_path, '12.8 0 none /usr/local/cuda', ops_after='cpu')
    assert rc == 0, out
    assert 'sees no GPU: building CPU ops only' in out
    assert _pip(calls)[-1][1] == {'MAX_JOBS': '3'}
