"""The teacher's inference settings side by side on this CPU, each against today's fp32 teacher.

For each image size, in a fresh process, GFL R-101 -> R-50 (random weights, nothing downloaded)
with one distiller per ``model.teacher_inference`` setting
(:mod:`tools.benchmarks.speed.teacher_settings`): the teacher forward, the calibration pass, the
KD+cal step, KD+cal step / plain student step and ours / MMDetection's LD step, interleaved; then
the peak RSS of each candidate's training steps, each in a process of its own. MMRazor is
compared only where its environment exists (``tools/benchmarks/setup_peer_env.sh``, then
``peer_step.py --peers mmrazor``); this script says whether it does.

Examples::

    python tools/benchmarks/teacher_step.py                        # 800x1333 and 320x320
    python tools/benchmarks/teacher_step.py --sizes 320x320 --iters 2 --compile
    python tools/benchmarks/teacher_step.py --models tiny --sizes 64x64 --batch 1 --iters 1

Writes ``teacher_step.json`` and ``teacher_step.md`` to ``--out`` (default ``$OUT``, else
``work_dirs/benchmarks``). GPU rows (fp16) are in ``train_step.py``'s ``teacher_inference``
section.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

from tools.benchmarks.peer_step import _size  # noqa: E402
from tools.benchmarks.speed.candidates import pair_configs, python_env, setup_process  # noqa
from tools.benchmarks.speed.teacher_settings import (SETTINGS, bench_settings,  # noqa: E402
                                                     measure_rss, settings_for)
from tools.harness.machine import describe_machine  # noqa: E402

PEER_READY = osp.join(ROOT, 'work_dirs', 'peer_env', 'READY')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--models', default='coco', choices=['coco', 'tiny'],
                   help='coco: stock GFL R-50 / R-101; tiny: shrunk copies (default coco)')
    p.add_argument('--sizes', type=_size, nargs='+', default=[[800, 1333], [320, 320]],
                   metavar='HxW', help='image sizes (default 800x1333 320x320)')
    p.add_argument('--batch', type=int, default=2, help='images per batch (default 2)')
    p.add_argument('--iters', type=int, default=3, help='timed rounds (default 3)')
    p.add_argument('--warmup', type=int, default=1, help='untimed rounds first (default 1)')
    p.add_argument('--threads', type=int, default=1, help='torch threads (default 1)')
    p.add_argument('--settings', nargs='+', choices=sorted(SETTINGS), default=None,
                   help='settings to time besides fp32 (default: all this CPU runs, no compile)')
    p.add_argument('--compile', action='store_true', help='add the torch.compile rows')
    p.add_argument('--rss-steps', type=int, default=2,
                   help='training steps of each peak-RSS process; 0: skip (default 2)')
    p.add_argument('--calib-batches', type=int, default=2, help='calibration batches (default 2)')
    p.add_argument('--calib-repeats', type=int, default=1,
                   help='timed calibration passes; 0: skip (default 1)')
    p.add_argument('--lr', type=float, default=1e-4, help='SGD learning rate (default 1e-4)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default=None, help='output folder (default $OUT, else '
                                               'work_dirs/benchmarks)')
    p.add_argument('--worker', choices=['time', 'rss'], help=argparse.SUPPRESS)
    p.add_argument('--spec', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.out = args.out or os.environ.get('OUT') or osp.join('work_dirs', 'benchmarks')
    return args


def worker(task: str, spec: dict) -> dict:
    """One measurement in this (fresh) process."""
    setup_process(spec)
    student_cfg, teacher_cfg = pair_configs(spec['models'])
    if task == 'rss':
        return measure_rss(student_cfg, teacher_cfg, spec['candidate'], spec['size'],
                           spec['batch'], spec['rss_steps'], spec['lr'], spec['seed'])
    return bench_settings(student_cfg, teacher_cfg, spec['settings'], spec['size'],
                          spec['batch'], torch.device('cpu'), spec['warmup'], spec['iters'],
                          spec['calib_batches'], spec['calib_repeats'], lr=spec['lr'],
                          seed=spec['seed'])


def run_worker(task: str, spec: dict) -> dict:
    """:func:`worker` in a fresh process of this Python; raises with its output if it fails."""
    with tempfile.NamedTemporaryFile('r', suffix='.json') as f:
        cmd = [sys.executable, osp.abspath(__file__), '--worker', task, '--spec',
               json.dumps(dict(spec, result=f.name))]
        proc = subprocess.run(cmd, env=python_env(spec['threads']), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f'{task} worker failed ({proc.returncode}):\n{proc.stdout[-4000:]}')
        return json.load(f)


def markdown(report: dict) -> str:
    """One table per size: each setting against the fp32 teacher, the student and LD."""
    lines = [f"Machine: {report['machine']}. {report['mmrazor']}", '']
    for key, r in report['runs'].items():
        rss = report['peak_rss'].get(key, {})
        mib = (lambda c: f"{rss[c]['peak_rss_bytes'] / 2**20:.0f}" if c in rss else '-')
        lines += [f"### {key}, batch {r['batch']}: plain student step "
                  f"{r['student_step_ms']:.0f} ms (peak RSS {mib('student')} MiB), "
                  f"MMDetection LD step {r['mmdet_ld_step_ms']:.0f} ms "
                  f"(peak RSS {mib('mmdet_ld')} MiB)", '',
                  '| teacher_inference | teacher fwd ms | x fp32 | calibration pass ms | x fp32 '
                  '| KD+cal step ms | x fp32 | KD+cal / student | KD+cal / LD | peak RSS MiB '
                  '| max abs change of logits/T |', '|---|---|---|---|---|---|---|---|---|---|---|']
        for name, s in r['settings'].items():
            cal = s.get('calibration_pass_ms')
            lines.append(
                f"| {name} | {s['teacher_forward_ms']:.0f} | {s['teacher_forward_over_fp32']:.3f} "
                f"| {'-' if cal is None else f'{cal:.0f}'} "
                f"| {s.get('calibration_pass_over_fp32', float('nan')):.3f} "
                f"| {s['kd_step_ms']:.0f} | {s['kd_step_over_fp32']:.3f} "
                f"| {s['kd_step_over_student_step']:.3f} "
                f"| {s['kd_step_over_mmdet_ld_step']:.3f} | {mib(name)} "
                f"| {s['max_abs_change_scaled_logits']:.3g} |")
        lines.append('')
    return '\n'.join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.worker:
        spec = json.loads(args.spec)
        result = worker(args.worker, spec)
        with open(spec['result'], 'w') as f:
            json.dump(result, f)
        return result
    settings = settings_for(torch.device('cpu'), args.settings, args.compile)
    spec_base = dict(models=args.models, batch=args.batch, warmup=args.warmup, iters=args.iters,
                     threads=args.threads, calib_batches=args.calib_batches,
                     calib_repeats=args.calib_repeats, rss_steps=args.rss_steps, lr=args.lr,
                     seed=args.seed, settings=settings)
    torch.set_num_threads(args.threads)
    report = dict(args={k: v for k, v in vars(args).items() if k not in ('worker', 'spec')},
                  machine=describe_machine(), runs={}, peak_rss={},
                  mmrazor=('MMRazor: its environment exists; compare with `python '
                           'tools/benchmarks/peer_step.py --peers mmrazor`.'
                           if osp.isfile(PEER_READY) else
                           'MMRazor: not run, no MMRazor environment on this machine '
                           '(tools/benchmarks/setup_peer_env.sh builds one).'))
    os.makedirs(args.out, exist_ok=True)
    for size in args.sizes:
        key = f'{size[0]}x{size[1]}'
        spec = dict(spec_base, size=size)
        print(f'{key}: timing {list(settings)}...', flush=True)
        report['runs'][key] = run_worker('time', spec)
        if args.rss_steps > 0:
            report['peak_rss'][key] = {c: run_worker('rss', dict(spec, candidate=c))
                                       for c in ['student', 'mmdet_ld', *settings]}
        with open(osp.join(args.out, 'teacher_step.json'), 'w') as f:
            json.dump(report, f, indent=1)
    text = markdown(report)
    with open(osp.join(args.out, 'teacher_step.md'), 'w') as f:
        f.write(text + '\n')
    print(text)
    return report


if __name__ == '__main__':
    main()
