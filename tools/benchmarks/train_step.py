"""Training-step cost of KD from a calibrated teacher, on stock MMDetection detector pairs.

For each detector pair (student R-50, teacher R-101, both from MMDetection's stock configs with
random weights: ``init_cfg=None`` for the backbones, nothing is downloaded) and each precision
(fp32, and AMP as MMEngine's ``AmpOptimWrapper`` does it: ``torch.autocast`` around the forward
and loss, ``GradScaler`` around backward and step) it measures, interleaved and after a warm-up,
the median of ``--iters`` runs of:

- ``student_step``: the stock student (``GFL``, ``RetinaNet``, ``FasterRCNN``): forward, loss,
  backward, SGD step;
- ``teacher_forward``: what the distiller runs of the teacher (backbone, neck and head forward
  under ``no_grad``; for Faster R-CNN the RoI head on 512 RoIs per image);
- ``kd_step``: :class:`~mmkdcal.models.distillers.DistillSingleStageDetector` (or the two-stage
  one) with a fixed calibration temperature and the project's KD losses, same student weights.

It reports ``kd_step / (student_step + teacher_forward)`` (the overhead of the distiller's own
work: flattening, temperature scaling, the KD losses and their backward; 1.0 = none) and
``kd_step / student_step`` (the cost of distillation as a whole). On CUDA it also reports peak
memory: ``student_peak`` and ``kd_peak`` are the bytes held by the model (weights, buffers,
optimizer state) plus the peak of ``torch.cuda.max_memory_allocated`` above what was allocated
before the step (the batch and anything else resident is excluded from both), and
``kd_peak / (student_peak + teacher_weights_bytes)``.

Besides: the teacher forward under fp16 autocast (``teacher_fp16=True``) against fp32 (speed
ratio and the largest absolute difference of the temperature-scaled class logits), and the
calibration pass (``collect_calibration_data(teacher, loader, 'detections')``) against plain
``teacher.predict`` on the same synthetic batches, in images per second. MMRazor 1.x's
``SingleTeacherDistill`` is probed; it is reported as skipped with the reason when it does not
import.

Examples::

    # GPU (the figures in tools/benchmarks/README.md)
    python tools/benchmarks/train_step.py --batch 8 --size 800 1333 --warmup 3 --iters 10
    # toy CPU run (what the tests run)
    python tools/benchmarks/train_step.py --device cpu --size 128 128 --batch 1 --iters 2 \\
        --warmup 1 --models gfl

All numbers go to ``<out>/train_step.json`` (``--out``, default ``$OUT`` if set, else
``work_dirs/benchmarks``); a markdown table with the device name is printed.
"""
import argparse
import copy
import json
import os
import os.path as osp
import platform
import statistics
import sys
import tempfile
import time
import traceback
from typing import Callable, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import torch  # noqa: E402

#: Stock MMDetection configs of each benchmarked pair: (student, teacher), as in configs/*/kd_*.py.
PAIRS: Dict[str, Tuple[str, str]] = {
    'gfl': ('mmdet::gfl/gfl_r50_fpn_1x_coco.py', 'mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py'),
    'retinanet': ('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
                  'mmdet::retinanet/retinanet_r101_fpn_ms-640-800-3x_coco.py'),
    'faster_rcnn': ('mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py',
                    'mmdet::faster_rcnn/faster-rcnn_r101_fpn_ms-3x_coco.py'),
}
#: RoIs per image given to the teacher's RoI head in ``teacher_forward`` (the stock sampler's num).
ROIS_PER_IMAGE = 512


# ---------------------------------------------------------------------------- building blocks
def load_model_cfg(name: str):
    """The ``model`` dict of a stock MMDetection config, with the backbone's pretrained init off.

    Args:
        name: ``'mmdet::<family>/<config>.py'`` or a config file path.

    Returns:
        A deep copy of the model config (a ``ConfigDict``: two-stage detectors read their
        ``train_cfg`` by attribute).
    """
    from mmengine.config import Config
    if name.startswith('mmdet::'):
        from mmengine.hub import get_config
        cfg = get_config(name)
    else:
        cfg = Config.fromfile(name)
    model = copy.deepcopy(cfg.model)
    model['backbone']['init_cfg'] = None
    model['backbone'].pop('pretrained', None)
    return model


def distill_losses_for(student_cfg: dict, ld: bool = False) -> Dict[str, dict]:
    """The distillation losses of the project's KD configs for this kind of detector.

    Args:
        student_cfg: The student's model dict.
        ld: Also add localisation distillation on GFL's box distributions (``LDLoss``, 'reg').

    Returns:
        The ``distill_losses`` dict of the distiller.
    """
    if 'roi_head' in student_cfg:
        return dict(loss_kd_roi=dict(type='KDLoss', inputs='roi_cls', tau=1.0, loss_weight=1.0))
    losses = dict(loss_kd_cls=dict(type='BinaryKDLoss', inputs='cls', tau=1.0, beta=1.0,
                                   loss_weight=1.0))
    if ld:
        if student_cfg['bbox_head']['type'] != 'GFLHead':
            raise ValueError(f"--ld needs a GFL head (box distributions), the student has "
                             f"{student_cfg['bbox_head']['type']}; drop --ld for this model.")
        losses['loss_ld'] = dict(type='LDLoss', inputs='reg', tau=10.0, loss_weight=0.25)
    return losses


def build_pair(student_cfg: dict, teacher_cfg: dict, distill_losses: Dict[str, dict],
               temperature: float, ckpt_dir: str, seed: int = 0):
    """Build the stock student and the distiller that starts from the same student weights.

    The teacher is randomly initialised (seeded), saved to ``ckpt_dir/teacher.pth`` and loaded
    by the distiller from there, as in a real run.

    Args:
        student_cfg: Student model dict (a stock detector).
        teacher_cfg: Teacher model dict.
        distill_losses: The distiller's ``distill_losses``.
        temperature: Fixed calibration temperature of the teacher.
        ckpt_dir: Where the teacher checkpoint is written.
        seed: Seed of the random weights.

    Returns:
        ``(student, distiller)``, both on CPU in train mode.
    """
    from mmdet.registry import MODELS
    torch.manual_seed(seed)
    teacher = MODELS.build(copy.deepcopy(teacher_cfg))
    teacher.init_weights()
    ckpt = osp.join(ckpt_dir, 'teacher.pth')
    torch.save({'state_dict': teacher.state_dict(), 'meta': {}}, ckpt)
    del teacher
    torch.manual_seed(seed + 1)
    student = MODELS.build(copy.deepcopy(student_cfg))
    student.init_weights()
    dcfg = copy.deepcopy(student_cfg)
    dcfg['type'] = ('DistillTwoStageDetector' if 'roi_head' in student_cfg
                    else 'DistillSingleStageDetector')
    dcfg.update(teacher_config=copy.deepcopy(teacher_cfg), teacher_ckpt=ckpt,
                teacher_temperature=temperature, distill_losses=distill_losses)
    distiller = MODELS.build(dcfg)
    distiller.load_state_dict(student.state_dict(), strict=True)
    student.train()
    distiller.train()
    return student, distiller


def synthetic_batch(batch: int, height: int, width: int, num_classes: int,
                    boxes_per_image: int = 8, seed: int = 0) -> dict:
    """A COCO-like raw batch: uint8 images and random boxes/labels (before preprocessing).

    Args:
        batch: Images in the batch.
        height: Image height.
        width: Image width.
        num_classes: Labels are drawn from ``[0, num_classes)``.
        boxes_per_image: Ground-truth boxes per image (COCO averages about 7).
        seed: Seed.

    Returns:
        ``dict(inputs=[uint8 (3, H, W)], data_samples=[DetDataSample])``.
    """
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(batch):
        inputs.append(torch.randint(0, 256, (3, height, width), generator=g, dtype=torch.uint8))
        wh = torch.rand(boxes_per_image, 2, generator=g) * torch.tensor(
            [width / 2, height / 2]) + 8
        xy = torch.rand(boxes_per_image, 2, generator=g) * (
            torch.tensor([width, height]) - wh)
        s = DetDataSample(metainfo=dict(img_id=i, img_shape=(height, width),
                                        ori_shape=(height, width), scale_factor=(1.0, 1.0)))
        s.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + wh], dim=1),
            labels=torch.randint(0, num_classes, (boxes_per_image,), generator=g))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def random_rois(batch: int, height: int, width: int, per_image: int, seed: int = 0,
                device: str = 'cpu') -> torch.Tensor:
    """``(batch * per_image, 5)`` RoIs ``(image index, x1, y1, x2, y2)`` inside the image."""
    g = torch.Generator().manual_seed(seed)
    wh = torch.rand(batch * per_image, 2, generator=g) * torch.tensor([width / 2, height / 2]) + 4
    xy = torch.rand(batch * per_image, 2, generator=g) * (torch.tensor([width, height]) - wh)
    idx = torch.arange(batch).repeat_interleave(per_image).float()[:, None]
    return torch.cat([idx, xy, xy + wh], dim=1).to(device)


class TrainStep:
    """One optimisation step as MMEngine's ``OptimWrapper`` / ``AmpOptimWrapper`` runs it.

    Args:
        model: A detector in train mode (``loss`` and ``parse_losses``).
        device: Device of the model.
        amp: ``None`` for fp32, else the autocast dtype (``torch.float16``/``torch.bfloat16``);
            AMP uses a dynamic ``GradScaler`` like ``AmpOptimWrapper``.
        lr: SGD learning rate (momentum 0.9, weight decay 1e-4 as in the stock configs).
    """

    def __init__(self, model: torch.nn.Module, device: torch.device,
                 amp: Optional[torch.dtype] = None, lr: float = 1e-3) -> None:
        self.model = model
        self.device = device
        self.amp = amp
        self.optim = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr,
                                     momentum=0.9, weight_decay=1e-4)
        self.scaler = torch.amp.GradScaler(device.type) if amp is not None else None
        self.last_loss = float('nan')

    def __call__(self, inputs: torch.Tensor, samples: list) -> None:
        self.optim.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.amp or torch.float16,
                            enabled=self.amp is not None):
            losses = self.model.loss(inputs, samples)
        loss, _ = self.model.parse_losses(losses)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optim)
            self.scaler.update()
        else:
            loss.backward()
            self.optim.step()
        self.last_loss = loss.detach()

    def state_bytes(self) -> int:
        """Bytes of the model's parameters, buffers and this optimizer's state."""
        n = tensor_bytes(self.model)
        for state in self.optim.state.values():
            n += sum(v.numel() * v.element_size() for v in state.values()
                     if isinstance(v, torch.Tensor))
        return n


def tensor_bytes(module: torch.nn.Module) -> int:
    """Bytes of a module's parameters and buffers (its sub-modules only)."""
    return sum(t.numel() * t.element_size()
               for t in list(module.parameters()) + list(module.buffers()))


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels (CUDA); a no-op on CPU."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_interleaved(fns: Dict[str, Callable[[], object]], warmup: int, iters: int,
                     device: torch.device) -> Dict[str, List[float]]:
    """Run every function ``warmup`` times, then time ``iters`` rounds, interleaved.

    Rounds alternate the order (A B C, C B A, ...) so that slow drift (clocks, other load)
    falls on every function alike.

    Args:
        fns: Name -> function to time.
        warmup: Untimed rounds first.
        iters: Timed rounds.
        device: Synchronised before and after each call.

    Returns:
        Name -> list of ``iters`` durations in milliseconds.
    """
    if iters < 1 or warmup < 0:
        raise ValueError(f'iters must be >= 1 and warmup >= 0, got iters={iters}, '
                         f'warmup={warmup}.')
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times: Dict[str, List[float]] = {name: [] for name in names}
    for i in range(iters):
        for name in (names if i % 2 == 0 else names[::-1]):
            synchronize(device)
            t0 = time.perf_counter()
            fns[name]()
            synchronize(device)
            times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def cuda_peak_above_base(fn: Callable[[], object], device: torch.device) -> int:
    """Peak ``max_memory_allocated`` during ``fn()`` minus what was allocated before it."""
    synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) - base


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    return float(statistics.median(values))


# ---------------------------------------------------------------------------- the teacher
def teacher_forward_fn(distiller, inputs: torch.Tensor, rois: Optional[torch.Tensor]):
    """What the distiller runs of the teacher in each step (under ``no_grad``)."""
    if rois is None:
        return lambda: distiller.teacher_forward(inputs)

    def two_stage():
        with distiller.teacher_context(inputs.device.type):
            feats = distiller.teacher.extract_feat(inputs)
            return distiller.teacher.roi_head._bbox_forward(feats, rois)['cls_score']
    return two_stage


def teacher_scaled_logits(distiller, inputs: torch.Tensor,
                          rois: Optional[torch.Tensor]) -> torch.Tensor:
    """The teacher's class logits divided by the temperature, as the KD losses get them (fp32)."""
    from mmkdcal.models.distillers.teacher_mixin import flatten_level_outputs
    if rois is None:
        _, outs = distiller.teacher_forward(inputs)
        logits = flatten_level_outputs(outs[0], distiller.num_teacher_logit_classes())
    else:
        logits = teacher_forward_fn(distiller, inputs, rois)()
    return distiller.scale_teacher_logits(logits.float())


# ---------------------------------------------------------------------------- MMRazor
def mmrazor_status() -> Tuple[bool, str]:
    """Whether MMRazor 1.x's distillation algorithms import here, and why not."""
    try:
        import mmrazor  # noqa: F401
        from mmrazor.models import ConfigurableDistiller, SingleTeacherDistill  # noqa: F401
    except Exception as exc:  # any import-time failure means: not comparable here
        msg = str(exc).splitlines()[0] if str(exc) else ''
        return False, f'mmrazor does not import here ({type(exc).__name__}: {msg})'
    return False, ('mmrazor imports, but its SingleTeacherDistill comparison is not implemented '
                   'in this script')


# ---------------------------------------------------------------------------- one model
def bench_model(name: str, args, device: torch.device) -> dict:
    """All measurements of one detector pair; see the module docstring."""
    student_name, teacher_name = PAIRS[name]
    student_cfg = load_model_cfg(student_name)
    teacher_cfg = load_model_cfg(teacher_name)
    losses_cfg = distill_losses_for(student_cfg, ld=args.ld and name == 'gfl')
    with tempfile.TemporaryDirectory() as tmp:
        student, distiller = build_pair(student_cfg, teacher_cfg, losses_cfg, args.temperature,
                                        tmp, seed=args.seed)
    student.to(device)
    distiller.to(device)
    teacher = distiller.teacher
    two_stage = 'roi_head' in student_cfg
    num_classes = (student_cfg['roi_head']['bbox_head']['num_classes'] if two_stage
                   else student_cfg['bbox_head']['num_classes'])
    h, w = args.size
    raw = synthetic_batch(args.batch, h, w, num_classes, seed=args.seed)
    data = student.data_preprocessor(copy.deepcopy(raw), True)
    inputs, samples = data['inputs'], data['data_samples']
    rois = (random_rois(args.batch, h, w, ROIS_PER_IMAGE, args.seed, str(device))
            if two_stage else None)
    result = dict(
        student_config=student_name, teacher_config=teacher_name,
        distill_losses=sorted(losses_cfg), temperature=args.temperature,
        student_params=sum(p.numel() for p in student.parameters()),
        teacher_params=sum(p.numel() for p in teacher.parameters()),
        teacher_weights_bytes=tensor_bytes(teacher),
        padded_input_shape=list(inputs.shape))

    def guarded(key: str, fn: Callable[[], dict]) -> None:
        # one failing section (e.g. an op missing on this device) must not lose the others: the
        # error is recorded and printed, and main() exits non-zero
        try:
            result[key] = fn()
        except Exception as exc:  # noqa: BLE001 - reported, never swallowed
            result[key] = dict(error=f'{type(exc).__name__}: {exc}',
                               traceback=traceback.format_exc())
            print(f'ERROR in {name} {key}:\n{traceback.format_exc()}', flush=True)
            if device.type == 'cuda':
                torch.cuda.empty_cache()

    for prec in args.precisions:
        guarded(prec, lambda prec=prec: bench_steps(
            prec, args, device, student, distiller, inputs, samples, rois,
            result['teacher_weights_bytes'], name))
    guarded('teacher_fp16', lambda: bench_teacher_fp16(args, device, distiller, inputs, rois))
    guarded('calibration_pass', lambda: bench_calibration(
        args, device, teacher, two_stage, num_classes))
    ok, why = mmrazor_status()
    result['mmrazor'] = dict(skipped=why) if not ok else {}
    del student, distiller, teacher
    if device.type == 'cuda':
        torch.cuda.empty_cache()
    return result


def bench_steps(prec: str, args, device: torch.device, student, distiller, inputs, samples,
                rois, teacher_weights_bytes: int, name: str) -> dict:
    """Student step, teacher forward and KD step at one precision (and CUDA peak memory)."""
    amp = None if prec == 'fp32' else getattr(torch, args.amp_dtype)
    s_step = TrainStep(student, device, amp, args.lr)
    kd_step = TrainStep(distiller, device, amp, args.lr)
    t_fwd = teacher_forward_fn(distiller, inputs, rois)

    def teacher_step(t_fwd=t_fwd, amp=amp):
        with torch.autocast(device.type, dtype=amp or torch.float16, enabled=amp is not None):
            t_fwd()

    fns = dict(student_step=lambda s=s_step: s(inputs, samples),
               teacher_forward=teacher_step,
               kd_step=lambda k=kd_step: k(inputs, samples))
    times = time_interleaved(fns, args.warmup, args.iters, device)
    for step in (s_step, kd_step):
        if not torch.isfinite(torch.as_tensor(step.last_loss)).all():
            raise FloatingPointError(
                f'{name} {prec}: the training loss became {float(step.last_loss)}; lower '
                f'--lr (now {args.lr}).')
    r = {f'{k}_ms': median(v) for k, v in times.items()}
    r['samples_ms'] = times
    r['kd_over_student_plus_teacher'] = r['kd_step_ms'] / (
        r['student_step_ms'] + r['teacher_forward_ms'])
    r['kd_over_student'] = r['kd_step_ms'] / r['student_step_ms']
    if device.type == 'cuda':
        s_extra = cuda_peak_above_base(fns['student_step'], device)
        t_extra = cuda_peak_above_base(fns['teacher_forward'], device)
        kd_extra = cuda_peak_above_base(fns['kd_step'], device)
        r['student_peak_bytes'] = s_step.state_bytes() + s_extra
        r['teacher_forward_peak_bytes'] = teacher_weights_bytes + t_extra
        # the distiller's state_bytes() counts the student only (the teacher is no sub-module)
        r['kd_peak_bytes'] = kd_step.state_bytes() + teacher_weights_bytes + kd_extra
        r['kd_peak_over_student_peak_plus_teacher_weights'] = r['kd_peak_bytes'] / (
            r['student_peak_bytes'] + teacher_weights_bytes)
    else:
        r['memory'] = 'not measured: torch.cuda.max_memory_allocated needs a CUDA device'
    return r


def bench_teacher_fp16(args, device: torch.device, distiller, inputs, rois) -> dict:
    """The teacher forward under fp16 autocast (``teacher_fp16``) vs fp32."""
    def teacher_fp(flag: bool):
        def run():
            distiller.teacher_fp16 = flag
            try:
                return teacher_scaled_logits(distiller, inputs, rois)
            finally:
                distiller.teacher_fp16 = False
        return run

    times = time_interleaved(dict(fp32=teacher_fp(False), fp16=teacher_fp(True)),
                             args.warmup, args.iters, device)
    with torch.no_grad():
        diff = (teacher_fp(True)() - teacher_fp(False)()).abs().max().item()
    r = dict(fp32_forward_ms=median(times['fp32']), fp16_forward_ms=median(times['fp16']),
             samples_ms=times, max_abs_diff_scaled_logits=diff)
    r['speedup'] = r['fp32_forward_ms'] / r['fp16_forward_ms']
    return r


def bench_calibration(args, device: torch.device, teacher, two_stage: bool,
                      num_classes: int) -> dict:
    """``collect_calibration_data(teacher, loader, 'detections')`` vs plain ``predict``.

    The teacher's ``score_thr`` is set to 0 for both, so that a randomly initialised teacher
    still returns ``max_per_img`` detections per image to match (as a trained one does).
    """
    from mmkdcal.engine.teacher_calibration import collect_calibration_data
    head = teacher.roi_head if two_stage else teacher.bbox_head
    head.test_cfg['score_thr'] = 0.0
    h, w = args.size
    loader = [synthetic_batch(args.batch, h, w, num_classes, seed=args.seed + 100 + i)
              for i in range(args.calib_batches)]
    collected = {}

    def calib():
        collected.update(collect_calibration_data(teacher, loader, 'detections',
                                                  score_thr=0.0, progress=False))

    def plain():
        with torch.no_grad():
            for batch in loader:
                d = teacher.data_preprocessor(batch, False)
                teacher.predict(d['inputs'], d['data_samples'], rescale=False)

    times = time_interleaved(dict(collect=calib, predict=plain), min(args.warmup, 1),
                             args.calib_repeats, device)
    n_img = args.batch * args.calib_batches
    c = dict(images=n_img, collect_ms=median(times['collect']),
             predict_ms=median(times['predict']), samples_ms=times,
             detections_collected=int(len(collected['logits'])))
    c['collect_images_per_s'] = n_img / (c['collect_ms'] / 1e3)
    c['predict_images_per_s'] = n_img / (c['predict_ms'] / 1e3)
    c['collect_over_predict_throughput'] = c['collect_images_per_s'] / c['predict_images_per_s']
    return c


# ---------------------------------------------------------------------------- report
def mib(n: Optional[float]) -> str:
    """Bytes as MiB with one decimal, or '-'."""
    return '-' if n is None else f'{n / 2**20:.1f}'


def markdown(report: dict) -> str:
    """The printed summary: one table of steps, one of the teacher in fp16, one of calibration."""
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
                f"| {r['kd_over_student']:.3f} | {mib(r.get('student_peak_bytes'))} "
                f"| {mib(r.get('kd_peak_bytes'))} | {mib(m['teacher_weights_bytes'])} "
                f"| {'-' if ratio_mem is None else f'{ratio_mem:.3f}'} |")
    lines += ['', '| model | teacher fwd fp32 ms | teacher fwd fp16 ms | fp16 speed-up '
              '| max abs diff of T-scaled logits |', '|---|---|---|---|---|']
    for name, m in report['models'].items():
        t = m['teacher_fp16']
        if 'error' in t:
            lines.append(f"| {name} | ERROR: {t['error']} |")
            continue
        lines.append(f"| {name} | {t['fp32_forward_ms']:.2f} | {t['fp16_forward_ms']:.2f} "
                     f"| {t['speedup']:.3f} | {t['max_abs_diff_scaled_logits']:.3g} |")
    lines += ['', '| model | calibration pass img/s | plain predict img/s | ratio | MMRazor |',
              '|---|---|---|---|---|']
    for name, m in report['models'].items():
        c = m['calibration_pass']
        if 'error' in c:
            lines.append(f"| {name} | ERROR: {c['error']} | | | {m['mmrazor'].get('skipped')} |")
            continue
        lines.append(f"| {name} | {c['collect_images_per_s']:.2f} "
                     f"| {c['predict_images_per_s']:.2f} "
                     f"| {c['collect_over_predict_throughput']:.3f} "
                     f"| {m['mmrazor'].get('skipped', 'measured')} |")
    return '\n'.join(lines)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu',
                   help='cuda, cuda:N or cpu (default: cuda if available)')
    p.add_argument('--models', nargs='+', default=['gfl', 'retinanet'],
                   choices=sorted(PAIRS), help='detector pairs (default: gfl retinanet)')
    p.add_argument('--two-stage', action='store_true',
                   help='also benchmark Faster R-CNN R-101 -> R-50')
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
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        p.error('--device cuda: no CUDA device is visible; use --device cpu for a toy run')
    args.out = args.out or os.environ.get('OUT') or osp.join('work_dirs', 'benchmarks')
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    import mmcv
    import mmdet

    import mmkdcal  # noqa: F401  (registers the distillers and losses)
    from mmdet.utils import register_all_modules
    from mmengine.logging import MMLogger
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


def failed_sections(report: dict) -> List[str]:
    """``model.section`` of every section that recorded an error."""
    return [f'{name}.{key}' for name, m in report['models'].items() for key, v in m.items()
            if isinstance(v, dict) and 'error' in v]


if __name__ == '__main__':
    failed = failed_sections(main())
    if failed:
        sys.exit(f'failed sections (see their "error" in the JSON): {failed}')
