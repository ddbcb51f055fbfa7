"""Ours against the peers' own distillers, side by side on this CPU: step time, peak RSS, losses.

A thin command line over :mod:`tools.benchmarks.speed.peer_compare`. For each image size and
each peer it runs one comparison in a fresh process of the peer's environment:

- ``mmdet_ld``: MMDetection's ``KnowledgeDistillationSingleStageDetector`` + ``LDHead`` vs our
  distiller with ``LDLoss``, in this environment;
- ``mmrazor``: MMRazor 1.0's ``SingleTeacherDistill`` + ``ConfigurableDistiller`` (PKD on the
  FPN + softmax KL on the class logits) vs our distiller with ``PKDLoss`` + ``BinaryKDLoss``
  (GFL's class logits are sigmoid scores; our distiller refuses a softmax KL on them), in the
  benchmark-only environment built by ``tools/benchmarks/setup_peer_env.sh`` (torch 1.13.1,
  which MMRazor imports under); our side runs there too, so both share one torch.

Both on GFL R-101 -> R-50 (random weights, nothing downloaded), the same threads and warm-up for
every candidate, interleaved rounds, medians and spread, and per step the CPU time (user and
kernel) and page faults of the process. Then the calibration pass against plain inference of
the teacher at the largest size. Targets: ours <= 1.0x each peer; ours <= 1.05x (student step +
teacher forward) at COCO size; calibration pass >= 0.9x plain inference.

On a CPU at COCO size, glibc's malloc unmaps every freed block above 32 MiB, so each step
page-faults its activations in again; the kernel's share of the wall time (a quarter to a
third, here) varies with the order of allocations, which differs between distillers doing the
same work.
Every comparison also times the four candidates each alone in a process of its own, the steps
interleaved between the processes (``--isolated-iters``,
:mod:`tools.benchmarks.speed.isolated`): no heap shared between distillers, as when a user
trains one; ``--isolated-sets K`` repeats that K times with fresh processes and pools the rounds
(a process's own memory layout then varies between sets: worth it for the short steps of small
sizes). ``--control`` adds a second copy of ours and of the peer to the one-process timing: how
far a model is from its own copy is how far ours/peer can be from 1 without a difference in
work.
``--malloc default keep`` runs every comparison twice, the second time with freed memory kept
in the heap (``MALLOC_MMAP_MAX_=0``, no trimming), where the wall time is the work.

Examples::

    python tools/benchmarks/peer_step.py                          # 320x320 and 800x1333, batch 2
    python tools/benchmarks/peer_step.py --sizes 800x1333 --profile
    python tools/benchmarks/peer_step.py --sizes 800x1333 --malloc default keep --warmup 2
    python tools/benchmarks/peer_step.py --models tiny --sizes 64x64 --batch 1 --iters 1  # toy

Writes ``peer_step.json`` and ``peer_step.md`` (the tables printed) to ``--out`` (default
``$OUT`` if set, else ``work_dirs/benchmarks``). A comparison that fails records its error and
the script exits non-zero; a missing peer environment is reported as not run, with the command
that builds it.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time
import traceback

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from tools.benchmarks.speed.candidates import DEFAULT_SPEC, MALLOC_MODES  # noqa: E402
from tools.benchmarks.speed.peer_compare import compare_with_rss, run_worker  # noqa: E402
from tools.benchmarks.speed.peer_report import markdown  # noqa: E402
from tools.benchmarks.speed.peers import PEERS  # noqa: E402

SETUP = 'bash tools/benchmarks/setup_peer_env.sh'


def _size(text: str):
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'a size is HxW, e.g. 800x1333; got {text!r}')
    if min(h, w) < 64:
        raise argparse.ArgumentTypeError(f'sizes must be at least 64x64 (GFL strides up to 128 '
                                         f'with padding), got {text!r}')
    return [h, w]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--models', default='coco', choices=['coco', 'tiny'],
                   help='coco: stock GFL R-50 student / R-101 teacher; tiny: shrunk copies '
                        '(toy runs) (default coco)')
    p.add_argument('--sizes', type=_size, nargs='+', default=[[320, 320], [800, 1333]],
                   metavar='HxW', help='image sizes (default 320x320 800x1333)')
    p.add_argument('--batch', type=int, default=2, help='images per batch (default 2)')
    p.add_argument('--iters', type=int, default=3, help='timed rounds (default 3)')
    p.add_argument('--warmup', type=int, default=1, help='untimed rounds first (default 1)')
    p.add_argument('--threads', type=int, default=1,
                   help='torch threads of every process, both sides (default 1)')
    p.add_argument('--peers', nargs='+', default=sorted(PEERS), choices=sorted(PEERS),
                   help='peers to compare with (default: all)')
    p.add_argument('--peer-env', default=osp.join(ROOT, 'work_dirs', 'peer_env'),
                   help=f'the MMRazor environment (default work_dirs/peer_env; built by {SETUP})')
    p.add_argument('--malloc', nargs='+', default=['default'], choices=sorted(MALLOC_MODES),
                   help="glibc malloc settings of the worker processes, each a run of its own: "
                        "'default' (glibc's; activations above 32 MiB are unmapped when freed "
                        "and page-faulted in again at every step), 'keep' (freed memory stays "
                        "in the heap; the wall time is then the work, not the kernel refilling "
                        "pages) (default: default)")
    p.add_argument('--control', action='store_true',
                   help='also time a second copy of ours and of the peer (same weights, same '
                        'process, same rounds): ours/ours copy and peer/peer copy are the noise '
                        'floor of ours/peer')
    p.add_argument('--isolated-iters', type=int, default=3,
                   help='timed rounds of every candidate each alone in its own process '
                        '(after --warmup rounds), the headline ours/peer; 0: skip (default 3)')
    p.add_argument('--isolated-sets', type=int, default=1,
                   help='how many times the isolated timing runs, each time with fresh worker '
                        'processes (their rounds pooled) (default 1)')
    p.add_argument('--rss-steps', type=int, default=2,
                   help='training steps of each peak-RSS measurement; 0: skip (default 2)')
    p.add_argument('--profile', action='store_true',
                   help='also profile one step of ours and of the peer (torch.profiler)')
    p.add_argument('--calib-batches', type=int, default=2,
                   help='batches of the calibration-pass comparison (default 2)')
    p.add_argument('--calib-repeats', type=int, default=2,
                   help='timed passes over them (default 2); 0: skip the calibration pass')
    p.add_argument('--lr', type=float, default=1e-4,
                   help='SGD learning rate (default 1e-4; at 1e-3 the MMRazor step diverges '
                        'to NaN within 4 steps at 800x1333, its softmax KL being ~2700 on '
                        'random weights)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default=None,
                   help='output folder (default $OUT, else work_dirs/benchmarks)')
    args = p.parse_args(argv)
    for key in ('batch', 'iters', 'threads', 'isolated_sets'):
        if getattr(args, key) < 1:
            p.error(f'--{key.replace("_", "-")} must be >= 1, got {getattr(args, key)}')
    for key in ('warmup', 'isolated_iters', 'rss_steps', 'calib_repeats', 'calib_batches'):
        if getattr(args, key) < 0:
            p.error(f'--{key.replace("_", "-")} must be >= 0, got {getattr(args, key)}')
    if args.isolated_sets > 1 and args.isolated_iters == 0:
        p.error(f'--isolated-sets {args.isolated_sets} repeats the isolated timing, which '
                '--isolated-iters 0 skips: give --isolated-iters N (N >= 1) or drop '
                '--isolated-sets')
    args.out = args.out or os.environ.get('OUT') or osp.join('work_dirs', 'benchmarks')
    return args


def peer_python(env_dir: str):
    """The Python of the peer environment, or None (with the reason) when it is not built."""
    python = osp.join(env_dir, 'bin', 'python')
    if not osp.isfile(osp.join(env_dir, 'READY')):  # written by the setup script when complete
        return None, f'not run: no complete peer environment at {env_dir}; build it with {SETUP}'
    return python, None


def _run_one(report: dict, key: str, peer: str, python_or_why, spec: dict, rss: bool) -> None:
    """One comparison (and its peak RSS processes) into ``report['runs'][key][peer]``."""
    python, why_not = python_or_why
    if python is None:
        report['runs'][key][peer] = dict(skipped=why_not)
        print(f'{key} {peer}: {why_not}', flush=True)
        return
    t0 = time.perf_counter()
    try:
        result = compare_with_rss(python, peer, spec, rss=rss)
    except Exception as exc:  # noqa: BLE001 - recorded, printed, exit non-zero
        result = dict(error=f'{type(exc).__name__}: {exc}')
        report['errors'].append(f'{key}.{peer}')
        print(f'ERROR in {key} {peer}:\n{traceback.format_exc()}', flush=True)
    result['wall_s'] = time.perf_counter() - t0
    report['runs'][key][peer] = result
    print(f"{key} {peer}: done in {result['wall_s']:.0f} s", flush=True)


def main(argv=None) -> dict:
    args = parse_args(argv)
    spec_base = dict(DEFAULT_SPEC, models=args.models, batch=args.batch, warmup=args.warmup,
                     iters=args.iters, threads=args.threads, seed=args.seed, lr=args.lr,
                     rss_steps=args.rss_steps, profile=args.profile,
                     isolated_iters=args.isolated_iters, isolated_sets=args.isolated_sets,
                     control=args.control,
                     calib_batches=args.calib_batches, calib_repeats=args.calib_repeats)
    pythons = {'main': (sys.executable, None), 'peer': peer_python(args.peer_env)}
    report = dict(args=vars(args), runs={}, errors=[])
    os.makedirs(args.out, exist_ok=True)
    path = osp.join(args.out, 'peer_step.json')

    def save():
        with open(path, 'w') as f:
            json.dump(report, f, indent=1)

    for size in args.sizes:
        for malloc in dict.fromkeys(args.malloc):
            key = f'{size[0]}x{size[1]}' + ('' if malloc == 'default' else f' malloc={malloc}')
            report['runs'][key] = {}
            for peer in args.peers:
                _run_one(report, key, peer, pythons[PEERS[peer]],
                         dict(spec_base, size=size, malloc=malloc), args.rss_steps > 0)
                save()
    if args.calib_repeats > 0 and args.calib_batches > 0:
        size = max(args.sizes, key=lambda s: s[0] * s[1])
        t0 = time.perf_counter()
        try:
            report['calibration_pass'] = run_worker(sys.executable, 'calibration',
                                                    dict(spec_base, size=size))
            report['calibration_pass']['size'] = size
        except Exception as exc:  # noqa: BLE001
            report['calibration_pass'] = dict(error=f'{type(exc).__name__}: {exc}')
            report['errors'].append('calibration_pass')
            print(f'ERROR in the calibration pass:\n{traceback.format_exc()}', flush=True)
        print(f'calibration pass: done in {time.perf_counter() - t0:.0f} s', flush=True)
    save()
    text = markdown(report)
    with open(osp.join(args.out, 'peer_step.md'), 'w') as f:
        f.write(text + '\n')
    print(text)
    print(f'\nwrote {path}')
    return report


if __name__ == '__main__':
    failed = main()['errors']
    if failed:
        sys.exit(f'failed (see their "error" in the JSON): {failed}')
