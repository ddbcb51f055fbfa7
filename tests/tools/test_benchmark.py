"""tools/benchmark.py end to end on DigitsDet at quick size: plan, run (killed once, then resumed),
a second run that does nothing, collect, release, and publish into copies of a README.

Two tiny runs: the demo's KD config and its KD+cal twin, with the demo's quick-mode options
(tools/demo.py ``_options``: small data, short schedule) and a checkpoint every 2 iterations.
The teacher is an untrained GFL (mmdet's initialisation) saved by the test; an untrained detector
has no true detections to calibrate on, so the KD+cal run calibrates on the teacher's anchors
(``fit_on='anchors'``, against its own target assignment).
"""
import hashlib
import json
import os
import os.path as osp
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from _helpers import ROOT

sys.path.insert(0, osp.join(ROOT, 'tools'))
import benchmark as bench  # noqa: E402  (tools/benchmark.py)
import demo  # noqa: E402  (tools/demo.py: its quick-mode options)

KD = 'kd_gfl_r18w16_r18w32_digits'
CAL = 'kd-cal_gfl_r18w16_r18w32_digits'
STUDENT_CFG = osp.join(ROOT, 'configs/demo/gfl_r18w16_digits.py')
TEACHER_CFG = osp.join(ROOT, 'configs/demo/gfl_r18w32_digits.py')
MODE = dict(demo.MODES['quick'], data=dict(n_train=32, n_calib=16, n_val=16))
ITERS = 6
PUBLISHED_AP, PUBLISHED_DECE = 12.3, 0.05


def _signed(x, decimals):
    s = f'{x:+.{decimals}f}'
    return '+' + s[1:] if float(s) == 0 else s


def _table_rows(text):
    """Config name -> cells, of the rows between the benchmark markers."""
    from tools.harness.matrix.tables import BEGIN, END
    block = text.split(BEGIN)[1].split(END)[0].strip().splitlines()
    return {re.match(r'`(.+)\.py`', r.split('|')[1].strip()).group(1):
            [c.strip() for c in r.strip()[1:-1].split('|')] for r in block[2:]}


def _readme_copy(path, published_ap):
    """configs/gfl/README.md with its results rows replaced by rows for the two demo configs."""
    from tools.harness.matrix.tables import BEGIN, END
    with open(osp.join(ROOT, 'configs/gfl/README.md')) as f:
        text = f.read()
    head, rest = text.split(BEGIN)
    block, tail = rest.split(END)
    header = block.strip().splitlines()[:2]
    rows = [f'| `{n}.py` | `gfl_r18w16_digits` | {published_ap} | `gfl_r18w32_digits` | 69.3 | '
            'not yet measured | - | - | - | - |' for n in (KD, CAL)]
    new = head + BEGIN + '\n' + '\n'.join(header + rows) + '\n' + END + tail
    with open(path, 'w') as f:
        f.write(new)
    return new


def _records(work):
    out = {}
    for name in (KD, CAL):
        with open(osp.join(work, name, 'seed0', 'benchmark_run.json')) as f:
            out[name] = json.load(f)
    return out


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    import mmkdcal  # noqa: F401
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmkdcal.datasets import build_digits_det
    tmp = tmp_path_factory.mktemp('bench')
    data = str(tmp / 'digits')
    build_digits_det(data, **MODE['data'])
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(TEACHER_CFG).model)
    teacher.init_weights()  # mmdet's initialisation: class prior 0.01, so T fits on anchors
    teacher_ckpt = str(tmp / 'teacher.pth')
    torch.save(dict(meta={}, state_dict=teacher.state_dict()), teacher_ckpt)
    opts = demo._options(MODE, data, ITERS, extra=[
        'default_hooks.checkpoint.interval=2', 'default_hooks.logger.interval=2',
        'train_cfg.val_begin=1000'])  # no validation: the test step evaluates
    teacher = [f'model.teacher_config={TEACHER_CFG}', f'model.teacher_ckpt={teacher_ckpt}']
    lines = [' '.join([f'configs/demo/{KD}.py'] + teacher),
             ' '.join([f'configs/demo/{CAL}.py', 'custom_hooks.0.fit_on=anchors'] + teacher
                      + demo._calib_options(MODE, data, 'custom_hooks.0.dataloader.'))]
    (tmp / 'two.txt').write_text('\n'.join(lines) + '\n')
    # the same two, plus one that fails when its model is built (ResNet has no depth 19)
    (tmp / 'three.txt').write_text('\n'.join(lines + [
        'configs/demo/gfl_r18w16_digits.py model.backbone.depth=19']) + '\n')
    return dict(tmp=tmp, work=str(tmp / 'work'), opts=opts)


def _args(setup, command, list_file='two.txt', *extra):
    return [command, str(setup['tmp'] / list_file), '--work-root', setup['work'], *extra,
            '--cfg-options', *setup['opts']]


def test_benchmark_end_to_end(setup, tmp_path, capsys):
    from tools.harness.matrix.plan import discover_configs, make_plan
    from tools.harness.matrix.state import inspect_run
    work = setup['work']
    runs = {r.name: r for r in make_plan(discover_configs([str(setup['tmp'] / 'two.txt')]),
                                         work, (0,), setup['opts'])}

    # -- plan: a dry run printing one training and one test command per run
    assert bench.main(_args(setup, 'plan')) == 0
    out = capsys.readouterr().out
    train_lines = [ln for ln in out.splitlines() if ln.startswith('python tools/train.py')]
    test_lines = [ln for ln in out.splitlines() if ln.startswith('python tools/test.py')]
    assert len(train_lines) == len(test_lines) == 2
    assert not osp.exists(work)
    for name in (KD, CAL):
        wd = osp.join(work, name, 'seed0')
        assert f'--work-dir {wd} ' in next(ln for ln in train_lines if f'/{name}.py' in ln)
        assert f'{wd}/iter_{ITERS}.pth --work-dir {wd}/test --metrics-out ' \
               f'{wd}/test_metrics.json' in next(ln for ln in test_lines if f'/{name}.py' in ln)

    # -- run, killed (SIGKILL to its process group) once the KD+cal run saved its first checkpoint
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    log1 = tmp_path / 'run1.log'
    with open(log1, 'w') as log:
        proc = subprocess.Popen([sys.executable, 'tools/benchmark.py',
                                 *_args(setup, 'run', 'two.txt', '--jobs', '2')],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        last = osp.join(work, CAL, 'seed0', 'last_checkpoint')
        deadline = time.time() + 600
        while not osp.isfile(last) and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # it ended by itself: the assertion below shows its log
            pass
        proc.wait()
    state = inspect_run(runs[CAL])
    assert state.stage == 'partial' and 0 < state.progress < ITERS, \
        (state, log1.read_text()[-3000:])
    records = _records(work)
    assert records[CAL]['attempts'][-1]['end'] is None  # killed: never recorded its end
    assert bench.main(_args(setup, 'plan')) == 0  # the plan now resumes it
    assert f'--resume {state.checkpoint} --cfg-options' in capsys.readouterr().out

    # -- run again: the KD+cal run resumes, a failing third run does not stop the others
    assert bench.main(_args(setup, 'run', 'three.txt', '--jobs', '2')) == 1
    out = capsys.readouterr().out
    assert re.search(r'FAILED: gfl_r18w16_digits seed 0 \(configs/demo/gfl_r18w16_digits.py\): '
                     r'training exited with 1', out), out[-3000:]
    counts = re.search(r'3 runs: (\d) done, (\d) skipped \(already finished\), 1 failed, '
                       r'0 interrupted', out)
    assert counts and int(counts.group(1)) + int(counts.group(2)) == 2, out[-3000:]
    assert f'[{CAL} seed 0]   Iter(train) [{ITERS}/{ITERS}]' in out  # progress, tagged per run
    assert f'[{CAL} seed 0]   Iter(test)' in out
    records = _records(work)
    resumed = [a for a in records[CAL]['attempts'] if a['stage'] == 'train'][-1]
    assert resumed['resume_from'] == state.checkpoint and resumed['returncode'] == 0
    with open(resumed['log']) as f:
        log = f.read()
    assert f'resumed epoch: 0, iter: {state.progress}' in log
    assert 'Teacher calibrator from the checkpoint' in log  # fitted once, reused on resume
    assert 'Calibrating the teacher' not in log
    for name in (KD, CAL):
        assert inspect_run(runs[name]).stage == 'done'

    # -- a second run with everything finished does nothing
    mtimes = {p: osp.getmtime(p) for p in (runs[KD].metrics_file, runs[CAL].metrics_file,
                                           inspect_run(runs[CAL]).checkpoint)}
    assert bench.main(_args(setup, 'run')) == 0
    out = capsys.readouterr().out
    assert '2 runs: 0 done, 2 skipped (already finished), 0 failed' in out
    assert _records(work) == records
    assert {p: osp.getmtime(p) for p in mtimes} == mtimes

    # -- collect: the runs' own files, read back
    results_path = str(tmp_path / 'results.json')
    assert bench.main(_args(setup, 'collect') + ['--out', results_path]) == 0
    with open(results_path) as f:
        results = json.load(f)
    from mmkdcal.utils.checkpoint import load_checkpoint_file
    metrics, final = {}, {}
    head = subprocess.run(['git', '-C', ROOT, 'rev-parse', 'HEAD'], capture_output=True,
                          text=True).stdout.strip()
    for r in results['runs']:
        with open(runs[r['name']].metrics_file) as f:
            metrics[r['name']] = json.load(f)
        final[r['name']] = load_checkpoint_file(osp.join(ROOT, r['checkpoint']))
        assert r['status'] == 'complete' and r['metrics'] == metrics[r['name']]
        assert final[r['name']]['meta']['iter'] == ITERS
        assert r['git']['commit'] == head
        assert r['devices']['world_size'] == 1 and r['devices']['names'][0].startswith('CPU')
        assert r['wall_time_s']['train'] > 0 and r['wall_time_s']['test'] > 0
    with open(osp.join(work, CAL, 'seed0', 'teacher_calibration.json')) as f:
        fitted = json.load(f)['temperature']
    cal = next(r for r in results['runs'] if r['name'] == CAL)
    assert cal['teacher_temperature']['value'] == final[CAL]['meta']['teacher_temperature']
    assert final[CAL]['meta']['teacher_temperature'] == pytest.approx(fitted)
    kd = next(r for r in results['runs'] if r['name'] == KD)
    assert kd['teacher_temperature'] == dict(value=1.0, source='config')
    assert 'teacher_temperature' not in final[KD]['meta']

    # -- release: plain student weights, sha256 prefix in the name
    release_dir = str(tmp_path / 'release')
    assert bench.main(['release', '--results', results_path, '--out-dir', release_dir]) == 0
    with open(results_path) as f:
        results = json.load(f)
    released = {}
    for name in (KD, CAL):
        rel = results['releases'][name]
        path = osp.join(ROOT, rel['file'])
        with open(path, 'rb') as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        assert rel['sha256'] == digest and osp.basename(path) == f'{name}_seed0-{digest[:8]}.pth'
        released[name] = path
    bare = subprocess.run(  # no mmkdcal import, so no allow-list: only tensors and containers
        [sys.executable, '-c', 'import sys, torch\nfor p in sys.argv[1:]:\n'
         '    c = torch.load(p, weights_only=True); print(sorted(c))', *released.values()],
        capture_output=True, text=True)
    assert bare.stdout.split('\n')[:2] == ["['meta', 'state_dict']"] * 2, bare.stderr
    from mmengine.config import Config
    from mmdet.registry import MODELS
    student = MODELS.build(Config.fromfile(STUDENT_CFG).model)
    for name, path in released.items():
        ckpt = torch.load(path, weights_only=True)
        student.load_state_dict(ckpt['state_dict'], strict=True)
        for k, v in ckpt['state_dict'].items():
            assert torch.equal(v, final[name]['state_dict'][k])
    assert torch.load(released[CAL], weights_only=True)['meta']['teacher_temperature'] == \
        final[CAL]['meta']['teacher_temperature']

    # -- publish into copies of a README: box AP (x100, 1 decimal), and D-ECE (4 decimals)
    src = osp.join(ROOT, 'configs/gfl/README.md')
    with open(src) as f:
        original = f.read()
    t = final[CAL]['meta']['teacher_temperature']
    for metric, scale, decimals, published in (('coco/bbox_mAP', 100, 1, PUBLISHED_AP),
                                               ('calib/dece', 1, 4, PUBLISHED_DECE)):
        readme = str(tmp_path / f'README_{metric.replace("/", "_")}.md')
        before = _readme_copy(readme, published)
        assert bench.main(['publish', '--results', results_path, '--readme', readme,
                           '--metric', metric, '--scale', str(scale),
                           '--decimals', str(decimals)]) == 0
        with open(readme) as f:
            after = f.read()
        rows, old_rows = _table_rows(after), _table_rows(before)
        m_kd, m_cal = (metrics[n][metric] * scale for n in (KD, CAL))
        assert rows[KD][5:] == [f'{m_kd:.{decimals}f}', _signed(m_kd - published, decimals), '-',
                                '-', f'[model]({osp.relpath(released[KD], tmp_path)}) '
                                     f'`{results["releases"][KD]["sha256"][:8]}`']
        assert rows[CAL][5:] == [f'{m_cal:.{decimals}f}', _signed(m_cal - published, decimals),
                                 _signed(m_cal - m_kd, decimals), f'{float(t):.3f}',
                                 f'[model]({osp.relpath(released[CAL], tmp_path)}) '
                                 f'`{results["releases"][CAL]["sha256"][:8]}`']
        for name in (KD, CAL):  # the published baselines are kept
            assert rows[name][:5] == old_rows[name][:5]
        strip = re.compile(r'<!-- benchmark-results: begin.*?<!-- benchmark-results: end -->',
                           re.S)
        assert strip.sub('', after) == strip.sub('', before) == strip.sub('', original)
    capsys.readouterr()
