"""What each teacher inference setting (``model.teacher_inference``) costs and changes, against
today's fp32 teacher, on one detector pair, interleaved in one process.

For every setting, one distiller (the project's KD+cal losses: ``BinaryKDLoss`` on ``'cls'``
and ``LDLoss`` on ``'reg'``, a fixed calibration temperature) from the same student weights and
teacher checkpoint; then, interleaved after the same warm-up:

- ``teacher_forward``: the distiller's teacher pass (:meth:`teacher_forward`), what each step
  runs of the teacher;
- ``kd_step``: the distiller's ``loss`` + backward + SGD step;
- ``student_step`` (once): the plain student's step; ``mmdet_ld_step`` (once, GFL): MMDetection's
  ``KnowledgeDistillationSingleStageDetector`` + ``LDHead`` with its own fp32 teacher;

and, per setting, the calibration pass (``collect_calibration_data`` over the distiller's
teacher, the ``'anchors'`` mode) and the largest change of the temperature-scaled class logits
against the fp32 teacher (what the losses receive). Peak RSS is measured by the caller, each
candidate in a fresh process (:func:`measure_rss`).
"""
import copy
import os.path as osp
import tempfile
from typing import Dict, List, Optional

import torch

from .calibration_pass import SyntheticCalibrationLoader
from .data import synthetic_batch
from .memory import current_rss_bytes, peak_rss_bytes, reset_peak_rss
from .models import (build_distiller, build_student, distill_losses_for, num_classes_of,
                     save_random_teacher)
from .peers import build_mmdet_ld
from .step import TrainStep
from .timing import summarize, time_interleaved

__all__ = ['SETTINGS', 'bench_settings', 'measure_rss', 'settings_for']

#: Named settings; ``fp32`` is the teacher as it ran before these settings existed.
SETTINGS: Dict[str, dict] = {
    'fp32': dict(fuse_conv_bn=False, channels_last=False, precision='fp32'),
    'fold': dict(fuse_conv_bn=True, channels_last=False, precision='fp32'),
    'fold+cl': dict(fuse_conv_bn=True, channels_last=True, precision='fp32'),
    'bf16': dict(fuse_conv_bn=False, channels_last=False, precision='bf16'),
    'fold+cl+bf16': dict(fuse_conv_bn=True, channels_last=True, precision='bf16'),
    'fold+cl+bf16+compile': dict(fuse_conv_bn=True, channels_last=True, precision='bf16',
                                 compile=True),
    'fp16': dict(fuse_conv_bn=False, channels_last=False, precision='fp16'),
    'fold+cl+fp16': dict(fuse_conv_bn=True, channels_last=True, precision='fp16'),
    'fold+cl+fp16+compile': dict(fuse_conv_bn=True, channels_last=True, precision='fp16',
                                 compile=True),
}


def settings_for(device: torch.device, names: Optional[List[str]] = None,
                 compile: bool = False) -> Dict[str, dict]:
    """The settings that run on ``device`` (fp32 first): bf16 on CPUs with native bf16 and on
    CUDA, fp16 on CUDA only (as the distiller's build-time check allows); ``compile`` rows only
    when asked (they compile for minutes on a CPU)."""
    from mmkdcal.models.distillers.teacher_inference import check_precision
    if names is not None:  # as asked: a setting this device cannot run fails here
        for name in names:
            check_precision(SETTINGS[name]['precision'], cuda=device.type == 'cuda')
        return {name: SETTINGS[name] for name in dict.fromkeys(['fp32'] + list(names))}
    out = {}
    for name, s in SETTINGS.items():
        try:
            check_precision(s['precision'], cuda=device.type == 'cuda')
        except ValueError:
            continue
        if compile or not s.get('compile'):
            out[name] = s
    return out


def _flat_cls(outs, k: int) -> torch.Tensor:
    return torch.cat([o.permute(0, 2, 3, 1).reshape(-1, k) for o in outs[0]])


def bench_settings(student_cfg: dict, teacher_cfg: dict, settings: Dict[str, dict],
                   size: List[int], batch: int, device: torch.device, warmup: int, iters: int,
                   calib_batches: int = 2, calib_repeats: int = 1, temperature: float = 1.5,
                   lr: float = 1e-4, seed: int = 0, with_ld: bool = True) -> dict:
    """Time every setting's teacher pass, KD+cal step and calibration pass (see the module).

    Args:
        student_cfg, teacher_cfg: A GFL-like pair (model dicts).
        settings: Name -> ``teacher_inference`` (:func:`settings_for`); must hold ``'fp32'``.
        size: ``[H, W]`` of the synthetic batch.
        batch: Images per batch.
        device: Where the models run.
        warmup, iters: Untimed and timed interleaved rounds.
        calib_batches, calib_repeats: Batches of the calibration pass and its timed passes
            (0 repeats: skip it).
        temperature: The distillers' fixed calibration temperature.
        lr: SGD learning rate.
        seed: Teacher weights ``seed``, student ``seed + 1``, batches from ``seed``.
        with_ld: Also time MMDetection's LD (GFL students only).

    Returns:
        Medians and samples (ms) per candidate, per-setting ratios against the fp32 teacher,
        the plain student and MMDetection's LD, the calibration pass, the logit changes.
    """
    from mmkdcal.engine.teacher_calibration import collect_calibration_data
    losses = distill_losses_for(student_cfg, ld=True)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = save_random_teacher(teacher_cfg, osp.join(tmp, 'teacher.pth'), seed)
        student = build_student(student_cfg, seed + 1)
        state = student.state_dict()
        models = {name: build_distiller(student_cfg, teacher_cfg, ckpt, losses, temperature,
                                        state, teacher_inference=s)
                  for name, s in settings.items()}
        ld = build_mmdet_ld(student_cfg, teacher_cfg, ckpt, state) if with_ld else None
    for m in [student, ld, *models.values()]:
        if m is not None:
            m.to(device)
    h, w = size
    k = num_classes_of(student_cfg)
    data = student.data_preprocessor(synthetic_batch(batch, h, w, k, seed=seed), True)
    inputs, samples = data['inputs'], data['data_samples']
    steps = {name: TrainStep(m, device, None, lr) for name, m in models.items()}
    fns = dict(student_step=lambda s=TrainStep(student, device, None, lr): s(inputs, samples))
    if ld is not None:
        fns['mmdet_ld_step'] = lambda s=TrainStep(ld, device, None, lr): s(inputs, samples)
    for name, m in models.items():
        fns[f'{name}/teacher_forward'] = lambda m=m: m.teacher_forward(inputs)
        fns[f'{name}/kd_step'] = lambda s=steps[name]: s(inputs, samples)
    # what the losses receive, before any step moves the students
    ref = _flat_cls(models['fp32'].teacher_forward(inputs)[1], k) / temperature
    logit_change = {name: float((_flat_cls(m.teacher_forward(inputs)[1], k) / temperature
                                 - ref).abs().max()) for name, m in models.items()}
    times = time_interleaved(fns, warmup, iters, device)
    med = {key: summarize(v)['median'] for key, v in times.items()}
    base_fwd, base_kd = med['fp32/teacher_forward'], med['fp32/kd_step']
    rows = {}
    for name in models:
        fwd, kd = med[f'{name}/teacher_forward'], med[f'{name}/kd_step']
        rows[name] = dict(teacher_inference=settings[name], teacher_forward_ms=fwd,
                          kd_step_ms=kd, teacher_forward_over_fp32=fwd / base_fwd,
                          kd_step_over_fp32=kd / base_kd,
                          kd_step_over_student_step=kd / med['student_step'],
                          max_abs_change_scaled_logits=logit_change[name])
        if ld is not None:
            rows[name]['kd_step_over_mmdet_ld_step'] = kd / med['mmdet_ld_step']
    if calib_repeats > 0 and calib_batches > 0:
        batches = [synthetic_batch(batch, h, w, k, seed=seed + 100 + i)
                   for i in range(calib_batches)]
        loader = SyntheticCalibrationLoader(batches)
        calib = time_interleaved(
            {name: lambda m=m: collect_calibration_data(m.teacher, loader, 'anchors',
                                                        data_preprocessor=m.data_preprocessor,
                                                        progress=False)
             for name, m in models.items()}, min(warmup, 1), calib_repeats, device)
        for name in models:
            rows[name]['calibration_pass_ms'] = summarize(calib[name])['median']
            rows[name]['calibration_pass_over_fp32'] = (
                rows[name]['calibration_pass_ms'] / summarize(calib['fp32'])['median'])
        times.update({f'{n}/calibration_pass': v for n, v in calib.items()})
    return dict(size=list(size), batch=batch, device=str(device), temperature=temperature,
                student_step_ms=med['student_step'], mmdet_ld_step_ms=med.get('mmdet_ld_step'),
                settings=rows, samples_ms=times, padded_input_shape=list(inputs.shape))


def measure_rss(student_cfg: dict, teacher_cfg: dict, candidate: str, size: List[int],
                batch: int, steps: int, lr: float = 1e-4, seed: int = 0) -> dict:
    """Peak RSS of ``steps`` CPU training steps of one candidate built alone (run it in a fresh
    process): ``'student'``, ``'mmdet_ld'`` or a name of :data:`SETTINGS`."""
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = save_random_teacher(teacher_cfg, osp.join(tmp, 'teacher.pth'), seed)
        student = build_student(student_cfg, seed + 1)
        if candidate == 'mmdet_ld':
            model = build_mmdet_ld(student_cfg, teacher_cfg, ckpt, student.state_dict())
        elif candidate != 'student':
            model = build_distiller(student_cfg, teacher_cfg, ckpt,
                                    distill_losses_for(student_cfg, ld=True), 1.5,
                                    student.state_dict(),
                                    teacher_inference=copy.deepcopy(SETTINGS[candidate]))
        else:
            model = student
    h, w = size
    data = model.data_preprocessor(
        synthetic_batch(batch, h, w, num_classes_of(student_cfg), seed=seed), True)
    step = TrainStep(model, torch.device('cpu'), None, lr)
    was_reset = reset_peak_rss()
    before = current_rss_bytes()
    for _ in range(steps):
        step(data['inputs'], data['data_samples'])
    peak = peak_rss_bytes()
    return dict(candidate=candidate, peak_rss_bytes=peak, rss_before_steps_bytes=before,
                peak_rise_bytes=None if before is None else peak - before,
                peak_reset_after_build=was_reset, steps=steps)
