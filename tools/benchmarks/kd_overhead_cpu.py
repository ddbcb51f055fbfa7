"""CPU check of the distiller's own overhead: is a KD+cal step just student step + teacher forward?

Three things are timed side by side in one process, interleaved round by round (A B C, C B A,
...) after a warm-up, median of ``--iters`` rounds, with a fixed number of torch threads:

(a) ``student_step``: the stock ``GFL`` student: forward, loss, backward, SGD step;
(b) ``teacher_forward``: the teacher's ``extract_feat`` + ``bbox_head`` under ``no_grad`` (what
    :meth:`DistillSingleStageDetector.teacher_forward` runs);
(c) ``kd_step``: :class:`~mmkdcal.models.distillers.DistillSingleStageDetector` with the same
    student weights as (a), a fixed calibration temperature, ``BinaryKDLoss`` on ``'cls'`` (and
    ``LDLoss`` on ``'reg'`` with ``--ld``): forward, loss, backward, SGD step;
(d) ``distill_loss``: the distiller's own work alone: :meth:`distill_loss` forward + backward on
    fixed head outputs (what (c) adds on top of (a) + (b)).

It prints each time in ms and ``kd / (student + teacher)`` (ratio of the medians; also the
median of the per-round ratios, which cancels load changes between rounds): 1.0 means the
distiller adds nothing beyond running both networks; the target is <= 1.10. The student has a
ResNet-18 layout and the teacher a ResNet-50 layout, both with a GFL head over 80 classes (FPN
and head width ``--channels``). With ``--profile`` the KD step is also profiled
(torch.profiler, operators by self CPU time).

Examples::

    python tools/benchmarks/kd_overhead_cpu.py                 # ~1-2 min on a 2-core CPU
    python tools/benchmarks/kd_overhead_cpu.py --ld --profile
    python tools/benchmarks/kd_overhead_cpu.py --quick         # seconds: tiny models, for tests

Numbers are written to ``<out>/kd_overhead_cpu.json`` (``--out``, default ``$OUT`` if set,
else ``work_dirs/benchmarks``).
"""
import argparse
import json
import os
import os.path as osp
import platform
import sys
import tempfile
import time

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

from train_step import (TrainStep, build_pair, distill_losses_for, median,  # noqa: E402
                        synthetic_batch, time_interleaved)

MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]


def gfl_config(depth: int, base_channels: int, channels: int, stacked_convs: int,
               num_classes: int) -> dict:
    """A GFL detector (stock head and training settings) on a ResNet of the given layout.

    Args:
        depth: ResNet depth (18: basic blocks, 50: bottlenecks).
        base_channels: Width of the ResNet's first stage (64 is the standard width).
        channels: FPN and head width (256 in the stock config).
        stacked_convs: Convolutions in each head tower (4 in the stock config).
        num_classes: Classes of the head.

    Returns:
        The model dict.
    """
    expansion = 1 if depth < 50 else 4
    in_channels = [base_channels * expansion * 2**i for i in range(4)]
    return dict(
        type='GFL',
        data_preprocessor=dict(type='DetDataPreprocessor', mean=MEAN, std=STD, bgr_to_rgb=True,
                               pad_size_divisor=32),
        backbone=dict(type='ResNet', depth=depth, base_channels=base_channels, num_stages=4,
                      out_indices=(0, 1, 2, 3), frozen_stages=1,
                      norm_cfg=dict(type='BN', requires_grad=True), norm_eval=True,
                      style='pytorch', init_cfg=None),
        neck=dict(type='FPN', in_channels=in_channels, out_channels=channels, start_level=1,
                  add_extra_convs='on_output', num_outs=5),
        bbox_head=dict(
            type='GFLHead', num_classes=num_classes, in_channels=channels,
            stacked_convs=stacked_convs, feat_channels=channels,
            anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=8,
                                  scales_per_octave=1, strides=[8, 16, 32, 64, 128]),
            loss_cls=dict(type='QualityFocalLoss', use_sigmoid=True, beta=2.0, loss_weight=1.0),
            loss_dfl=dict(type='DistributionFocalLoss', loss_weight=0.25),
            reg_max=16, loss_bbox=dict(type='GIoULoss', loss_weight=2.0)),
        train_cfg=dict(assigner=dict(type='ATSSAssigner', topk=9), allowed_border=-1,
                       pos_weight=-1, debug=False),
        test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05,
                      nms=dict(type='nms', iou_threshold=0.6), max_per_img=100))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--batch', type=int, default=2, help='images per batch (default 2)')
    p.add_argument('--size', type=int, nargs=2, default=[320, 320], metavar=('H', 'W'),
                   help='image height and width (default 320 320)')
    p.add_argument('--channels', type=int, default=128,
                   help='FPN and head width of both models (default 128)')
    p.add_argument('--stacked-convs', type=int, default=2,
                   help='convolutions per head tower (default 2)')
    p.add_argument('--num-classes', type=int, default=80, help='classes (default 80, COCO)')
    p.add_argument('--iters', type=int, default=12, help='timed rounds (default 12)')
    p.add_argument('--warmup', type=int, default=2, help='untimed rounds first (default 2)')
    p.add_argument('--threads', type=int, default=1, help='torch.set_num_threads (default 1)')
    p.add_argument('--temperature', type=float, default=2.0,
                   help='fixed calibration temperature (default 2.0)')
    p.add_argument('--ld', action='store_true', help="also LDLoss on 'reg'")
    p.add_argument('--lr', type=float, default=1e-3, help='SGD learning rate (default 1e-3)')
    p.add_argument('--profile', action='store_true',
                   help='profile 3 KD steps with torch.profiler and print the top operators')
    p.add_argument('--quick', action='store_true',
                   help='tiny models and sizes (seconds; for tests): ResNet widths 8/16, '
                        '64x64, batch 1, 2 rounds after 1 warm-up')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out', default=None,
                   help='output folder (default $OUT, else work_dirs/benchmarks)')
    args = p.parse_args(argv)
    args.student_width, args.teacher_width = 64, 64
    if args.quick:
        args.batch, args.size, args.channels, args.stacked_convs = 1, [64, 64], 16, 1
        args.iters, args.warmup, args.num_classes = 2, 1, 3
        args.student_width, args.teacher_width = 8, 16
    for key in ('batch', 'iters', 'threads', 'channels', 'stacked_convs', 'num_classes'):
        if getattr(args, key) < 1:
            p.error(f'--{key.replace("_", "-")} must be >= 1, got {getattr(args, key)}')
    if args.warmup < 0:
        p.error(f'--warmup must be >= 0, got {args.warmup}')
    if min(args.size) < 64:
        p.error(f'--size must be at least 64 x 64 (GFL uses strides up to 128 with padding), '
                f'got {args.size}')
    if args.channels % 32 != 0 and not args.quick:
        p.error(f'--channels must be a multiple of 32 (GroupNorm with 32 groups in the head), '
                f'got {args.channels}')
    args.out = args.out or os.environ.get('OUT') or osp.join('work_dirs', 'benchmarks')
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    import mmkdcal  # noqa: F401
    from mmdet.utils import register_all_modules
    from mmengine.logging import MMLogger
    register_all_modules(init_default_scope=True)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel('WARNING')  # no per-parameter init_weights lines
    try:
        return _run(args)
    finally:
        logger.setLevel(level)


def _run(args) -> dict:
    torch.set_num_threads(args.threads)

    student_cfg = gfl_config(18, args.student_width, args.channels, args.stacked_convs,
                             args.num_classes)
    teacher_cfg = gfl_config(50, args.teacher_width, args.channels, args.stacked_convs,
                             args.num_classes)
    if args.quick:  # GroupNorm(32) cannot split 16 channels
        for cfg in (student_cfg, teacher_cfg):
            cfg['bbox_head']['norm_cfg'] = dict(type='GN', num_groups=4, requires_grad=True)
    losses_cfg = distill_losses_for(student_cfg, ld=args.ld)
    with tempfile.TemporaryDirectory() as tmp:
        student, distiller = build_pair(student_cfg, teacher_cfg, losses_cfg, args.temperature,
                                        tmp, seed=args.seed)
    device = torch.device('cpu')
    h, w = args.size
    data = student.data_preprocessor(
        synthetic_batch(args.batch, h, w, args.num_classes, seed=args.seed), True)
    inputs, samples = data['inputs'], data['data_samples']
    s_step = TrainStep(student, device, None, args.lr)
    kd_step = TrainStep(distiller, device, None, args.lr)
    fns = dict(student_step=lambda: s_step(inputs, samples),
               teacher_forward=lambda: distiller.teacher_forward(inputs),
               kd_step=lambda: kd_step(inputs, samples),
               distill_loss=distill_loss_fn(distiller, inputs))
    cpu = platform.processor() or platform.machine()
    print(f'CPU: {cpu}, {os.cpu_count()} logical cores; torch {torch.__version__}; '
          f'torch.set_num_threads({args.threads}) -> {torch.get_num_threads()} threads', flush=True)
    print(f'student: GFL ResNet-{18} (width {args.student_width}), teacher: GFL ResNet-50 '
          f'(width {args.teacher_width}); FPN/head {args.channels} ch, {args.stacked_convs} '
          f'convs/tower, {args.num_classes} classes; batch {args.batch} x {h}x{w}; losses '
          f'{sorted(losses_cfg)}; T={args.temperature}', flush=True)
    t0 = time.perf_counter()
    times = time_interleaved(fns, args.warmup, args.iters, device)
    wall = time.perf_counter() - t0
    for step in (s_step, kd_step):
        if not torch.isfinite(step.last_loss).all():
            raise FloatingPointError(f'the training loss became {float(step.last_loss)}; lower '
                                     f'--lr (now {args.lr}).')
    r = {f'{k}_ms': median(v) for k, v in times.items()}
    ratio = r['kd_step_ms'] / (r['student_step_ms'] + r['teacher_forward_ms'])
    per_round = median([k / (s + t) for s, t, k in zip(
        times['student_step'], times['teacher_forward'], times['kd_step'])])
    report = dict(cpu=cpu, cpu_count=os.cpu_count(), torch=torch.__version__,
                  num_threads=torch.get_num_threads(), args=vars(args),
                  student_params=sum(p.numel() for p in student.parameters()),
                  teacher_params=sum(p.numel() for p in distiller.teacher.parameters()),
                  samples_ms=times, **r,
                  kd_over_student_plus_teacher=ratio,
                  kd_over_student_plus_teacher_per_round_median=per_round,
                  kd_over_student=r['kd_step_ms'] / r['student_step_ms'],
                  timing_wall_s=wall, target=1.10, meets_target=bool(ratio <= 1.10))
    print(f"median of {args.iters} interleaved rounds after {args.warmup} warm-up "
          f"({wall:.1f} s):")
    print(f"  (a) student step     {r['student_step_ms']:10.2f} ms")
    print(f"  (b) teacher forward  {r['teacher_forward_ms']:10.2f} ms")
    print(f"  (c) KD+cal step      {r['kd_step_ms']:10.2f} ms")
    print(f"  (d) distill losses   {r['distill_loss_ms']:10.2f} ms  (forward + backward of the "
          f"KD losses alone, on fixed head outputs)")
    print(f"  kd / (student + teacher) = {ratio:.3f}  (target <= 1.10: "
          f"{'met' if ratio <= 1.10 else 'MISSED'})")
    print(f"  median over rounds of kd / (student + teacher) of that round = {per_round:.3f}")
    print(f"  kd / student             = {report['kd_over_student']:.3f}")
    if args.profile:
        report['profile'] = profile_kd_step(lambda: kd_step(inputs, samples))
    os.makedirs(args.out, exist_ok=True)
    path = osp.join(args.out, 'kd_overhead_cpu.json')
    with open(path, 'w') as f:
        json.dump(report, f, indent=2)
    print(f'wrote {path}')
    return report


def distill_loss_fn(distiller, inputs: torch.Tensor):
    """Forward + backward of the distiller's KD losses alone, on fixed student/teacher outputs.

    The student head outputs are detached leaves that require grad, so the backward stops at
    them: this is the distiller's own work in a KD step (flattening, temperature scaling, the
    losses and their gradients), without either network.
    """
    with torch.no_grad():
        feats = distiller.extract_feat(inputs)
        s_outs = distiller.bbox_head(feats)
        t_feats, t_outs = distiller.teacher_forward(inputs)
    s_outs = tuple([o.detach().requires_grad_() for o in level] for level in s_outs)

    def run():
        losses = distiller.distill_loss(feats, s_outs, t_feats, t_outs)
        sum(losses.values()).backward()
        for level in s_outs:
            for o in level:
                o.grad = None
    return run


def profile_kd_step(step, rounds: int = 3, top: int = 20) -> list:
    """Profile ``rounds`` KD steps; print and return the ``top`` operators by self CPU time."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(rounds):
            step()
    events = prof.key_averages()
    print(events.table(sort_by='self_cpu_time_total', row_limit=top))
    rows = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    return [dict(op=e.key, self_cpu_ms=e.self_cpu_time_total / 1e3 / rounds,
                 calls=e.count // rounds) for e in rows]


if __name__ == '__main__':
    main()
