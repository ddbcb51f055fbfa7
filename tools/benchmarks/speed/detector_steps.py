"""Training-step cost of KD from a calibrated teacher on stock detector pairs (GPU or CPU).

For each detector pair (student R-50, teacher R-101, MMDetection's stock configs, random
weights) and each precision (fp32; AMP as MMEngine's ``AmpOptimWrapper``: ``torch.autocast``
around the forward and loss, ``GradScaler`` around backward and step), interleaved after a
warm-up, the median of ``iters`` rounds of:

- ``student_step``: the stock student's ``loss`` + backward + SGD step;
- ``teacher_forward``: the teacher's own forward under ``no_grad`` through its public API:
  ``teacher(inputs, mode='tensor')`` for dense detectors; for Faster R-CNN ``extract_feat`` and
  the RoI head's ``bbox_roi_extractor`` + ``bbox_head`` on 512 RoIs per image (what the
  distiller runs of it on the student's sampled RoIs);
- ``kd_step``: our distiller (fixed calibration temperature, the losses of the project's KD
  configs) ``loss`` + backward + step, from the same student weights;
- GFL only, the MMDetection built-in KD peer on the same work: ``ours_ld_step`` (our distiller
  with ``LDLoss`` on ``'reg'`` only) and ``mmdet_ld_step`` (``KnowledgeDistillationSingleStage
  Detector`` + ``LDHead``), plus their loss values on the batch
  (:func:`~tools.benchmarks.speed.peers.loss_report`).

On CUDA, peak memory: the bytes the model holds (weights, buffers, optimizer state; plus the
teacher's weights for a distiller) plus the rise of ``torch.cuda.max_memory_allocated`` during
the step. Also, GFL only, each ``model.teacher_inference`` setting this device runs (fp16 and
bf16 on CUDA, :mod:`~.teacher_settings`) against the fp32 teacher: teacher forward, calibration
pass, KD+cal step; and the calibration pass against plain ``predict``.
"""
import copy
import os.path as osp
import tempfile
import traceback
from typing import Callable, Dict, List, Optional

import torch

from .calibration_pass import bench_calibration_pass
from .data import random_rois, synthetic_batch
from .models import (PAIRS, build_distiller, build_pair, distill_losses_for, load_model_cfg,
                     num_classes_of, shrink_model_cfg)
from .peers import build_mmdet_ld, loss_report, ours_losses
from .step import TrainStep, tensor_bytes
from .teacher_settings import bench_settings, settings_for
from .timing import cuda_peak_above_base, summarize, time_interleaved

__all__ = ['MMRAZOR_NOTE', 'ROIS_PER_IMAGE', 'bench_model', 'failed_sections', 'markdown',
           'teacher_forward_fn']

#: RoIs per image given to the teacher's RoI head in ``teacher_forward`` (the stock sampler's num).
ROIS_PER_IMAGE = 512
#: What this benchmark says about MMRazor (it is compared in its own environment).
MMRAZOR_NOTE = ('not measured here: MMRazor 1.0.0 does not import under torch 2.x; '
                'tools/benchmarks/peer_step.py compares it in its own environment '
                '(tools/benchmarks/setup_peer_env.sh)')


def teacher_forward_fn(teacher, inputs: torch.Tensor,
                       rois: Optional[torch.Tensor]) -> Callable[[], object]:
    """The teacher's forward under ``no_grad``, through its public API; returns class logits.

    Args:
        teacher: The teacher detector.
        inputs: Preprocessed batch.
        rois: Two-stage: the RoIs its RoI head runs on; ``None`` for dense detectors.

    Returns:
        A function returning the class logits: per-level maps (dense) or (R, K + 1) (RoIs).
    """
    if rois is None:
        def dense():
            with torch.no_grad():
                return teacher(inputs, mode='tensor')[0]
        return dense

    def two_stage():
        with torch.no_grad():
            feats = teacher.extract_feat(inputs)
            extractor = teacher.roi_head.bbox_roi_extractor
            cls_score, _ = teacher.roi_head.bbox_head(extractor(feats[:extractor.num_inputs], rois))
            return cls_score
    return two_stage


def _flat_logits(out) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out.float()
    return torch.cat([o.float().permute(0, 2, 3, 1).reshape(-1, o.shape[1]) for o in out])


def bench_model(name: str, args, device: torch.device) -> dict:
    """All measurements of one detector pair (``args`` as parsed by ``train_step.py``)."""
    student_name, teacher_name = PAIRS[name]
    student_cfg, teacher_cfg = load_model_cfg(student_name), load_model_cfg(teacher_name)
    if args.tiny:
        student_cfg, teacher_cfg = shrink_model_cfg(student_cfg), shrink_model_cfg(teacher_cfg)
    losses_cfg = distill_losses_for(student_cfg, ld=args.ld and name == 'gfl')
    with_ld_peer = name == 'gfl' and not args.no_mmdet_ld
    with tempfile.TemporaryDirectory() as tmp:
        student, distiller = build_pair(student_cfg, teacher_cfg, losses_cfg, args.temperature,
                                        tmp, seed=args.seed)
        extra = {}
        if with_ld_peer:
            ckpt = osp.join(tmp, 'teacher.pth')
            state = student.state_dict()
            extra['ours_ld'] = build_distiller(student_cfg, teacher_cfg, ckpt,
                                               ours_losses('mmdet_ld'), 1.0, state)
            extra['mmdet_ld'] = build_mmdet_ld(student_cfg, teacher_cfg, ckpt, state)
    for model in [student, distiller, *extra.values()]:
        model.to(device)
    teacher = distiller.teacher
    two_stage = 'roi_head' in student_cfg
    num_classes = num_classes_of(student_cfg)
    h, w = args.size
    raw = synthetic_batch(args.batch, h, w, num_classes, seed=args.seed)
    data = student.data_preprocessor(copy.deepcopy(raw), True)
    inputs, samples = data['inputs'], data['data_samples']
    rois = (random_rois(args.batch, h, w, ROIS_PER_IMAGE, args.seed, str(device))
            if two_stage else None)
    result = dict(
        student_config=student_name, teacher_config=teacher_name, tiny=bool(args.tiny),
        distill_losses=sorted(losses_cfg), temperature=args.temperature,
        student_params=sum(p.numel() for p in student.parameters()),
        teacher_params=sum(p.numel() for p in teacher.parameters()),
        teacher_weights_bytes=tensor_bytes(teacher),
        padded_input_shape=list(inputs.shape), mmrazor=MMRAZOR_NOTE)

    def guarded(key: str, fn: Callable[[], dict]) -> None:
        # one failing section (e.g. an op missing on this device) must not lose the others: the
        # error is recorded and printed, and the script exits non-zero
        try:
            result[key] = fn()
        except Exception as exc:  # noqa: BLE001 - reported, never swallowed
            result[key] = dict(error=f'{type(exc).__name__}: {exc}',
                               traceback=traceback.format_exc())
            print(f'ERROR in {name} {key}:\n{traceback.format_exc()}', flush=True)
            if device.type == 'cuda':
                torch.cuda.empty_cache()

    if with_ld_peer:  # before any step: all models still hold the same weights
        guarded('mmdet_ld_losses', lambda: loss_report(
            'mmdet_ld', dict(student=student, ours=extra['ours_ld'], peer=extra['mmdet_ld']),
            inputs, samples))
    for prec in args.precisions:
        guarded(prec, lambda prec=prec: bench_steps(
            prec, args, device, dict(student=student, kd=distiller, **extra), teacher, inputs,
            samples, rois, name))
    if name == 'gfl':
        guarded('teacher_inference', lambda: bench_settings(
            student_cfg, teacher_cfg, settings_for(device), args.size, args.batch, device,
            args.warmup, args.iters, args.calib_batches, args.calib_repeats,
            args.temperature, args.lr, args.seed, with_ld=not args.no_mmdet_ld))
    guarded('calibration_pass', lambda: _calibration(args, device, teacher, num_classes))
    student = distiller = teacher = extra = None  # free the models before emptying the cache
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    return result


def _calibration(args, device: torch.device, teacher, num_classes: int) -> dict:
    h, w = args.size
    batches = [synthetic_batch(args.batch, h, w, num_classes, seed=args.seed + 100 + i)
               for i in range(args.calib_batches)]
    return bench_calibration_pass(teacher, batches, args.warmup, args.calib_repeats, device)


def bench_steps(prec: str, args, device: torch.device, models: Dict[str, torch.nn.Module],
                teacher, inputs, samples, rois, name: str) -> dict:
    """The steps of ``models`` and the teacher forward at one precision (and CUDA peak memory).

    Args:
        prec: ``'fp32'`` or ``'amp'``.
        args: The parsed arguments.
        device: The device.
        models: ``student``, ``kd`` and optionally ``ours_ld``, ``mmdet_ld``.
        teacher: The teacher.
        inputs: Preprocessed batch.
        samples: Its data samples.
        rois: Two-stage RoIs of the teacher forward, else ``None``.
        name: The pair's name (for messages).

    Returns:
        Medians (``<candidate>_ms``), spreads, samples, ratios and, on CUDA, peak memory.
    """
    amp = None if prec == 'fp32' else getattr(torch, args.amp_dtype)
    steps = {key: TrainStep(model, device, amp, args.lr) for key, model in models.items()}
    t_fwd = teacher_forward_fn(teacher, inputs, rois)

    def teacher_step():
        with torch.autocast(device.type, dtype=amp or torch.float16, enabled=amp is not None):
            t_fwd()

    fns = dict(student_step=lambda: steps['student'](inputs, samples),
               teacher_forward=teacher_step,
               kd_step=lambda: steps['kd'](inputs, samples))
    for key in ('ours_ld', 'mmdet_ld'):
        if key in steps:
            fns[f'{key}_step'] = lambda key=key: steps[key](inputs, samples)
    times = time_interleaved(fns, args.warmup, args.iters, device)
    for key, step in steps.items():
        if not torch.isfinite(step.last_loss).all():
            raise FloatingPointError(
                f'{name} {prec}: the {key} training loss became {float(step.last_loss)}; lower '
                f'--lr (now {args.lr}).')
    r = {f'{k}_ms': summarize(v)['median'] for k, v in times.items()}
    r['spread'] = {k: summarize(v) for k, v in times.items()}
    r['samples_ms'] = times
    r['kd_over_student_plus_teacher'] = r['kd_step_ms'] / (
        r['student_step_ms'] + r['teacher_forward_ms'])
    r['kd_over_student'] = r['kd_step_ms'] / r['student_step_ms']
    if 'mmdet_ld' in steps:
        r['ours_ld_over_mmdet_ld'] = r['ours_ld_step_ms'] / r['mmdet_ld_step_ms']
    if device.type == 'cuda':
        t_bytes = tensor_bytes(teacher)
        t_extra = cuda_peak_above_base(fns['teacher_forward'], device)
        r['teacher_forward_peak_bytes'] = t_bytes + t_extra
        for key, step in steps.items():
            extra = cuda_peak_above_base(fns[f'{key}_step'], device)
            # a distiller's state_bytes() counts the student only (the teacher is no sub-module)
            held = step.state_bytes() + (0 if key == 'student' else t_bytes)
            r[f'{key}_peak_bytes'] = held + extra
        r['kd_peak_over_student_peak_plus_teacher_weights'] = r['kd_peak_bytes'] / (
            r['student_peak_bytes'] + t_bytes)
    else:
        r['memory'] = ('not measured: torch.cuda.max_memory_allocated needs a CUDA device '
                       '(tools/benchmarks/peer_step.py measures peak RSS on CPU)')
    return r


def _mib(n: Optional[float]) -> str:
    return '-' if n is None else f'{n / 2**20:.1f}'


def markdown(report: dict) -> str:
    """The printed summary: steps, MMDetection's KD peer, the teacher's settings, calibration."""
    a = report['args']
    lines = [f"### Training step, {report['device_name']} (torch {report['torch']}, "
             f"batch {a['batch']} x {a['size'][0]}x{a['size'][1]}, median of {a['iters']} "
             f"after {a['warmup']} warm-up, AMP dtype {a['amp_dtype']})", '',
             '| model | precision | student step ms | teacher fwd ms | KD+cal step ms '
             '| kd/(student+teacher) | kd/student | student peak MiB | KD peak MiB '
             '| teacher weights MiB | kd_peak/(student_peak+teacher_w) |',
             '|---|---|---|---|---|---|---|---|---|---|---|']
    for name, m in report['models'].items():
        for prec in a['precisions']:
            r = m[prec]
            if 'error' in r:
                lines.append(f"| {name} | {prec} | ERROR: {r['error']} |")
                continue
            ratio_mem = r.get('kd_peak_over_student_peak_plus_teacher_weights')
            lines.append(
                f"| {name} | {prec} | {r['student_step_ms']:.2f} | {r['teacher_forward_ms']:.2f} "
                f"| {r['kd_step_ms']:.2f} | {r['kd_over_student_plus_teacher']:.3f} "
                f"| {r['kd_over_student']:.3f} | {_mib(r.get('student_peak_bytes'))} "
                f"| {_mib(r.get('kd_peak_bytes'))} | {_mib(m['teacher_weights_bytes'])} "
                f"| {'-' if ratio_mem is None else f'{ratio_mem:.3f}'} |")
    peer_rows = [(name, prec, m[prec]) for name, m in report['models'].items()
                 for prec in a['precisions'] if 'mmdet_ld_step_ms' in m[prec]]
    if peer_rows:
        lines += ['', '| model | precision | ours (LD) step ms | MMDetection LD step ms '
                  '| ours/mmdet | ours peak MiB | mmdet peak MiB |',
                  '|---|---|---|---|---|---|---|']
        for name, prec, r in peer_rows:
            lines.append(f"| {name} | {prec} | {r['ours_ld_step_ms']:.2f} "
                         f"| {r['mmdet_ld_step_ms']:.2f} | {r['ours_ld_over_mmdet_ld']:.3f} "
                         f"| {_mib(r.get('ours_ld_peak_bytes'))} "
                         f"| {_mib(r.get('mmdet_ld_peak_bytes'))} |")
    lines += ['', '| model | teacher_inference | teacher fwd ms | x fp32 | KD+cal step ms '
              '| x fp32 | KD+cal / student | KD+cal / MMDetection LD '
              '| max abs change of logits/T |', '|---|---|---|---|---|---|---|---|---|']
    for name, m in report['models'].items():
        t = m.get('teacher_inference')
        if t is None:
            continue
        if 'error' in t:
            lines.append(f"| {name} | ERROR: {t['error']} |")
            continue
        for setting, r in t['settings'].items():
            ld = r.get('kd_step_over_mmdet_ld_step')
            lines.append(f"| {name} | {setting} | {r['teacher_forward_ms']:.2f} "
                         f"| {r['teacher_forward_over_fp32']:.3f} | {r['kd_step_ms']:.2f} "
                         f"| {r['kd_step_over_fp32']:.3f} | {r['kd_step_over_student_step']:.3f} "
                         f"| {'-' if ld is None else f'{ld:.3f}'} "
                         f"| {r['max_abs_change_scaled_logits']:.3g} |")
    lines += ['', '| model | calibration pass img/s | plain predict img/s | ratio |',
              '|---|---|---|---|']
    for name, m in report['models'].items():
        c = m['calibration_pass']
        if 'error' in c:
            lines.append(f"| {name} | ERROR: {c['error']} | | |")
            continue
        lines.append(f"| {name} | {c['collect_images_per_s']:.2f} "
                     f"| {c['predict_images_per_s']:.2f} "
                     f"| {c['collect_over_predict_throughput']:.3f} |")
    lines += ['', f'MMRazor: {MMRAZOR_NOTE}.']
    return '\n'.join(lines)


def failed_sections(report: dict) -> List[str]:
    """``model.section`` of every section that recorded an error."""
    return [f'{name}.{key}' for name, m in report['models'].items() for key, v in m.items()
            if isinstance(v, dict) and 'error' in v]
