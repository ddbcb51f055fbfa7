"""The benchmark scripts at toy size and their helpers (tools/benchmarks/speed).

The scripts are run with shrunk models for one round: the tests check the JSON structure and what
must hold physically (equal loss values where the conventions say so, the calibration pass keeping
exactly the detections plain inference returns), never timings.
"""
import importlib.util
import json
import math
import mmap
import os
import os.path as osp
import platform
import subprocess
import statistics
import sys

import pytest
import torch

from _helpers import ROOT, run_tool
from tools.benchmarks.speed import (TrainStep, random_rois, ratio_summary, summarize,
                                    synthetic_batch, time_interleaved)
from tools.benchmarks.speed.candidates import DEFAULT_SPEC, python_env
from tools.benchmarks.speed.isolated import time_isolated
from tools.benchmarks.speed.peer_compare import measure_rss, run_calibration
from tools.benchmarks.speed.peers import sum_losses

PEER_ENV = osp.join(ROOT, 'work_dirs', 'peer_env')
PEER_READY = osp.join(PEER_ENV, 'READY')  # written by setup_peer_env.sh when complete


def _positive(x, where):
    assert isinstance(x, (int, float)) and not isinstance(x, bool), f'{where}: {x!r}'
    assert math.isfinite(x) and x > 0, f'{where} = {x}'


def _check_equal_losses(checks, names, rel):
    for name in names:
        c = checks[name]
        _positive(abs(c['ours']), f'{name}.ours')
        assert c['rel_diff'] < rel, (name, c)


def _check_teacher_settings(t):
    """The rows of ``teacher_settings.bench_settings`` on a CPU: what runs here, the fp32 row as
    the reference, folding exact to fp32 rounding, bf16 really run and close."""
    from mmkdcal.models.distillers.teacher_inference import _cpu_has_native_bf16
    rows = t['settings']
    want = {'fp32', 'fold', 'fold+cl'} | ({'bf16', 'fold+cl+bf16'} if _cpu_has_native_bf16()
                                          else set())
    assert set(rows) == want  # fp16 is refused on a CPU, compile only when asked
    assert rows['fp32']['teacher_forward_over_fp32'] == 1.0 == rows['fp32']['kd_step_over_fp32']
    assert rows['fp32']['max_abs_change_scaled_logits'] == 0.0
    assert rows['fold']['max_abs_change_scaled_logits'] < 1e-4
    for name, r in rows.items():
        assert r['kd_step_over_fp32'] == pytest.approx(
            r['kd_step_ms'] / rows['fp32']['kd_step_ms'])
        assert r['kd_step_over_student_step'] == pytest.approx(
            r['kd_step_ms'] / t['student_step_ms'])
        if 'bf16' in name:
            assert 0 < r['max_abs_change_scaled_logits'] < 0.1


def test_teacher_step_tiny(tmp_path):
    out = run_tool('tools/benchmarks/teacher_step.py', '--models', 'tiny', '--sizes', '64x64',
                   '--batch', '1', '--iters', '1', '--warmup', '0', '--rss-steps', '1',
                   '--out', str(tmp_path), timeout=900)
    report = json.load(open(tmp_path / 'teacher_step.json'))
    run = report['runs']['64x64']
    _check_teacher_settings(run)
    assert set(report['peak_rss']['64x64']) == {'student', 'mmdet_ld'} | set(run['settings'])
    for r in report['peak_rss']['64x64'].values():
        _positive(r['peak_rss_bytes'], 'peak_rss_bytes')
    assert 'not run, no MMRazor environment' in out or 'its environment exists' in out
    assert '| fold+cl |' in open(tmp_path / 'teacher_step.md').read()


# ---------------------------------------------------------------------------- the scripts
def test_train_step_tiny_cpu(tmp_path):
    out = run_tool('tools/benchmarks/train_step.py', '--device', 'cpu', '--tiny', '--size', '128',
                   '128', '--batch', '1', '--iters', '1', '--warmup', '1', '--models', 'gfl',
                   '--amp-dtype', 'bfloat16', '--calib-batches', '1', '--calib-repeats', '1',
                   '--threads', '1', '--out', str(tmp_path), timeout=900)
    report = json.load(open(tmp_path / 'train_step.json'))
    assert report['device'] == 'cpu' and report['num_threads'] == 1
    assert report['device_name'] in out
    m = report['models']['gfl']
    assert m['student_config'] == 'mmdet::gfl/gfl_r50_fpn_1x_coco.py' and m['tiny']
    assert m['distill_losses'] == ['loss_kd_cls'] and m['temperature'] == 2.0
    assert m['teacher_params'] > m['student_params']  # R-101 layout vs R-50, same widths
    assert m['padded_input_shape'] == [1, 3, 128, 128]
    for prec in ('fp32', 'amp'):
        r = m[prec]
        for key in ('student_step', 'teacher_forward', 'kd_step', 'ours_ld_step',
                    'mmdet_ld_step'):
            _positive(r[f'{key}_ms'], f'{prec}.{key}')
            assert len(r['samples_ms'][key]) == 1
        assert 'needs a CUDA device' in r['memory'] and 'kd_peak_bytes' not in r
    # MMDetection's LD on the same batch and weights: the student task losses are computed by the
    # same GFL head code on both sides, and our LDLoss on LDHead's rows gives its loss_ld
    checks = m['mmdet_ld_losses']['checks']
    _check_equal_losses(checks, ['task_loss_cls', 'task_loss_bbox', 'task_loss_dfl'], 1e-5)
    _check_equal_losses(checks, ['ld_kernel'], 1e-3)  # float32 rounding of a tiny KL
    for key in ('task_loss_cls', 'task_loss_bbox', 'task_loss_dfl'):
        assert checks[key]['student'] == pytest.approx(checks[key]['ours'], rel=1e-6)
    _check_teacher_settings(m['teacher_inference'])
    c = m['calibration_pass']
    assert c['images'] == 1
    # the pass keeps exactly what plain inference returns (score_thr 0 on both sides)
    assert c['detections_collected'] == c['detections_predicted'] > 0
    assert 'does not import under torch 2.x' in m['mmrazor']
    assert 'peer_step.py' in out


def test_peer_step_tiny_mmdet_ld_and_missing_peer_env(tmp_path):
    out = run_tool('tools/benchmarks/peer_step.py', '--models', 'tiny', '--sizes', '64x64',
                   '--batch', '1', '--iters', '1', '--warmup', '1', '--rss-steps', '0',
                   '--isolated-iters', '2', '--isolated-sets', '2', '--calib-repeats', '0',
                   '--control', '--peer-env', str(tmp_path / 'absent'),
                   '--out', str(tmp_path), timeout=900)
    report = json.load(open(tmp_path / 'peer_step.json'))
    assert report['errors'] == []
    run = report['runs']['64x64']
    assert 'setup_peer_env.sh' in run['mmrazor']['skipped']
    r = run['mmdet_ld']
    assert r['env']['torch_threads'] == 1 and r['spec']['size'] == [64, 64]
    assert r['teacher_params'] > r['student_params']
    assert set(r['times_ms']) == {'student', 'teacher', 'ours', 'peer', 'ours_copy', 'peer_copy'}
    # the control copies are their originals, weight for weight, timed in the same rounds
    c = r['control_losses']
    assert c['ours_copy'] == pytest.approx(c['ours'], rel=1e-6)
    assert c['peer_copy'] == pytest.approx(c['peer'], rel=1e-6)
    assert c['ours'] == pytest.approx(sum(r['losses']['values']['ours'].values()), rel=1e-5)
    t = r['samples_ms']
    assert r['ratios']['ours_over_ours_copy']['per_round_max'] == pytest.approx(
        t['ours'][0] / t['ours_copy'][0])
    assert r['ratios']['ours_copy_over_peer_copy']['of_medians'] == pytest.approx(
        t['ours_copy'][0] / t['peer_copy'][0])
    for name, s in r['times_ms'].items():
        assert s['min'] <= s['median'] <= s['max'] and len(r['samples_ms'][name]) == 1
    assert set(r['usage']) == set(r['times_ms'])
    for name, rows in r['usage_samples'].items():
        assert len(rows) == 1 and set(rows[0]) == {'user_ms', 'sys_ms', 'minor_faults'}
        assert r['usage'][name]['user_ms']['median'] == rows[0]['user_ms'] > 0
    assert {'ours_over_peer_user_cpu', 'ours_over_student_plus_teacher_user_cpu'} <= set(
        r['ratios'])
    for q in r['ratios'].values():
        _positive(q['per_round_median'], 'ratio')
    checks = r['losses']['checks']
    # the same GFL head code and weights on both sides; LDHead normalises the box losses by S
    # where GFLHead uses max(S, 1), which the check converts
    _check_equal_losses(checks, ['task_loss_cls', 'task_loss_bbox', 'task_loss_dfl'], 1e-5)
    _check_equal_losses(checks, ['ld_kernel'], 1e-3)  # float32 rounding of a tiny KL
    md = open(tmp_path / 'peer_step.md').read()
    assert "MMDetection's LD" in md and md.strip() in out
    _check_isolated(r, warmup=1, iters=2, sets=2)
    assert 'each in its own process' in md and 'Each candidate alone' in md
    assert 'ours/ours copy' in md


def test_isolated_worker_that_fails_reports_its_error():
    spec = dict(DEFAULT_SPEC, models='huge', size=[64, 64], batch=1)
    with pytest.raises(RuntimeError, match=r"(?s)isolated student worker ended.*'coco' or 'tiny'"):
        time_isolated(sys.executable, 'mmdet_ld', spec, iters=1)
    with pytest.raises(ValueError, match='iters and sets must be >= 1'):
        time_isolated(sys.executable, 'mmdet_ld', spec, iters=0)
    with pytest.raises(ValueError, match='sets=0'):
        time_isolated(sys.executable, 'mmdet_ld', spec, iters=1, sets=0)


def _check_isolated(r, warmup, iters, sets=1):
    """The isolated timing: alternating order, and workers that run the very models (same
    weights, same batch) of the shared comparison: a training worker's first loss is that
    model's total loss there, and the teacher's fixed weights give the same logits every step.
    Each set starts fresh processes from those same weights; its rounds are pooled."""
    i = r['isolated']
    names = ['student', 'teacher', 'ours', 'peer']
    rounds = warmup + iters
    assert i['candidates'] == names and i['sets'] == sets
    assert i['order'] == [n for _ in range(sets) for k in range(rounds)
                          for n in (names if k % 2 == 0 else names[::-1])]
    for name in names:
        assert len(i['samples_ms'][name]) == len(i['usage_samples'][name]) == iters * sets
        assert len(i['losses'][name]) == rounds * sets
        assert i['peak_rss_bytes'][name] > 100 * 2**20
    for name in ('student', 'ours', 'peer'):
        total = sum(r['losses']['values'][name].values())
        losses = i['losses'][name]
        assert losses[0] == pytest.approx(total, rel=1e-5), name
        assert losses[1] != losses[0]  # it trains: the SGD step ran
        for k in range(1, sets):  # a fresh process: back to the first step's weights
            assert losses[k * rounds] == pytest.approx(losses[0], rel=1e-5), name
    assert len(set(i['losses']['teacher'])) == 1 and i['losses']['teacher'][0] != 0
    per_round = [a / b for a, b in zip(i['samples_ms']['ours'], i['samples_ms']['peer'])]
    q = i['ratios']['ours_over_peer']
    assert q['per_round_min'] == pytest.approx(min(per_round))
    assert q['rounds'] == iters * sets and q['rounds_below_1'] == sum(v < 1 for v in per_round)
    assert len(i['per_set']) == sets
    for k, s in enumerate(i['per_set']):
        mine = per_round[k * iters:(k + 1) * iters]
        assert s['ours_over_peer']['per_round_max'] == pytest.approx(max(mine))
        assert s['median_ms']['ours'] == pytest.approx(
            statistics.median(i['samples_ms']['ours'][k * iters:(k + 1) * iters]))
    over = [o / (s + t) for o, s, t in zip(*(i['samples_ms'][n] for n in ('ours', 'student',
                                                                          'teacher')))]
    assert i['ratios']['ours_over_student_plus_teacher']['per_round_max'] == pytest.approx(
        max(over))


def test_peak_rss_and_calibration_workers_tiny():
    spec = dict(DEFAULT_SPEC, models='tiny', size=[64, 64], batch=1, rss_steps=1,
                calib_batches=1, calib_repeats=1)
    for cand in ('student', 'ours', 'peer'):
        rss = measure_rss('mmdet_ld', spec, cand)
        assert rss['candidate'] == cand and rss['peak_reset_after_build']
        # VmRSS and VmHWM come from the kernel's per-thread-cached RSS counters, which may lag
        # by a few pages: the peak is the pre-step RSS or more, up to that slack (1 MiB)
        assert rss['rss_before_steps_bytes'] > 0
        assert rss['peak_rss_bytes'] >= rss['rss_before_steps_bytes'] - (1 << 20)
    c = run_calibration(spec)
    assert c['images'] == 1
    # the pass keeps exactly what plain inference returns (score_thr 0 on both sides)
    assert c['detections_collected'] == c['detections_predicted'] > 0


@pytest.mark.skipif(not osp.isfile(PEER_READY),
                    reason='no MMRazor benchmark environment at work_dirs/peer_env (build it '
                           'with bash tools/benchmarks/setup_peer_env.sh; the main suite never '
                           'builds it)')
def test_peer_step_tiny_mmrazor_in_peer_env(tmp_path):
    # batch 2: the 1x1 top FPN level then has 2 values per channel (MMRazor's PKD takes a sample
    # std over them)
    run_tool('tools/benchmarks/peer_step.py', '--models', 'tiny', '--sizes', '64x64', '--batch',
             '2', '--iters', '1', '--warmup', '1', '--rss-steps', '0', '--calib-repeats', '0',
             '--isolated-iters', '1', '--peers', 'mmrazor', '--out', str(tmp_path), timeout=900)
    r = json.load(open(tmp_path / 'peer_step.json'))['runs']['64x64']['mmrazor']
    assert r['env']['torch'].startswith('1.13') and r['env']['mmrazor'] == '1.0.0'
    assert set(r['times_ms']) == {'student', 'teacher', 'teacher_loss_mode', 'ours', 'peer'}
    checks = r['losses']['checks']
    # same student head and weights; PKD equal once the documented normalisation (sample vs
    # population std) is accounted for; the logit losses differ by design (binary vs softmax)
    _check_equal_losses(checks, ['task_loss_cls', 'task_loss_bbox', 'task_loss_dfl'], 1e-6)
    _check_equal_losses(checks, ['pkd'], 1e-4)
    assert 'rel_diff' not in checks['kd'] and checks['kd']['ours'] != checks['kd']['peer']
    _check_isolated(r, warmup=1, iters=1)


def _cli(name):
    """Load tools/benchmarks/<name>.py as a module (its parse_args), without running it."""
    path = osp.join(ROOT, 'tools', 'benchmarks', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'_bench_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bad_arguments_fail_early(capsys):
    peer_step, train_step = _cli('peer_step'), _cli('train_step')
    for args, msg in ((['--sizes', '32x32'], 'at least 64x64'), (['--sizes', '800'], 'HxW'),
                      (['--iters', '0'], '--iters must be >= 1'),
                      (['--isolated-iters', '-1'], '--isolated-iters must be >= 0'),
                      (['--isolated-sets', '0'], '--isolated-sets must be >= 1'),
                      (['--isolated-sets', '3', '--isolated-iters', '0'],
                       'which --isolated-iters 0 skips')):
        with pytest.raises(SystemExit):
            peer_step.parse_args(args)
        assert msg in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train_step.parse_args(['--device', 'cpu', '--ld', '--models', 'retinanet'])
    assert '--ld adds LD' in capsys.readouterr().err


# ---------------------------------------------------------------------------- the helpers
def test_time_interleaved_alternates_order_after_warmup():
    calls = []
    fns = {n: (lambda n=n: calls.append(n)) for n in 'abc'}
    times = time_interleaved(fns, warmup=1, iters=3)
    assert calls == list('abc' 'abc' 'cba' 'abc')
    assert {n: len(v) for n, v in times.items()} == {'a': 3, 'b': 3, 'c': 3}
    with pytest.raises(ValueError, match='iters'):
        time_interleaved(fns, warmup=0, iters=0)


def test_time_interleaved_usage_counts_the_page_faults_of_each_call():
    """A call that first-touches 2048 fresh 4 KiB pages (anonymous map, no huge pages) records
    at least 2048 minor faults; a call that touches nothing, far fewer; one row per timed call."""
    pages = 2048

    def touch():
        m = mmap.mmap(-1, pages * mmap.PAGESIZE)
        if hasattr(mmap, 'MADV_NOHUGEPAGE'):
            m.madvise(mmap.MADV_NOHUGEPAGE)
        for i in range(pages):
            m[i * mmap.PAGESIZE] = 1
        m.close()

    usage = {'stale': []}
    time_interleaved(dict(touch=touch, idle=lambda: None), warmup=1, iters=2, usage=usage)
    assert set(usage) == {'touch', 'idle'} and all(len(v) == 2 for v in usage.values())
    for row in usage['touch']:
        assert row['minor_faults'] >= pages
        assert row['user_ms'] >= 0 and row['sys_ms'] >= 0
    assert max(row['minor_faults'] for row in usage['idle']) < pages // 4


def test_summaries_hand_computed():
    assert summarize([3.0, 1.0, 2.0]) == dict(median=2.0, min=1.0, max=3.0, rel_spread=1.0)
    # rounds: 6/(1+2) = 2, 8/(2+2) = 2, 20/(4+1) = 4; medians: 8 / (2 + 2) = 2
    r = ratio_summary([6.0, 8.0, 20.0], [[1.0, 2.0, 4.0], [2.0, 2.0, 1.0]])
    assert r == dict(of_medians=2.0, per_round_median=2.0, per_round_min=2.0, per_round_max=4.0,
                     rounds=3, rounds_below_1=0)
    r = ratio_summary([1.0, 3.0, 0.5, 2.0], [[2.0, 3.0, 1.0, 1.0]])  # 0.5, 1.0, 0.5, 2.0
    assert r['rounds'] == 4 and r['rounds_below_1'] == 2 and r['per_round_median'] == 0.75
    with pytest.raises(ValueError, match='rounds'):
        ratio_summary([1.0], [[1.0, 2.0]])


_PEAK_RSS_PROBE = """
import json
import numpy as np
from tools.benchmarks.speed import peak_rss_bytes, reset_peak_rss
first_reset = reset_peak_rss()
base = peak_rss_bytes()
a = np.ones(256 * 2**20 // 8)  # 256 MiB, touched
grown = peak_rss_bytes() - base
del a
second_reset = reset_peak_rss()
print(json.dumps([first_reset, grown, second_reset, peak_rss_bytes() - base]))
"""


def test_peak_rss_follows_an_allocation_and_resets():
    # In a fresh process: in the test process, the heap left by earlier tests can serve the
    # allocation from pages that are already resident, so the peak need not move.
    out = subprocess.run([sys.executable, '-c', _PEAK_RSS_PROBE], cwd=ROOT, check=True,
                         capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=ROOT)).stdout
    first_reset, grown, second_reset, after = json.loads(out.strip().splitlines()[-1])
    assert first_reset and second_reset
    assert grown >= 250 * 2**20
    assert after < 100 * 2**20


def test_synthetic_batch_boxes_inside_images_and_labels_in_range():
    raw = synthetic_batch(3, 96, 160, num_classes=80, boxes_per_image=50, seed=1)
    assert len(raw['inputs']) == 3
    for img, s in zip(raw['inputs'], raw['data_samples']):
        assert img.shape == (3, 96, 160) and img.dtype == torch.uint8
        b = s.gt_instances.bboxes
        assert b.shape == (50, 4)
        assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all()
        assert (b[:, 2] <= 160 + 1e-4).all() and (b[:, 3] <= 96 + 1e-4).all()
        assert (b[:, 2:] - b[:, :2] >= 8).all()
        labels = s.gt_instances.labels
        assert labels.min() >= 0 and labels.max() < 80
    rois = random_rois(2, 96, 160, per_image=5)
    assert rois.shape == (10, 5) and rois[:, 0].tolist() == [0.0] * 5 + [1.0] * 5
    assert (rois[:, 3] <= 160 + 1e-4).all() and (rois[:, 4] <= 96 + 1e-4).all()


class _Quadratic(torch.nn.Module):
    """loss = sum((w - 1)^2); parse_losses as MMEngine's (sum of loss_* entries)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([3.0, -2.0]))

    def loss(self, inputs, samples):
        return dict(loss_q=((self.w - 1) ** 2).sum())

    def parse_losses(self, losses):
        return sum(losses.values()), {}


def test_train_step_is_one_sgd_step_with_momentum_and_weight_decay():
    model = _Quadratic()
    step = TrainStep(model, torch.device('cpu'), amp=None, lr=0.1)
    step(None, None)
    w0 = torch.tensor([3.0, -2.0])
    grad = 2 * (w0 - 1) + 1e-4 * w0  # first SGD step: momentum buffer = gradient
    assert torch.allclose(model.w.detach(), w0 - 0.1 * grad, atol=1e-7)
    assert float(step.last_loss) == pytest.approx(4.0 + 9.0)
    # weights + one momentum buffer of 2 float32 values
    assert step.state_bytes() == 2 * 4 + 2 * 4
    amp = TrainStep(_Quadratic(), torch.device('cpu'), amp=torch.bfloat16, lr=0.1)
    assert amp.scaler is not None and amp.scaler.is_enabled()
    amp(None, None)  # the scaler unscales before the step: same update as fp32
    assert torch.allclose(amp.model.w.detach(), w0 - 0.1 * grad, atol=1e-6)


def test_sum_losses_sums_levels_and_keeps_only_losses():
    losses = dict(loss_cls=[torch.tensor(1.5), torch.tensor([0.5, 1.0])],
                  loss_bbox=torch.tensor(2.0), acc=torch.tensor(99.0))
    assert sum_losses(losses) == dict(loss_cls=3.0, loss_bbox=2.0)


def test_malloc_modes_of_the_worker_processes(monkeypatch):
    """Under ``keep`` a freed 64 MiB block is reused without page faults; under ``default``
    (glibc's own, whatever this process inherited) it is unmapped when freed and faulted in
    again; an unknown mode is refused."""
    monkeypatch.setenv('MALLOC_MMAP_MAX_', '7')
    assert 'MALLOC_MMAP_MAX_' not in python_env(1, 'default')
    assert python_env(1, 'keep')['MALLOC_MMAP_MAX_'] == '0'
    with pytest.raises(ValueError, match="'default', 'keep'"):
        python_env(1, 'arena')
    if 'glibc' not in ' '.join(platform.libc_ver()):
        pytest.skip('the malloc modes are glibc settings')
    code = ('import ctypes, resource\n'
            'libc = ctypes.CDLL("libc.so.6")\n'
            'libc.malloc.restype = ctypes.c_void_p\n'
            'libc.free.argtypes = [ctypes.c_void_p]\n'
            'libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]\n'
            'def touch():\n'
            '    p = libc.malloc(64 << 20)\n'
            '    libc.memset(p, 1, 64 << 20)\n'
            '    libc.free(p)\n'
            'touch()\n'
            'r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n'
            'touch()\n'
            'print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0)\n')
    faults = {}
    for mode in ('default', 'keep'):
        proc = subprocess.run([sys.executable, '-c', code], env=python_env(1, mode),
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        faults[mode] = int(proc.stdout.split()[-1])
    assert faults['keep'] < 1000, faults  # the second block reuses the first one's pages
    thp = '/sys/kernel/mm/transparent_hugepage/enabled'
    if not (osp.isfile(thp) and '[always]' in open(thp).read()):  # 4 KiB pages: 16384 faults
        assert faults['default'] > 8000, faults
