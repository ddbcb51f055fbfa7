"""One calibration pass over a model: collect (logits, targets), fit a calibrator, report
(``TeacherCalibrationHook`` and ``tools/calibrate.py``; the ``fit_on`` mode's record decides).
"""
import json
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.dist import all_gather_object, broadcast_object_list, get_rank, is_main_process
from mmengine.utils import ProgressBar
from PIL import Image

from .. import calibration as cal
from .calibration_modes import (CALIBRATION_MODES, CalibrationContext, GroundTruthIndex,
                                get_calibration_mode)

__all__ = ['IMAGE_NAME', 'SCALAR_PREFIX', 'TARGETS', 'calibration_report', 'calibration_scalars',
           'calibrator_names', 'check_calibrator', 'collect_calibration_data', 'fit_and_report',
           'format_report', 'image_subset', 'jsonable', 'log_calibration_to_visualizer',
           'under_confidence_warning']

#: Tag prefix of the scalars sent to the visualizer.
SCALAR_PREFIX = 'teacher_calibration'
#: Name of the reliability-diagram image (no '/': the local backend makes it a file name).
IMAGE_NAME = 'teacher_calibration'
#: Fit targets: a true positive is 1 ('tp'), or the IoU of the match ('iou', LaECE's target).
TARGETS = ('tp', 'iou')


def collect_calibration_data(model: torch.nn.Module, dataloader, fit_on: str,
                             data_preprocessor: Optional[torch.nn.Module] = None,
                             score_thr: float = 0.05, iou_thr: float = 0.5,
                             max_per_image: int = 1024, seed: int = 0,
                             progress: bool = True) -> Dict[str, torch.Tensor]:
    """Run ``model`` once (eval, ``no_grad``) over ``dataloader``; gather what ``fit_on`` needs:
    every image's tensors once, in image order, identical on every rank, and ``num_images``.

    Args:
        model, dataloader: The model that is calibrated; a built dataloader (in DDP, a shard).
        fit_on: A registered calibration mode.
        data_preprocessor: Default: ``model.data_preprocessor``.
        score_thr, iou_thr: ``'detections'``: score floor, IoU of a match.
        max_per_image: ``'anchors'``: priors kept per image (0: all).
        seed: Seed of the per-image random choices.
        progress: Show a progress bar (rank 0).
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
    out: Dict[str, Any] = {n: torch.cat([unique[k][n] for k in keys]) for n in names}
    out['num_images'] = len(keys)
    # each image's number of rows per name, so that images can be split (held-out reports)
    out['counts'] = {n: torch.tensor([len(unique[k][n]) for k in keys]) for n in names}
    classes = getattr(dataloader.dataset, 'metainfo', {}).get('classes')
    if classes:  # per-class calibrators on one score per detection need the class count
        out['num_classes'] = len(classes)
    return out


def image_subset(data: Dict[str, Any], keep: torch.Tensor) -> Dict[str, Any]:
    """The rows of the images where ``keep`` (bool, one per image) is True."""
    out = dict(data, num_images=int(keep.sum()))
    out['counts'] = {n: c[keep] for n, c in data['counts'].items()}
    for name, counts in data['counts'].items():
        rows = torch.repeat_interleave(keep, counts)
        out[name] = data[name][rows]
    return out


def calibration_report(data: Dict[str, Any], fit_on: str, calibrator: Any,
                       n_bins: int, score_thr: Optional[float] = None) -> Dict[str, float]:
    """Calibration errors of collected ``data`` (``fit_on``) after a fitted ``calibrator`` (a state
    or a temperature), with ``n_bins``; ``'detections'``: only calibrated scores >= ``score_thr``.
    """
    mode = get_calibration_mode(fit_on)
    if not isinstance(calibrator, dict):
        calibrator = dict(calibrator='temperature', mode=None, t=torch.as_tensor(calibrator))
    return mode.report(_calibrated(mode, data, calibrator), torch.ones(()), n_bins, score_thr)


def calibrator_names() -> Tuple[str, ...]:
    """The ``calibrator=`` values: every calibrator of :data:`mmkdcal.calibration.CALIBRATORS`
    and ``'auto'``."""
    return tuple(cal.CALIBRATORS) + ('auto',)


def check_calibrator(calibrator: str, target: str, objective: str, fit_on: Optional[str] = None,
                     per_class: bool = False) -> str:
    """Validate the calibrator options; return the calibrator (``per_class=True`` turns
    ``'temperature'`` into ``'class_temperature'``)."""
    if calibrator not in calibrator_names():
        raise ValueError(f'calibrator must be one of {calibrator_names()}, got {calibrator!r}.')
    if per_class and calibrator == 'temperature':
        calibrator = 'class_temperature'
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS} ('tp': a match is 1, 'iou': the IoU "
                         f'of the match), got {target!r}.')
    if objective not in cal.OBJECTIVES:
        raise ValueError(f'objective must be one of {cal.OBJECTIVES}, got {objective!r}.')
    if objective != 'nll' and calibrator not in ('temperature', 'class_temperature'):
        raise ValueError(f"objective={objective!r} chooses a temperature; calibrator="
                         f"'{calibrator}' is fitted by NLL (Platt) or least squares (isotonic): "
                         "leave objective='nll'.")
    if fit_on is not None:
        mode = get_calibration_mode(fit_on, per_class=calibrator not in ('temperature', 'auto'))
        if target == 'iou' and mode.iou_data is None:
            ok = [m.name for m in CALIBRATION_MODES.values() if m.iou_data is not None]
            raise ValueError(f"target='iou' needs the IoU of each sample's match, which "
                             f"fit_on='{fit_on}' does not give; use fit_on in {ok} or "
                             "target='tp'.")
    return calibrator


def calibrate_samples(state: Dict[str, Any], logits: torch.Tensor,
                      classes: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Apply a calibrator to collected logits; one score per sample (N,) with ``classes``
    takes its class's map."""
    per_class = [v for v in state.values() if isinstance(v, torch.Tensor) and v.dim() > 0]
    if logits.dim() == 1 and classes is not None and per_class:
        full = logits[:, None].expand(-1, per_class[0].shape[0])
        return cal.apply_calibrator(state, full).gather(1, classes.long()[:, None]).squeeze(1)
    return cal.apply_calibrator(state, logits)


def _fit(name: str, mode, data: Dict[str, Any], target: str, objective: str,
         n_bins: int) -> Dict[str, Any]:
    logits, targets = (mode.iou_data if target == 'iou' else mode.fit_data)(data)
    classes = None
    if logits.dim() == 1 and mode.sample_classes is not None and name != 'temperature':
        classes = mode.sample_classes(data)
    options = dict(objective=objective, n_bins=n_bins) if 'temperature' in name else {}
    return cal.fit_calibrator(name, logits, targets, mode.fit_kind, classes=classes,
                              num_classes=data.get('num_classes'), **options)


def _calibrated(mode, data: Dict[str, Any], state: Dict[str, Any]) -> Dict[str, Any]:
    classes = mode.sample_classes(data) if mode.sample_classes is not None else None
    return dict(data, logits=calibrate_samples(state, data['logits'], classes))


def jsonable(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.tolist()
    if isinstance(x, dict):
        return {k: jsonable(v) for k, v in x.items()}
    return x


def fit_and_report(data: Dict[str, Any], fit_on: str, objective: str = 'nll',
                   per_class: bool = False, n_bins: int = 15, out_dir: Optional[str] = None,
                   prefix: str = 'teacher_calibration', calibrator: str = 'temperature',
                   target: str = 'tp', seed: int = 0) -> Dict[str, Any]:
    """Fit a calibrator on collected data (rank 0, broadcast); report before and after.

    With two images or more each candidate is also fitted on a seeded half and reported on both
    halves (``splits``); ``'auto'`` keeps the lowest held-out error and refits it on all images.

    Args:
        data, fit_on: Output of :func:`collect_calibration_data`, and its mode.
        objective: Temperature calibrators' objective (:data:`mmkdcal.calibration.OBJECTIVES`).
        per_class: Same as ``calibrator='class_temperature'``.
        n_bins: Bins of the reported metrics.
        out_dir, prefix: Where rank 0 writes ``<prefix>.json`` / ``.png``; None: nowhere.
        calibrator, target: One of :func:`calibrator_names`; ``'tp'`` or ``'iou'``.
        seed: Seed of the split into halves.

    Returns:
        dict: ``calibrator``, ``state``, ``fit_on``, ``target``, ``objective``, ``num_samples``,
        ``num_images``, ``before``, ``after``, ``splits`` (and ``temperature``).
    """
    calibrator = check_calibrator(calibrator, target, objective, fit_on, per_class)
    mode = get_calibration_mode(fit_on)
    logits = mode.fit_data(data)[0]
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
        candidates = list(cal.CALIBRATORS) if calibrator == 'auto' else [calibrator]
        splits = _split_rows(mode, data, candidates, target, objective, n_bins, seed)
        chosen = calibrator
        if calibrator == 'auto':
            fitted = [r for r in splits if 'heldout_after' in r]
            if not fitted:
                raise ValueError(f"calibrator='auto': no candidate could be fitted: {splits}")
            key = mode.selection.get(target, 'nll')
            chosen = min(fitted, key=lambda r: _nan_last(r['heldout_after'].get(key)))['name']
        state = _fit(chosen, mode, data, target, objective, n_bins)
        after_data = _calibrated(mode, data, state)
        report = dict(calibrator=chosen, state=state, fit_on=fit_on, target=target,
                      objective=objective, num_samples=n,
                      num_images=int(data.get('num_images', 0)),
                      before=mode.report(data, torch.ones(()), n_bins),
                      after=mode.report(after_data, torch.ones(()), n_bins), splits=splits)
        if 't' in state:
            report['temperature'] = state['t'].tolist()
        result = [report]
        if out_dir is not None:
            os.makedirs(out_dir, exist_ok=True)
            with open(osp.join(out_dir, f'{prefix}.json'), 'w') as f:
                json.dump(jsonable(report), f, indent=2)
            p_logits, p_targets, kind = mode.plot_view(data)
            a_logits = mode.plot_view(after_data)[0]
            cal.reliability_diagram_before_after(
                p_logits, p_targets, None, osp.join(out_dir, f'{prefix}.png'), mode=kind,
                after=a_logits, after_label=f'{chosen}: {cal.CALIBRATORS[chosen].summary(state)}'
                [:60])
    broadcast_object_list(result)
    return result[0]


def _nan_last(v: Optional[float]) -> float:
    return float('inf') if v is None or v != v else v


def _split_rows(mode, data, candidates, target, objective, n_bins, seed) -> List[Dict[str, Any]]:
    """Fit each candidate on one half of the images; report it on both halves."""
    num = int(data.get('num_images', 0))
    if num < 2 or 'counts' not in data:
        return []
    perm = torch.randperm(num, generator=torch.Generator().manual_seed(seed))
    first = torch.zeros(num, dtype=torch.bool)
    first[perm[:num // 2]] = True
    fit_half, held = image_subset(data, first), image_subset(data, ~first)
    rows = []
    for name in candidates:
        row: Dict[str, Any] = dict(name=name, fit_images=int(first.sum()),
                                   heldout_images=int((~first).sum()))
        try:
            state = _fit(name, mode, fit_half, target, objective, n_bins)
            for split, part in (('fit', fit_half), ('heldout', held)):
                row[f'{split}_before'] = mode.report(part, torch.ones(()), n_bins)
                row[f'{split}_after'] = mode.report(_calibrated(mode, part, state),
                                                    torch.ones(()), n_bins)
        except ValueError as exc:  # e.g. a half with one class only: this candidate cannot fit
            row['failed'] = str(exc)
        rows.append(row)
    return rows


def describe_calibrator(report: Dict[str, Any]) -> str:
    """``temperature 1.2345``, ``temperature [0.9, 1.1]`` or ``platt a=[...] b=[...]``."""
    state = report['state']
    if 't' in state:
        t = torch.as_tensor(state['t'])
        return 'temperature ' + (f'{t.item():.4f}' if t.dim() == 0 else
                                 '[' + ', '.join(f'{v:.3f}' for v in t.tolist()) + ']')
    return f"{state['calibrator']} {cal.CALIBRATORS[state['calibrator']].summary(state)}"


def format_report(report: Dict[str, Any]) -> str:
    """One log line: the calibrator and each metric before -> after (and for ``auto``, each
    candidate's held-out value of the metric it was chosen by)."""
    parts = [f'{k} {report["before"][k]:.4f} -> {report["after"][k]:.4f}'
             for k in report['before'] if k != 'num_dets']
    line = (f'{describe_calibrator(report)} (fit_on={report["fit_on"]}, '
            f'target={report.get("target", "tp")}, objective={report["objective"]}, '
            f'{report["num_samples"]} samples from {report.get("num_images", "?")} images): '
            + ', '.join(parts))
    held = [(r['name'], r['heldout_after']) for r in report.get('splits', [])
            if 'heldout_after' in r]
    if held:
        line += '; held-out half after fitting on the other: ' + ', '.join(
            f'{name} ' + ' '.join(f'{k}={v:.4f}' for k, v in after.items()
                                  if k in ('dece', 'laece', 'ece', 'classwise_ece'))
            for name, after in held)
    return line


def under_confidence_warning(report: Dict[str, Any]) -> Optional[str]:
    """A warning when the detections were under-confident before calibration (D-ECE's
    under-confident part the larger: see docs/detection_teacher_study.md); None otherwise.
    """
    before = report.get('before', {})
    over, under = before.get('dece_over'), before.get('dece_under')
    if over is None or under is None or not under > over:
        return None
    return (f"The teacher is under-confident on the calibration set (D-ECE under-confident "
            f"part {under:.4f} > over-confident part {over:.4f}; fitted "
            f"{describe_calibrator(report)}). In docs/detection_teacher_study.md, KD from "
            'under-confident detector teachers was worse after calibration than from the raw '
            'teacher; to distil from the raw teacher, set model.teacher_temperature=1.0.')


def calibration_scalars(report: Dict[str, Any]) -> Dict[str, float]:
    """``teacher_calibration/<metric>_before`` / ``_after`` of a report (and the temperature,
    or its mean, min and max per class).
    """
    scalars = {f'{SCALAR_PREFIX}/{key}_{stage}': float(value) for stage in ('before', 'after')
               for key, value in report[stage].items()
               if not key.startswith('num_') and value is not None}
    if 'temperature' not in report:
        return scalars
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
    """Send the calibration scalars and the reliability diagram (``png_path``, if it exists) to
    ``runner.visualizer`` at step ``runner.iter`` (main process); return the scalars.
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
