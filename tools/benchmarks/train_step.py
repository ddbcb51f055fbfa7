"""Training-step cost of KD from a calibrated teacher on stock MMDetection pairs (GPU or CPU).

A thin command line over :mod:`tools.benchmarks.speed.detector_steps` (see its docstring for what
is timed): student step, teacher forward and KD+cal step at fp32 and AMP, MMDetection's built-in
KD (LD) on the same GFL pair, peak CUDA memory, the teacher inference settings (fp16 on CUDA)
and the calibration pass.

Examples::

    # GPU (the figures in tools/benchmarks/README.md)
    python tools/benchmarks/train_step.py --batch 8 --size 800 1333 --warmup 3 --iters 10
    # toy CPU run (what the tests run): shrunk models, seconds
    python tools/benchmarks/train_step.py --device cpu --tiny --size 128 128 --batch 1 \\
        --iters 1 --warmup 1 --models gfl --amp-dtype bfloat16

All numbers go to ``<out>/train_step.json`` (``--out``, default ``$OUT`` if set, else
``work_dirs/benchmarks``); markdown tables headed by the device name are printed. A section that
fails records its error in the JSON and the script exits non-zero.
"""
import argparse
import json
import os
import os.path as osp
import platform
import sys
import time

import torch

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from tools.benchmarks.speed.detector_steps import (bench_model, failed_sections,  # noqa: E402
                                                   markdown)
from tools.benchmarks.speed.models import PAIRS  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                   help='cuda, cuda:N or cpu (default: cuda if available)')
    p.add_argument('--models', nargs='+', default=['gfl', 'retinanet'],
                   choices=sorted(PAIRS), help='detector pairs (default: gfl retinanet)')
    p.add_argument('--two-stage', action='store_true',
                   help='also benchmark Faster R-CNN R-101 -> R-50')
    p.add_argument('--tiny', action='store_true',
                   help='shrink both models (same depth, widths 8/16, 3 classes): toy runs')
    p.add_argument('--batch', type=int, default=8, help='images per batch (default 8)')
    p.add_argument('--size', type=int, nargs=2, default=[800, 1333], metavar=('H', 'W'),
                   help='image height and width (default 800 1333)')
    p.add_argument('--iters', type=int, default=10, help='timed rounds (default 10)')
    p.add_argument('--warmup', type=int, default=3, help='untimed rounds first (default 3)')
    p.add_argument('--precisions', nargs='+', default=['fp32', 'amp'], choices=['fp32', 'amp'],
                   help='fp32 and/or AMP (autocast + GradScaler) (default: both)')
    p.add_argument('--amp-dtype', default='float16', choices=['float16', 'bfloat16'],
                   help='autocast dtype of the AMP step (default float16; bfloat16 for quick '
                        'CPU runs, where float16 backward is very slow)')
    p.add_argument('--temperature', type=float, default=2.0,
                   help='fixed calibration temperature of the teacher (default 2.0)')
    p.add_argument('--ld', action='store_true', help='GFL: add LD on the box distributions')
    p.add_argument('--no-mmdet-ld', action='store_true',
                   help="GFL: skip MMDetection's built-in KD (LDHead) peer")
    p.add_argument('--lr', type=float, default=1e-3, help='SGD learning rate (default 1e-3)')
    p.add_argument('--calib-batches', type=int, default=4,
                   help='batches in the calibration-pass comparison (default 4)')
    p.add_argument('--calib-repeats', type=int, default=3,
                   help='timed passes over them (default 3)')
    p.add_argument('--threads', type=int, default=None, help='torch.set_num_threads (CPU)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default=None,
                   help='output folder of train_step.json (default $OUT, else '
                        'work_dirs/benchmarks)')
    args = p.parse_args(argv)
    if args.two_stage and 'faster_rcnn' not in args.models:
        args.models.append('faster_rcnn')
    for key in ('batch', 'iters', 'calib_batches', 'calib_repeats'):
        if getattr(args, key) < 1:
            p.error(f'--{key.replace("_", "-")} must be >= 1, got {getattr(args, key)}')
    if args.warmup < 0:
        p.error(f'--warmup must be >= 0, got {args.warmup}')
    if min(args.size) < 32:
        p.error(f'--size must be at least 32 x 32 (the FPN strides), got {args.size}')
    if args.temperature <= 0:
        p.error(f'--temperature must be > 0, got {args.temperature}')
    if args.ld and 'gfl' not in args.models:
        p.error('--ld adds LD on GFL box distributions: add gfl to --models or drop --ld')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        p.error('--device cuda: no CUDA device is visible; use --device cpu for a toy run')
    args.out = args.out or os.environ.get('OUT') or osp.join('work_dirs', 'benchmarks')
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    import mmcv
    from mmengine.logging import MMLogger

    import mmdet
    from mmdet.utils import register_all_modules

    import mmkdcal  # noqa: F401  (registers the distillers and losses)
    register_all_modules(init_default_scope=True)
    MMLogger.get_current_instance().setLevel('WARNING')  # no per-parameter init_weights lines
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == 'cuda':
        if device.index is not None:
            torch.cuda.set_device(device)
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = f'CPU ({platform.machine()}, {torch.get_num_threads()} torch threads)'
    report = dict(device=str(device), device_name=device_name, torch=torch.__version__,
                  mmcv=mmcv.__version__, mmdet=mmdet.__version__,
                  cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
                  num_threads=torch.get_num_threads(), args=vars(args), models={})
    print(f'device: {device_name}; torch {torch.__version__}, mmcv {mmcv.__version__}, '
          f'mmdet {mmdet.__version__}; torch threads {torch.get_num_threads()}', flush=True)
    os.makedirs(args.out, exist_ok=True)
    path = osp.join(args.out, 'train_step.json')
    for name in args.models:
        t0 = time.perf_counter()
        report['models'][name] = bench_model(name, args, device)
        report['models'][name]['wall_s'] = time.perf_counter() - t0
        print(f"{name}: done in {report['models'][name]['wall_s']:.1f} s", flush=True)
        with open(path, 'w') as f:  # after every model, so a cut-off run keeps what it measured
            json.dump(report, f, indent=2)
    print(markdown(report))
    print(f'\nwrote {path}')
    return report


if __name__ == '__main__':
    failed = failed_sections(main())
    if failed:
        sys.exit(f'failed sections (see their "error" in the JSON): {failed}')
