"""One calibration pass over a model: collect (logits, targets), fit a temperature, report.

Shared by :class:`~mmkdcal.engine.hooks.TeacherCalibrationHook` (the teacher of a distiller,
before training) and ``tools/calibrate.py`` (any trained detector or classifier). What is
collected, fitted and reported is the ``fit_on`` mode's record
(:mod:`mmkdcal.engine.calibration_modes`); the report goes to a JSON file, a reliability
diagram and the runner's visualizer (:func:`log_calibration_to_visualizer`).
"""
import json
import os
import os.path as osp
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, broadcast_object_list, get_rank, is_main_process
from mmengine.utils import ProgressBar
from PIL import Image

from .. import calibration as cal
from .calibration_modes import CalibrationContext, GroundTruthIndex, get_calibration_mode

__all__ = ['IMAGE_NAME', 'SCALAR_PREFIX', 'calibration_scalars',
           'collect_calibration_data', 'fit_and_report', 'format_report',
           'log_calibration_to_visualizer', 'under_confidence_warning']

#: Tag prefix of the scalars sent to the visualizer.
SCALAR_PREFIX = 'teacher_calibration'
#: Name of the reliability-diagram image (no '/': the local backend makes it a file name).
IMAGE_NAME = 'teacher_calibration'


def collect_calibration_data(model: torch.nn.Module,
                             dataloader,
                             fit_on: str,
                             data_preprocessor: Optional[torch.nn.Module] = None,
                             score_thr: float = 0.05,
                             iou_thr: float = 0.5,
                             max_per_image: int = 1024,
                             seed: int = 0,
                             progress: bool = True) -> Dict[str, torch.Tensor]:
    """Run ``model`` once over ``dataloader`` and gather what ``fit_on`` needs from all ranks.

    Args:
        model: The model that is calibrated (a teacher, or any trained detector/classifier). It is
            run in eval mode under ``no_grad``; its mode is restored afterwards.
        dataloader: A built dataloader (in DDP, each rank sees its shard).
        fit_on: A registered mode (:func:`~mmkdcal.engine.calibration_mode_names`).
        data_preprocessor: Preprocessor for the batches (default: ``model.data_preprocessor``).
        score_thr: ``'detections'``: detections below this score are ignored.
        iou_thr: ``'detections'``: IoU at which a detection matches a ground-truth box.
        max_per_image: ``'anchors'``: keep at most this many priors per image (0: all).
        seed: Seed of the per-image random choices.
        progress: Show a progress bar (rank 0).

    Returns:
        The concatenated tensors of every image once (images repeated by a distributed sampler
        are kept once, in image order), identical on every rank, plus ``num_images``.
    """
    mode = get_calibration_mode(fit_on, model)
    if len(dataloader) == 0:
        raise ValueError('The calibration dataloader is empty: give the hook/tool a dataset with '
                         'images (the default is the val dataloader).')
    ctx = CalibrationContext(score_thr=score_thr, iou_thr=iou_thr, max_per_image=max_per_image,
                             seed=seed)
    if mode.needs_ground_truth:
        ctx.ground_truth = GroundTruthIndex(dataloader.dataset)
    preprocess = data_preprocessor if data_preprocessor is not None else model.data_preprocessor
    was_training = model.training
    model.eval()
    bar = ProgressBar(len(dataloader)) if progress and get_rank() == 0 else None
    records: List[Any] = []
    try:
        with torch.no_grad():
            for data in dataloader:
                records += mode.collect(model, preprocess(data, False), ctx)
                if bar is not None:
                    bar.update()
    finally:
        model.train(was_training)
    if bar is not None:
        print()
    unique: Dict[Any, Dict[str, torch.Tensor]] = {}
    for rank_records in all_gather_object(records):
        for key, record in rank_records:
            unique.setdefault(key, record)
    keys = sorted(unique, key=repr)  # the same order whatever the ranks saw
    names = list(unique[keys[0]])
    out = {n: torch.cat([unique[k][n] for k in keys]) for n in names}
    out['num_images'] = len(keys)
    return out


def fit_and_report(data: Dict[str, torch.Tensor],
                   fit_on: str,
                   objective: str = 'nll',
                   per_class: bool = False,
                   n_bins: int = 15,
                   out_dir: Optional[str] = None,
                   prefix: str = 'teacher_calibration') -> Dict[str, Any]:
    """Fit a temperature on collected data; report calibration before and after.

    The fit runs on rank 0 and is broadcast, so every rank gets the identical temperature.

    Args:
        data: Output of :func:`collect_calibration_data`.
        fit_on: How ``data`` was collected.
        objective: One of :data:`mmkdcal.calibration.OBJECTIVES`
            (see :func:`mmkdcal.calibration.fit_temperature`).
        per_class: One temperature per class (modes with class logits only).
        n_bins: Bins of the reported metrics.
        out_dir: Where rank 0 writes ``<prefix>.json`` and ``<prefix>.png``; None: nowhere.
        prefix: File name stem.

    Returns:
        ``dict(temperature=list or float, fit_on, objective, num_samples, num_images,
        before={...}, after={...})``.
    """
    mode = get_calibration_mode(fit_on, per_class=per_class)
    if objective not in cal.OBJECTIVES:
        raise ValueError(f'objective must be one of {cal.OBJECTIVES}, got {objective!r}.')
    logits, targets = mode.fit_data(data)
    n = len(logits)
    if n == 0:
        raise ValueError(f"The calibration pass collected no samples (fit_on='{fit_on}'): "
                         + ('the model found no detection above score_thr; lower it, or check '
                            'the calibration split and the checkpoint.' if fit_on == 'detections'
                            else 'check the calibration split and the checkpoint.'))
    if not torch.isfinite(logits).all():
        raise FloatingPointError('The calibrated model produced NaN/inf logits on the calibration '
                                 'set: check its checkpoint and the input normalisation.')
    result: List[Any] = [None]
    if get_rank() == 0:
        t = cal.fit_temperature(logits, targets, mode=mode.fit_kind, objective=objective,
                                per_class=per_class, n_bins=n_bins)
        t = torch.as_tensor(t, dtype=torch.float32).detach().cpu()
        result = [dict(temperature=t.tolist(), fit_on=fit_on, objective=objective,
                       num_samples=n, num_images=int(data.get('num_images', 0)),
                       before=mode.report(data, torch.ones(()), n_bins),
                       after=mode.report(data, t, n_bins))]
        if out_dir is not None:
            os.makedirs(out_dir, exist_ok=True)
            with open(osp.join(out_dir, f'{prefix}.json'), 'w') as f:
                json.dump(result[0], f, indent=2)
            p_logits, p_targets, kind = mode.plot_view(data)
            t_plot = t if t.dim() == 0 or p_logits.dim() > 1 else t.mean()
            cal.reliability_diagram_before_after(
                p_logits, p_targets, t_plot, osp.join(out_dir, f'{prefix}.png'), mode=kind)
    broadcast_object_list(result)
    return result[0]


def format_report(report: Dict[str, Any]) -> str:
    """One log line: temperature and each metric before -> after."""
    t = report['temperature']
    t_str = f'{t:.4f}' if isinstance(t, float) else '[' + ', '.join(f'{v:.3f}' for v in t) + ']'
    parts = [f'{k} {report["before"][k]:.4f} -> {report["after"][k]:.4f}'
             for k in report['before'] if k != 'num_dets']
    return (f'temperature {t_str} (fit_on={report["fit_on"]}, objective={report["objective"]}, '
            f'{report["num_samples"]} samples from {report.get("num_images", "?")} images): '
            + ', '.join(parts))


def under_confidence_warning(report: Dict[str, Any]) -> Optional[str]:
    """A warning for a teacher whose detections were under-confident before the temperature.

    Under-confident means D-ECE's under-confident part exceeds its over-confident part (the
    mean score is below the precision). In docs/detection_teacher_study.md the teachers of
    that kind were the ones for which KD from the calibrated teacher gave *worse* students
    than KD from the raw one; the calibration is applied anyway (nothing changes silently),
    the warning only says so.

    Args:
        report: Output of :func:`fit_and_report`.

    Returns:
        str or None: The warning, or None when the report has no over/under split (modes
        without D-ECE) or the teacher is not under-confident.
    """
    before = report.get('before', {})
    over, under = before.get('dece_over'), before.get('dece_under')
    if over is None or under is None or not under > over:
        return None
    return (f"The teacher is under-confident on the calibration set (D-ECE under-confident "
            f"part {under:.4f} > over-confident part {over:.4f}; fitted temperature "
            f"{report['temperature']}). In docs/detection_teacher_study.md, KD from "
            'under-confident detector teachers was worse after calibration than from the raw '
            'teacher; to distil from the raw teacher, set model.teacher_temperature=1.0.')


def calibration_scalars(report: Dict[str, Any]) -> Dict[str, float]:
    """The scalars of a :func:`~mmkdcal.engine.fit_and_report` report.

    Args:
        report: ``dict(temperature=float or list, before={...}, after={...}, ...)``.

    Returns:
        ``teacher_calibration/<metric>_before`` and ``..._after`` for every metric of the report
        (``dece``, ``dece_box``, ``nll`` for detections; ``ece``, ``ace``, ``nll`` for
        logits...; not the detection count), and ``teacher_calibration/temperature`` (for one
        temperature per class: ``temperature_mean``, ``temperature_min`` and
        ``temperature_max``).
    """
    scalars: Dict[str, float] = {}
    for stage in ('before', 'after'):
        for key, value in report[stage].items():
            if key.startswith('num_') or value is None:
                continue
            scalars[f'{SCALAR_PREFIX}/{key}_{stage}'] = float(value)
    t = np.asarray(report['temperature'], dtype=np.float64)
    if t.ndim == 0:
        scalars[f'{SCALAR_PREFIX}/temperature'] = float(t)
    else:
        scalars.update({f'{SCALAR_PREFIX}/temperature_mean': float(t.mean()),
                        f'{SCALAR_PREFIX}/temperature_min': float(t.min()),
                        f'{SCALAR_PREFIX}/temperature_max': float(t.max())})
    return scalars


def _read_rgb(path: str) -> np.ndarray:
    """A PNG as an RGB uint8 array (H, W, 3) (alpha composited onto white)."""
    with Image.open(path) as img:
        img = img.convert('RGBA')
        background = Image.new('RGBA', img.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, img).convert('RGB'))


def log_calibration_to_visualizer(runner: Any, report: Dict[str, Any],
                                  png_path: Optional[str] = None) -> Dict[str, float]:
    """Send the calibration scalars and the reliability diagram to ``runner.visualizer``.

    Only the main process writes (the visualizer's backends are main-process only too). The
    step is ``runner.iter``: 0 for a fresh run, the resumed iteration otherwise.

    Args:
        runner: The MMEngine runner.
        report: The report returned by :func:`~mmkdcal.engine.fit_and_report`.
        png_path: The reliability diagram written with it; None or a missing file: scalars only.

    Returns:
        The scalars that were sent.
    """
    scalars = calibration_scalars(report)
    visualizer = getattr(runner, 'visualizer', None)
    if visualizer is None or not is_main_process():
        return scalars
    step = int(getattr(runner, 'iter', 0))
    visualizer.add_scalars(scalars, step=step)
    if png_path is not None and osp.isfile(png_path):
        visualizer.add_image(IMAGE_NAME, _read_rgb(png_path), step=step)
    elif png_path is not None:
        runner.logger.warning(f'Teacher calibration: no reliability diagram at {png_path}; '
                              'only the scalars were sent to the visualizer.')
    return scalars
