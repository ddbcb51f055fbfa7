"""Ours against a peer's own distiller, in one process: step times, loss values, peak RSS.

One *comparison* (:data:`~.peers.PEERS`) builds, from one seed, the plain
student, our distiller and the peer's distiller with identical student and teacher weights, and
then, in that order:

1. the loss values of all three on one fixed batch (:func:`~.peers.loss_report`);
2. interleaved timing (after the same warm-up for all) of the candidates:

   - ``student``: the plain student's ``loss`` + backward + SGD step;
   - ``teacher``: the teacher's own forward, ``teacher(inputs, mode='tensor')`` under
     ``no_grad`` (what a distiller needs of it);
   - ``teacher_loss_mode`` (MMRazor only): ``teacher(inputs, samples, mode='loss')`` under
     ``no_grad``, which is what ``SingleTeacherDistill`` runs (target assignment and losses
     included);
   - ``ours``: our distiller's ``loss`` + backward + step;
   - ``peer``: the peer's ``loss`` + backward + step;

   with, for each timed call, the process's CPU time (user and kernel, all threads) and minor
   page faults (:func:`~.timing.process_usage`): on a CPU at COCO size a quarter to a third of
   the wall time can be the kernel zero-filling memory the allocator has just mapped, which
   varies between rounds and candidates; user CPU time is the work itself;
3. optionally a ``torch.profiler`` table of one ``ours`` and one ``peer`` step;
4. the peak RSS of each of ``student``, ``ours``, ``peer`` training steps, each measured in a
   fresh process of the same environment that builds only that model (so allocator caches of
   the others do not blur it): the kernel's high-water mark (``VmHWM``), reset after building,
   over ``rss_steps`` steps;
5. optionally (``isolated_iters``) student, teacher, ours and the peer each alone in a process
   of its own, their steps interleaved (:mod:`~.isolated`): no heap shared between them;
   ``isolated_sets`` times with fresh processes.

Run it with ``python -m tools.benchmarks.speed.peer_compare compare --spec JSON --out FILE`` (what
``tools/benchmarks/peer_step.py`` does, with the environment's own Python for each peer).
"""
import argparse
import gc
import json
import os
import os.path as osp
import platform
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional

import torch

from tools.harness.machine import cpu_model

from .calibration_pass import bench_calibration_pass
from .candidates import (DEFAULT_SPEC, MALLOC_VARS, build_models, pair_configs, python_env,
                         setup_process, spec_batch)
from .data import synthetic_batch
from .isolated import time_isolated
from .memory import current_rss_bytes, peak_rss_bytes, reset_peak_rss
from .models import num_classes_of
from .peers import PEERS, loss_report
from .step import TrainStep
from .timing import ratio_summary, summarize, time_interleaved

__all__ = ['CONTROL_CANDIDATES', 'RSS_CANDIDATES', 'compare_with_rss', 'environment', 'main',
           'measure_rss', 'profile_steps', 'run_calibration', 'run_comparison', 'run_worker']

#: With ``spec['control']``: a second ``ours`` and a second ``peer``, built from the same weights
#: in the same process and timed in the same rounds; ours/ours copy and peer/peer copy measure
#: what a model's own place in the process (where its weights and activations sit in memory)
#: does to its step time, the noise floor of ours/peer.
CONTROL_CANDIDATES = ('ours_copy', 'peer_copy')

#: Candidates whose peak RSS is measured, each in its own process.
RSS_CANDIDATES = ('student', 'ours', 'peer')


def environment() -> dict:
    """Versions, threads and machine of this process."""
    import mmcv
    import mmengine

    import mmdet
    info = dict(python=platform.python_version(), torch=torch.__version__,
                mmcv=mmcv.__version__, mmengine=mmengine.__version__, mmdet=mmdet.__version__,
                torch_threads=torch.get_num_threads(), cpu_count=os.cpu_count(),
                machine=platform.machine(), cpu_model=cpu_model(),
                libc=' '.join(platform.libc_ver()),
                malloc_env={k: os.environ[k] for k in MALLOC_VARS if k in os.environ},
                load_average=list(os.getloadavg()))
    try:
        import mmrazor
        info['mmrazor'] = mmrazor.__version__
    except Exception:  # noqa: BLE001 - absent or not importable: not part of this side
        info['mmrazor'] = None
    return info


def profile_steps(fns: Dict[str, callable], top: int = 15) -> Dict[str, dict]:
    """One profiled call of each function: total and the ``top`` operators by self CPU time."""
    from torch.profiler import ProfilerActivity, profile
    out = {}
    for name, fn in fns.items():
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            fn()
        events = prof.key_averages()
        rows = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)
        out[name] = dict(
            total_self_cpu_ms=sum(e.self_cpu_time_total for e in events) / 1e3,
            top=[dict(op=e.key, self_cpu_ms=e.self_cpu_time_total / 1e3, calls=e.count)
                 for e in rows[:top]])
    return out


def run_comparison(peer: str, spec: dict) -> dict:
    """Loss values, interleaved step times and (optionally) profiles of one comparison."""
    setup_process(spec)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        m = build_models(peer, spec, tmp)
        if spec.get('control'):  # the same two distillers again, from the same weights
            copies = build_models(peer, spec, tmp, want=('ours', 'peer'))
            m.update(ours_copy=copies['ours'], peer_copy=copies['peer'])
    build_s = time.perf_counter() - t0
    student, ours = m['student'], m['ours']
    inputs, samples = spec_batch(spec, m['student_cfg'], student.data_preprocessor)
    result = dict(peer=peer, env=environment(), spec=spec, build_s=build_s,
                  student_params=sum(p.numel() for p in student.parameters()),
                  teacher_params=sum(p.numel() for p in ours.teacher.parameters()),
                  padded_input_shape=list(inputs.shape))
    result['losses'] = loss_report(peer, m, inputs, samples)

    device = torch.device('cpu')
    steps = {name: TrainStep(m[name], device, None, spec['lr'])
             for name in ('student', 'ours', 'peer') + CONTROL_CANDIDATES if name in m}
    teacher = ours.teacher

    def teacher_forward():
        with torch.no_grad():
            teacher(inputs, mode='tensor')

    def teacher_loss_mode():
        with torch.no_grad():
            teacher(inputs, samples, mode='loss')

    fns = dict(student=lambda: steps['student'](inputs, samples), teacher=teacher_forward)
    if peer == 'mmrazor':
        fns['teacher_loss_mode'] = teacher_loss_mode
    fns['ours'] = lambda: steps['ours'](inputs, samples)
    fns['peer'] = lambda: steps['peer'](inputs, samples)
    for name in CONTROL_CANDIDATES:
        if name in steps:
            fns[name] = (lambda step=steps[name]: step(inputs, samples))
    if 'ours_copy' in m:  # before any step: each copy is its original, weight for weight
        with torch.no_grad():
            result['control_losses'] = {
                name: float(m[name].parse_losses(m[name].loss(inputs, samples))[0])
                for name in ('ours', 'peer') + CONTROL_CANDIDATES}
    t0 = time.perf_counter()
    usage: Dict[str, List[dict]] = {}
    times = time_interleaved(fns, spec['warmup'], spec['iters'], device, usage=usage)
    result['timing_wall_s'] = time.perf_counter() - t0
    for name, step in steps.items():
        if not torch.isfinite(step.last_loss).all():
            raise FloatingPointError(f'{peer}: the {name} training loss became '
                                     f'{float(step.last_loss)}; lower lr (now {spec["lr"]}).')
    result['times_ms'] = {name: summarize(v) for name, v in times.items()}
    result['samples_ms'] = times
    result['usage'] = {name: {key: summarize([row[key] for row in rows]) for key in rows[0]}
                       for name, rows in usage.items()}
    result['usage_samples'] = usage
    user = {name: [row['user_ms'] for row in rows] for name, rows in usage.items()}
    ratios = dict(
        ours_over_peer=ratio_summary(times['ours'], [times['peer']]),
        ours_over_student_plus_teacher=ratio_summary(
            times['ours'], [times['student'], times['teacher']]),
        peer_over_student_plus_teacher=ratio_summary(
            times['peer'], [times['student'], times['teacher']]),
        ours_over_peer_user_cpu=ratio_summary(user['ours'], [user['peer']]),
        ours_over_student_plus_teacher_user_cpu=ratio_summary(
            user['ours'], [user['student'], user['teacher']]))
    if 'ours_copy' in times:  # the noise floor: one model against its own copy
        ratios['ours_over_ours_copy'] = ratio_summary(times['ours'], [times['ours_copy']])
        ratios['peer_over_peer_copy'] = ratio_summary(times['peer'], [times['peer_copy']])
        ratios['ours_copy_over_peer_copy'] = ratio_summary(times['ours_copy'],
                                                           [times['peer_copy']])
    if peer == 'mmrazor':
        ratios['peer_over_student_plus_teacher_loss_mode'] = ratio_summary(
            times['peer'], [times['student'], times['teacher_loss_mode']])
        ratios['teacher_loss_mode_over_teacher'] = ratio_summary(
            times['teacher_loss_mode'], [times['teacher']])
    result['ratios'] = ratios
    if spec.get('profile'):
        result['profile'] = profile_steps({'ours': fns['ours'], 'peer': fns['peer']})
    result['env']['load_average_end'] = list(os.getloadavg())
    return result


def measure_rss(peer: str, spec: dict, candidate: str) -> dict:
    """Peak RSS of ``spec['rss_steps']`` training steps of one candidate, built alone here.

    Meant to run in a fresh process (``python -m tools.benchmarks.speed.peer_compare rss``).
    """
    if candidate not in RSS_CANDIDATES:
        raise ValueError(f'candidate must be one of {RSS_CANDIDATES}, got {candidate!r}.')
    setup_process(spec)
    with tempfile.TemporaryDirectory() as tmp:
        m = build_models(peer, spec, tmp, want=(candidate, ))
    model = m[candidate]
    inputs, samples = spec_batch(spec, m['student_cfg'], model.data_preprocessor)
    step = TrainStep(model, torch.device('cpu'), None, spec['lr'])
    gc.collect()
    was_reset = reset_peak_rss()
    before = current_rss_bytes()
    for _ in range(spec['rss_steps']):
        step(inputs, samples)
    peak = peak_rss_bytes()
    return dict(candidate=candidate, peak_rss_bytes=peak, rss_before_steps_bytes=before,
                peak_rise_bytes=None if before is None else peak - before,
                peak_reset_after_build=was_reset, steps=spec['rss_steps'])


def run_calibration(spec: dict) -> dict:
    """The calibration pass vs plain inference of the R-101 teacher at the spec's size."""
    from mmdet.registry import MODELS
    setup_process(spec)
    _, t_cfg = pair_configs(spec['models'])
    torch.manual_seed(spec['seed'])
    teacher = MODELS.build(t_cfg)
    teacher.init_weights()
    h, w = spec['size']
    batches = [synthetic_batch(spec['batch'], h, w, num_classes_of(t_cfg),
                               seed=spec['seed'] + 100 + i) for i in range(spec['calib_batches'])]
    out = bench_calibration_pass(teacher, batches, spec['warmup'], spec['calib_repeats'])
    out['env'] = environment()
    return out


def run_worker(python: str, task: str, spec: dict, peer: Optional[str] = None,
               candidate: Optional[str] = None, timeout: Optional[float] = None) -> dict:
    """Run one task of this module in a fresh ``python`` process and return its JSON.

    Args:
        python: The interpreter of the environment to run in.
        task: ``'compare'``, ``'rss'`` or ``'calibration'``.
        spec: The run's spec.
        peer: The comparison (``compare``, ``rss``).
        candidate: ``rss`` only.
        timeout: Seconds before the process is stopped.

    Returns:
        The task's result; raises ``RuntimeError`` with the process's output if it failed.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = osp.join(tmp, 'result.json')
        cmd = [python, '-m', 'tools.benchmarks.speed.peer_compare', task, '--spec',
               json.dumps(spec), '--out', out]
        if peer:
            cmd += ['--peer', peer]
        if candidate:
            cmd += ['--candidate', candidate]
        env = python_env(spec['threads'], spec.get('malloc', 'default'))
        proc = subprocess.run(cmd, env=env, timeout=timeout,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0 or not osp.isfile(out):
            raise RuntimeError(f'{" ".join(cmd[:4])} {task} {peer or ""} {candidate or ""} '
                               f'failed ({proc.returncode}):\n{proc.stdout[-4000:]}')
        with open(out) as f:
            return json.load(f)


def compare_with_rss(python: str, peer: str, spec: dict, rss: bool = True) -> dict:
    """:func:`run_comparison`, each in its own process :func:`measure_rss` of every candidate,
    and (``spec['isolated_iters'] > 0``) :func:`~.isolated.time_isolated`, all in the
    environment of ``python``."""
    result = run_worker(python, 'compare', spec, peer=peer)
    if spec.get('isolated_iters', 0) > 0:
        result['isolated'] = time_isolated(python, peer, spec, spec['isolated_iters'],
                                           sets=spec.get('isolated_sets', 1))
    if rss:
        result['peak_rss'] = {c: run_worker(python, 'rss', spec, peer=peer, candidate=c)
                              for c in RSS_CANDIDATES}
        peaks = {c: r['peak_rss_bytes'] for c, r in result['peak_rss'].items()}
        result['peak_rss_ours_over_peer'] = peaks['ours'] / peaks['peer']
    return result


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point of the worker processes (see the module docstring)."""
    p = argparse.ArgumentParser(description='one task of the peer comparison, as JSON')
    p.add_argument('task', choices=['compare', 'rss', 'calibration'])
    p.add_argument('--spec', required=True, help='the run spec, JSON')
    p.add_argument('--peer', choices=sorted(PEERS))
    p.add_argument('--candidate', choices=RSS_CANDIDATES)
    p.add_argument('--out', required=True, help='where the JSON result is written')
    args = p.parse_args(argv)
    spec = dict(DEFAULT_SPEC, **json.loads(args.spec))
    if args.task in ('compare', 'rss') and args.peer is None:
        p.error(f'{args.task} needs --peer')
    if args.task == 'compare':
        result = run_comparison(args.peer, spec)
    elif args.task == 'rss':
        if args.candidate is None:
            p.error('rss needs --candidate')
        result = measure_rss(args.peer, spec, args.candidate)
    else:
        result = run_calibration(spec)
    with open(args.out, 'w') as f:
        json.dump(result, f, indent=1)


if __name__ == '__main__':
    main(sys.argv[1:])
