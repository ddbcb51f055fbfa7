"""Ours against a peer's own distiller, in one process: step times, loss values, peak RSS.

One *comparison* (:data:`~mmkdcal.speed.peers.PEERS`) builds, from one seed, the plain
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
3. against LD, the loss part alone (:func:`head_loss_fns`: each candidate's losses and their
   backward from the same head outputs), interleaved, ``HEAD_LOSS_ROUNDS`` rounds per step
   round: what each distiller's loss adds to the student's;
4. optionally a ``torch.profiler`` table of one ``ours`` and one ``peer`` step;
5. the peak RSS of each of ``student``, ``ours``, ``peer`` training steps, each measured in a
   fresh process of the same environment that builds only that model (so allocator caches of
   the others do not blur it): the kernel's high-water mark (``VmHWM``), reset after building,
   over ``rss_steps`` steps;
6. optionally (``isolated_iters``) student, teacher, ours and the peer each alone in a process
   of its own, their steps interleaved (:mod:`~.isolated`): no heap shared between them;
   ``isolated_sets`` times with fresh processes.

Run it with ``python -m mmkdcal.speed.peer_compare compare --spec JSON --out FILE`` (what
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
from typing import Dict, List, Optional, Tuple

import torch

from .calibration_pass import bench_calibration_pass
from .data import synthetic_batch
from .memory import current_rss_bytes, peak_rss_bytes, reset_peak_rss
from .models import (PAIRS, build_distiller, build_student, load_model_cfg, num_classes_of,
                     save_random_teacher, shrink_model_cfg)
from .peers import PEERS, build_mmdet_ld, build_mmrazor_distill, loss_report, ours_losses
from .step import TrainStep
from .timing import ratio_summary, summarize, time_interleaved

__all__ = ['CONTROL_CANDIDATES', 'DEFAULT_SPEC', 'HEAD_LOSS_ROUNDS', 'MALLOC_MODES',
           'RSS_CANDIDATES', 'build_models', 'environment', 'head_loss_fns', 'main',
           'measure_rss', 'pair_configs', 'profile_steps', 'run_calibration', 'run_comparison']

#: With ``spec['control']``: a second ``ours`` and a second ``peer``, built from the same weights
#: in the same process and timed in the same rounds; ours/ours copy and peer/peer copy measure
#: what a model's own place in the process (where its weights and activations sit in memory)
#: does to its step time, the noise floor of ours/peer.
CONTROL_CANDIDATES = ('ours_copy', 'peer_copy')

#: Rounds of the (short) loss-part timing against LD per round of step timing.
HEAD_LOSS_ROUNDS = 5

#: The fields of a spec (what every process of one run agrees on) and their defaults.
DEFAULT_SPEC = dict(models='coco', size=[800, 1333], batch=2, warmup=1, iters=3, threads=1,
                    seed=0, lr=1e-4, rss_steps=2, profile=False, calib_batches=2,
                    calib_repeats=2, malloc='default', isolated_iters=0,
                    isolated_sets=1, control=False)
#: glibc malloc settings of the worker processes (environment variables). ``default``: glibc's
#: own, under which blocks above 32 MiB (most activations at COCO size) are mapped for each
#: allocation and unmapped when freed, so every step page-faults them in again (the kernel
#: zero-fills each page); ``keep``: no mapped blocks and no trimming, so freed memory stays in
#: the heap and later steps reuse it (RSS stays at its high-water mark). torch's 64-byte aligned
#: blocks do not always fit a freed block of the same size (the alignment slack), so under
#: ``keep`` the heap grows over the first steps until each size finds a fit: give it warm-up.
MALLOC_MODES: Dict[str, Dict[str, str]] = {
    'default': {},
    'keep': {'MALLOC_MMAP_MAX_': '0', 'MALLOC_TRIM_THRESHOLD_': str(1 << 40)},
}
_MALLOC_VARS = ('MALLOC_MMAP_MAX_', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_MMAP_THRESHOLD_',
                'MALLOC_TOP_PAD_', 'MALLOC_ARENA_MAX', 'GLIBC_TUNABLES')
#: Candidates whose peak RSS is measured, each in its own process.
RSS_CANDIDATES = ('student', 'ours', 'peer')


def pair_configs(models: str) -> Tuple[dict, dict]:
    """The GFL R-50 student and R-101 teacher model dicts (``'coco'``), or shrunk (``'tiny'``)."""
    if models not in ('coco', 'tiny'):
        raise ValueError(f"models must be 'coco' or 'tiny', got {models!r}.")
    student, teacher = (load_model_cfg(name) for name in PAIRS['gfl'])
    if models == 'tiny':
        student, teacher = shrink_model_cfg(student), shrink_model_cfg(teacher)
    return student, teacher


def environment() -> dict:
    """Versions, threads and machine of this process."""
    import mmcv
    import mmdet
    import mmengine
    info = dict(python=platform.python_version(), torch=torch.__version__,
                mmcv=mmcv.__version__, mmengine=mmengine.__version__, mmdet=mmdet.__version__,
                torch_threads=torch.get_num_threads(), cpu_count=os.cpu_count(),
                machine=platform.machine(), cpu_model=_cpu_model(),
                libc=' '.join(platform.libc_ver()),
                malloc_env={k: os.environ[k] for k in _MALLOC_VARS if k in os.environ},
                load_average=list(os.getloadavg()))
    try:
        import mmrazor
        info['mmrazor'] = mmrazor.__version__
    except Exception:  # noqa: BLE001 - absent or not importable: not part of this side
        info['mmrazor'] = None
    return info


def _cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _setup(spec: dict) -> None:
    import mmkdcal  # noqa: F401  (registers the distillers and losses)
    from mmdet.utils import register_all_modules
    from mmengine.logging import MMLogger
    register_all_modules(init_default_scope=True)
    MMLogger.get_current_instance().setLevel('WARNING')  # no per-parameter init_weights lines
    torch.set_num_threads(spec['threads'])


def _batch(spec: dict, student_cfg: dict, preprocessor) -> Tuple[torch.Tensor, list]:
    h, w = spec['size']
    raw = synthetic_batch(spec['batch'], h, w, num_classes_of(student_cfg), seed=spec['seed'])
    data = preprocessor(raw, True)
    return data['inputs'], data['data_samples']


def build_models(peer: str, spec: dict, tmp: str, want=('student', 'ours', 'peer')) -> dict:
    """Build the wanted models of one comparison, from the spec's seed.

    Args:
        peer: A key of :data:`PEERS`.
        spec: The run's spec (``models``, ``seed``).
        tmp: Folder for the teacher checkpoint.
        want: Which of ``student``, ``ours``, ``peer`` to return.

    Returns:
        Name -> model, all in train mode, with the same student weights (seed + 1) and the same
        teacher checkpoint (seed); plus ``student_cfg``/``teacher_cfg``.
    """
    s_cfg, t_cfg = pair_configs(spec['models'])
    want = set(want)
    out = dict(student_cfg=s_cfg, teacher_cfg=t_cfg)
    ckpt = None
    if want & {'ours', 'peer'}:
        ckpt = save_random_teacher(t_cfg, osp.join(tmp, 'teacher.pth'), spec['seed'])
        gc.collect()
    student = build_student(s_cfg, spec['seed'] + 1)
    state = student.state_dict()
    if 'ours' in want:
        out['ours'] = build_distiller(s_cfg, t_cfg, ckpt, ours_losses(peer), 1.0, state)
    if 'peer' in want:
        if peer == 'mmdet_ld':
            out['peer'] = build_mmdet_ld(s_cfg, t_cfg, ckpt, state)
        else:
            out['peer'] = build_mmrazor_distill(s_cfg, t_cfg, ckpt, state,
                                                num_levels=s_cfg['neck']['num_outs'])
    if 'student' in want:
        out['student'] = student
    else:
        del student, state
    gc.collect()
    return out


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


def head_loss_fns(models: dict, inputs: torch.Tensor, samples: list) -> Dict[str, callable]:
    """The loss part of one step of each candidate, from the same head outputs (vs LD).

    Backbone, neck, head forward and the teacher forward are run once, untimed; each function
    computes, from fresh leaf copies of the student's head outputs, that candidate's losses and
    their backward to those outputs:

    - ``student``: ``GFLHead.loss_by_feat`` (target assignment, QFL, GIoU, DFL);
    - ``ours``: the same, plus our distillation terms (flattening, the teacher's max class
      probability as weights, the configured KD losses on every location);
    - ``peer``: ``LDHead.loss_by_feat`` with the teacher's box distributions (the GFL losses
      and ``loss_ld`` on the ATSS positives).

    The differences to ``student`` are what each distiller's loss adds to a step. Each function
    returns its total loss (detached), which equals that model's full ``loss`` on the batch.
    """
    from mmdet.models.utils import unpack_gt_instances
    student, ours, peer = models['student'], models['ours'], models['peer']
    gts, ignore, metas = unpack_gt_instances(samples)
    needed = set(ours.distill_inputs.values())
    with torch.no_grad():
        s_cls, s_reg = student.bbox_head(student.extract_feat(inputs))
    teacher_out = ours._teacher_before_student(inputs, needed)  # what ours.loss() computes
    t_outs = teacher_out[1]

    def leaves():
        return ([c.detach().clone().requires_grad_() for c in s_cls],
                [r.detach().clone().requires_grad_() for r in s_reg])

    def backward(model, losses):
        loss, _ = model.parse_losses(losses)
        loss.backward()
        return loss.detach()

    def student_fn():
        cls, reg = leaves()
        return backward(student, student.bbox_head.loss_by_feat(cls, reg, gts, metas, ignore))

    def ours_fn():
        cls, reg = leaves()
        losses = ours.bbox_head.loss_by_feat(cls, reg, gts, metas, ignore)
        batches = ours._distill_batches({'head': [(cls, reg)]}, inputs, samples, needed,
                                        teacher_out)
        return backward(ours, ours.add_distill_terms(losses, batches))

    def peer_fn():
        cls, reg = leaves()
        return backward(peer, peer.bbox_head.loss_by_feat(cls, reg, gts, metas, t_outs[1],
                                                          ignore))

    return dict(student=student_fn, ours=ours_fn, peer=peer_fn)


def run_comparison(peer: str, spec: dict) -> dict:
    """Loss values, interleaved step times and (optionally) profiles of one comparison."""
    _setup(spec)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        m = build_models(peer, spec, tmp)
        if spec.get('control'):  # the same two distillers again, from the same weights
            copies = build_models(peer, spec, tmp, want=('ours', 'peer'))
            m.update(ours_copy=copies['ours'], peer_copy=copies['peer'])
    build_s = time.perf_counter() - t0
    student, ours = m['student'], m['ours']
    inputs, samples = _batch(spec, m['student_cfg'], student.data_preprocessor)
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
    if peer == 'mmdet_ld':
        head = time_interleaved(head_loss_fns(m, inputs, samples), spec['warmup'],
                                HEAD_LOSS_ROUNDS * spec['iters'], device)
        result['head_loss_ms'] = {name: summarize(v) for name, v in head.items()}
        result['head_loss_samples_ms'] = head
        ratios['head_loss_ours_over_peer'] = ratio_summary(head['ours'], [head['peer']])
    result['ratios'] = ratios
    if spec.get('profile'):
        result['profile'] = profile_steps({'ours': fns['ours'], 'peer': fns['peer']})
    result['env']['load_average_end'] = list(os.getloadavg())
    return result


def measure_rss(peer: str, spec: dict, candidate: str) -> dict:
    """Peak RSS of ``spec['rss_steps']`` training steps of one candidate, built alone here.

    Meant to run in a fresh process (``python -m mmkdcal.speed.peer_compare rss``).
    """
    if candidate not in RSS_CANDIDATES:
        raise ValueError(f'candidate must be one of {RSS_CANDIDATES}, got {candidate!r}.')
    _setup(spec)
    with tempfile.TemporaryDirectory() as tmp:
        m = build_models(peer, spec, tmp, want=(candidate, ))
    model = m[candidate]
    inputs, samples = _batch(spec, m['student_cfg'], model.data_preprocessor)
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
    _setup(spec)
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


def _python_env(threads: int, malloc: str = 'default') -> dict:
    """Environment of child processes: this mmkdcal first on the path, the same threads, the
    malloc settings of :data:`MALLOC_MODES` (and none inherited from this process)."""
    import mmkdcal
    if malloc not in MALLOC_MODES:
        raise ValueError(f'malloc must be one of {sorted(MALLOC_MODES)}, got {malloc!r}.')
    root = osp.dirname(osp.dirname(osp.abspath(mmkdcal.__file__)))
    env = {k: v for k, v in os.environ.items() if k not in _MALLOC_VARS}
    env.update(MALLOC_MODES[malloc])
    env['PYTHONPATH'] = os.pathsep.join([root] + [p for p in env.get('PYTHONPATH', '').split(
        os.pathsep) if p and osp.abspath(p) != root])
    env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
    return env


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
        cmd = [python, '-m', 'mmkdcal.speed.peer_compare', task, '--spec', json.dumps(spec),
               '--out', out]
        if peer:
            cmd += ['--peer', peer]
        if candidate:
            cmd += ['--candidate', candidate]
        env = _python_env(spec['threads'], spec.get('malloc', 'default'))
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
    from .isolated import time_isolated
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
