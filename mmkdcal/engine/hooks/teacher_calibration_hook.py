"""Fit or load the teacher's calibrator before distillation, and keep it with the run."""
import copy
import hashlib
import os.path as osp
from typing import Any, Dict, Optional, Tuple, Union

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS

from ...models.distillers.distiller_mixin import adopt_legacy_distill_state
from ...models.distillers.teacher_inference import (apply_teacher_inference,
                                                    resolve_teacher_inference)
from ...utils.checkpoint import file_sha256, load_checkpoint_file
from ..calibration_modes import default_fit_on, get_calibration_mode
from ..teacher_calibration import (check_calibrator, collect_calibration_data, describe_calibrator,
                                   fit_and_report, format_report, log_calibration_to_visualizer,
                                   under_confidence_warning)

__all__ = ['TeacherCalibrationHook', 'calibration_meta', 'fingerprint_as_teacher',
           'load_calibrator_file', 'save_calibrator_file', 'teacher_fingerprint']

FILE_FIELD = 'TeacherCalibrationHook.calibrator_file'
#: Sources of a calibrator that the config gives: used as is, never replaced by a checkpoint's.
GIVEN_SOURCES = ('config', 'calibrator_file')


def teacher_fingerprint(teacher: torch.nn.Module, inference: Optional[dict] = None) -> str:
    """sha256 (first 16 hex digits) of the teacher's weights and its inference settings (the
    distiller's ``teacher_inference``): which teacher, run how, a calibrator fits."""
    h = hashlib.sha256(repr(sorted((inference or {}).items())).encode())
    for name, tensor in sorted(teacher.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def fingerprint_as_teacher(model: torch.nn.Module, teacher_inference: Optional[dict] = None) -> str:
    """The :func:`teacher_fingerprint` a distiller gives ``model`` (unchanged: a copy is prepared)
    as its teacher with ``teacher_inference`` (None: the defaults).
    """
    settings = resolve_teacher_inference(teacher_inference)
    teacher = apply_teacher_inference(copy.deepcopy(model).cpu(), settings)  # folded on the CPU,
    return teacher_fingerprint(teacher, settings)  # as a distiller folds its teacher at build


def calibration_meta(state: Dict[str, Any], source: str, teacher_ckpt: Any,
                     fingerprint: Optional[str]) -> Dict[str, Any]:
    """The checkpoint ``meta`` entries of a teacher calibrator (also a calibrator file's)."""
    meta = dict(teacher_calibration={k: v.detach().cpu() if isinstance(v, torch.Tensor) else v
                                     for k, v in state.items()},
                teacher_temperature_source=source, teacher_ckpt=str(teacher_ckpt or '?'),
                teacher_fingerprint=fingerprint)
    if 't' in state:  # the key older checkpoints and tools read
        meta['teacher_temperature'] = torch.as_tensor(state['t']).tolist()
    return meta


def _state_from_meta(meta: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    state = meta.get('teacher_calibration')
    if state is None and meta.get('teacher_temperature') is not None:  # older checkpoints
        t = torch.as_tensor(meta['teacher_temperature'])
        state = dict(calibrator='temperature' if t.dim() == 0 else 'class_temperature',
                     mode=None, t=t)
    return state


def save_calibrator_file(path: str, state: Dict[str, Any], teacher_ckpt: Any = None,
                         fingerprint: Optional[str] = None) -> str:
    """Write a calibrator ``state`` to ``path`` as a checkpoint holding only
    :func:`calibration_meta` (so a calibrated run's checkpoint serves as one too), with the
    teacher's ``teacher_ckpt`` and :func:`fingerprint_as_teacher` (None: not checked); its sha256.
    """
    torch.save(dict(meta=calibration_meta(state, 'fitted', teacher_ckpt, fingerprint)), path)
    return file_sha256(path)


def load_calibrator_file(path: str, sha256: Optional[str] = None
                         ) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """``(state, meta)`` of a calibrator file (safe loading), its sha256 checked if given."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{FILE_FIELD}: {path} does not exist; write it with '
                                'tools/calibrate.py --calibrator-file, or name a checkpoint of a '
                                'calibrated run.')
    if sha256 is not None and file_sha256(path) != sha256.lower():
        raise ValueError(f'TeacherCalibrationHook.calibrator_sha256: {path} has sha256 '
                         f'{file_sha256(path)}, the config names {sha256}: the file changed; '
                         'give its new sha256 or the file it named.')
    ckpt = load_checkpoint_file(path, map_location='cpu')
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    state = _state_from_meta(meta) if isinstance(meta, dict) else None
    if not isinstance(state, dict) or 'calibrator' not in state:
        raise ValueError(f"{FILE_FIELD}: {path} holds no teacher calibrator (meta"
                         "['teacher_calibration']); write it with tools/calibrate.py "
                         '--calibrator-file.')
    return state, meta


def _same_state(a: Dict[str, Any], b: Dict[str, Any]) -> bool:
    """Whether two calibrator states are identical (tensors bit for bit)."""
    def norm(v):
        return (v.dtype, v.tolist()) if isinstance(v, torch.Tensor) else v
    return a.keys() == b.keys() and all(norm(a[k]) == norm(b[k]) for k in a)


@HOOKS.register_module()
class TeacherCalibrationHook(Hook):
    """Calibrate a distiller's teacher before the first iteration (docs/calibration.md).

    ``before_train`` runs the teacher once over the calibration data (all ranks), fits the
    calibrator and writes ``teacher_calibration.json`` / ``.png``, unless one is set: given in the
    config (``model.teacher_temperature`` or ``calibrator_file``: used as is) or, on a true
    ``--resume`` with the same teacher (fingerprint), restored from the checkpoint, whose ``meta``
    holds the calibrator, its source and the fingerprint. A distiller trains without this hook.

    Args:
        dataloader: Calibration dataloader config; default: ``val_dataloader``.
        objective: Temperature calibrators' objective (:data:`mmkdcal.calibration.OBJECTIVES`).
        fit_on: A registered calibration mode; default by model type.
        per_class: Same as ``calibrator='class_temperature'``.
        score_thr: ``'detections'``: ignore detections below this score.
        iou_thr: ``'detections'``: IoU of a true detection.
        max_per_image: ``'anchors'``: priors kept per image (0: all).
        n_bins: Bins of the logged calibration errors.
        calibrator: 'temperature', 'class_temperature', 'platt', 'isotonic' or 'auto'. The
            default, 'temperature', gave students as good as any other in the detection study
            (docs/detection_teacher_study.md) and applies to every head.
        target: ``'tp'`` (a match is 1) or ``'iou'`` (the IoU of the match; detections).
        calibrator_file: A fitted calibrator to use as is (:func:`save_calibrator_file`, or a
            calibrated run's checkpoint); refused if fitted for another teacher.
        calibrator_sha256: The sha256 ``calibrator_file`` must have; None: not checked.
    """

    priority = 'VERY_HIGH'

    def __init__(self, dataloader: Optional[Union[dict, object]] = None, objective: str = 'nll',
                 fit_on: Optional[str] = None, per_class: bool = False, score_thr: float = 0.05,
                 iou_thr: float = 0.5, max_per_image: int = 1024, n_bins: int = 15,
                 calibrator: str = 'temperature', target: str = 'tp',
                 calibrator_file: Optional[str] = None,
                 calibrator_sha256: Optional[str] = None) -> None:
        try:  # known options and mode (whether the mode fits the model: before_run)
            calibrator = check_calibrator(calibrator, target, objective, fit_on, per_class)
        except ValueError as exc:
            raise ValueError(f'TeacherCalibrationHook: {exc}') from None
        if not 0 <= score_thr < 1 or not 0 < iou_thr <= 1:
            raise ValueError('TeacherCalibrationHook: score_thr must be in [0, 1) and iou_thr in '
                             f'(0, 1], got {score_thr!r} and {iou_thr!r}.')
        if isinstance(max_per_image, bool) or not isinstance(max_per_image, int) \
                or max_per_image < 0:
            raise ValueError('TeacherCalibrationHook.max_per_image must be an int >= 0 (0: all), '
                             f'got {max_per_image!r}.')
        if calibrator_file is not None and (not isinstance(calibrator_file, str)
                                            or not calibrator_file):
            raise ValueError(f'{FILE_FIELD} must be a file path, got {calibrator_file!r}.')
        if calibrator_sha256 is not None and (
                calibrator_file is None or not isinstance(calibrator_sha256, str)
                or len(calibrator_sha256) != 64
                or any(c not in '0123456789abcdef' for c in calibrator_sha256.lower())):
            raise ValueError('TeacherCalibrationHook.calibrator_sha256 must be the 64 hex digits '
                             f'of calibrator_file, got {calibrator_sha256!r}.')
        self.dataloader = dataloader
        self.objective = objective
        self.fit_on = fit_on
        self.per_class = per_class
        self.score_thr = score_thr
        self.iou_thr = iou_thr
        self.max_per_image = max_per_image
        self.n_bins = n_bins
        self.calibrator = calibrator
        self.target = target
        self.calibrator_file = calibrator_file
        self.calibrator_sha256 = calibrator_sha256
        self.report = None
        self._fingerprint: Optional[str] = None
        self._file_sha256: Optional[str] = None

    @staticmethod
    def _distiller(runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'set_teacher_temperature'):
            raise TypeError(
                f'TeacherCalibrationHook needs a distiller model (DistillSingleStageDetector, '
                f'DistillTwoStageDetector, DistillImageClassifier); the model is '
                f'{type(model).__name__}. Remove the hook or use a distiller config.')
        return model

    def _teacher_id(self, model) -> str:
        if self._fingerprint is None:
            self._fingerprint = teacher_fingerprint(model.teacher,
                                                    getattr(model, 'teacher_inference', None))
        return self._fingerprint

    def _resolve_fit_on(self, model) -> str:
        try:
            # a teacher of another family teaches by its detections: calibrate their scores
            hetero = getattr(model, 'hetero', None) is not None
            fit_on = self.fit_on or ('detections' if hetero else default_fit_on(model.teacher))
            if hetero and fit_on != 'detections':
                raise ValueError(f"fit_on={fit_on!r}, but the teacher is of another head family "
                                 "and teaches by its detections; use fit_on='detections'.")
            get_calibration_mode(fit_on, model.teacher)
            check_calibrator(self.calibrator, self.target, self.objective, fit_on)
        except ValueError as exc:
            raise ValueError(f'TeacherCalibrationHook.fit_on: {exc}') from None
        return fit_on

    def _set_from_file(self, model) -> None:
        path = self.calibrator_file
        if model.temperature_source == 'config':
            raise ValueError(f'{FILE_FIELD} and model.teacher_temperature are both set: keep one '
                             '(model.teacher_temperature=None to use the file).')
        state, meta = load_calibrator_file(path, self.calibrator_sha256)
        fitted_for, ours = meta.get('teacher_fingerprint'), self._teacher_id(model)
        if fitted_for is not None and fitted_for != ours:
            raise ValueError(
                f"{FILE_FIELD}: {path} was fitted for teacher {meta.get('teacher_ckpt', '?')} "
                f'(teacher_fingerprint {fitted_for}), but this run\'s teacher is '
                f'{model.teacher_ckpt} with teacher_inference '
                f"{getattr(model, 'teacher_inference', None)} (teacher_fingerprint {ours}): fit "
                'it for this teacher (tools/calibrate.py --calibrator-file, with the same '
                '--teacher-inference), or remove calibrator_file to fit it in the run.')
        self._file_sha256 = file_sha256(path)
        try:
            model.set_teacher_calibration(state, source='calibrator_file')
        except (TypeError, ValueError) as exc:
            raise ValueError(f'{FILE_FIELD}: {path}: {exc}') from None

    def before_run(self, runner) -> None:
        model = self._distiller(runner)
        if self.calibrator_file is not None:
            self._set_from_file(model)
        elif not model.has_teacher_temperature:
            self._resolve_fit_on(model)  # a mode that cannot work fails before training

    def before_train(self, runner) -> None:
        model = self._distiller(runner)
        if model.has_teacher_temperature:
            source = (self.calibrator_file if model.temperature_source == 'calibrator_file'
                      else model.temperature_source)
            runner.logger.info(
                f'Teacher calibrator from the {source}: '
                f'{describe_calibrator(dict(state=model.teacher_calibration))} (no calibration '
                'pass).')
            return
        fit_on = self._resolve_fit_on(model)
        loader_cfg = self.dataloader if self.dataloader is not None else runner.cfg.get(
            'val_dataloader', None)
        if loader_cfg is None:
            raise ValueError('TeacherCalibrationHook has no calibration data: set its '
                             '`dataloader` or define val_dataloader in the config.')
        dataloader = self._build_dataloader(runner, loader_cfg)
        runner.logger.info(f'Calibrating the teacher on {len(dataloader.dataset)} images '
                           f'(calibrator={self.calibrator}, fit_on={fit_on}, '
                           f'target={self.target}, objective={self.objective})...')
        data = collect_calibration_data(
            model.teacher, dataloader, fit_on, data_preprocessor=model.data_preprocessor,
            score_thr=self.score_thr, iou_thr=self.iou_thr, max_per_image=self.max_per_image,
            seed=runner.seed or 0)
        self.report = fit_and_report(data, fit_on, objective=self.objective,
                                     n_bins=self.n_bins, out_dir=runner.work_dir,
                                     calibrator=self.calibrator, target=self.target,
                                     seed=runner.seed or 0)
        model.set_teacher_calibration(self.report['state'], source='fitted')
        runner.logger.info('Teacher calibration: ' + format_report(self.report))
        warning = under_confidence_warning(self.report)
        if warning:
            runner.logger.warning(warning)
        if 'temperature' in self.report:
            runner.message_hub.update_info('teacher_temperature', self.report['temperature'])
        log_calibration_to_visualizer(runner, self.report,
                                      osp.join(runner.work_dir, 'teacher_calibration.png'))

    @staticmethod
    def _build_dataloader(runner, loader_cfg):
        dataset_cfg = loader_cfg.get('dataset', {}) if isinstance(loader_cfg, dict) else {}
        where = dataset_cfg.get('ann_file', dataset_cfg.get('type', '?'))
        msg = (f'The calibration dataset ({where}) has no images: point '
               'TeacherCalibrationHook.dataloader at an annotated split with images.')
        try:
            dataloader = runner.build_dataloader(loader_cfg, seed=runner.seed)
        except ValueError as exc:
            if 'need at least one array to concatenate' in str(exc):
                raise ValueError(msg) from exc
            raise
        if len(dataloader.dataset) == 0 or len(dataloader) == 0:
            raise ValueError(msg)
        return dataloader

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = self._distiller(runner)
        if model.has_teacher_temperature:
            meta = checkpoint.setdefault('meta', {})
            meta.update(calibration_meta(model.teacher_calibration, model.temperature_source,
                                         model.teacher_ckpt, self._teacher_id(model)))
            if model.temperature_source == 'calibrator_file':
                meta['teacher_calibrator_file'] = dict(path=self.calibrator_file,
                                                       sha256=self._file_sha256)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = self._distiller(runner)
        resuming = bool(getattr(runner, '_resume', False))
        if resuming:  # adapters of a checkpoint this hook wrote before the distiller kept them
            adopt_legacy_distill_state(checkpoint)
        meta = checkpoint.get('meta', {})
        state = _state_from_meta(meta)
        if state is None:
            return
        saved = (f"teacher_temperature={state['t'].tolist()}" if 't' in state else
                 f"the teacher calibrator {describe_calibrator(dict(state=state))}")
        if model.temperature_source in GIVEN_SOURCES:
            if not _same_state(model.teacher_calibration, state):
                given = (f'teacher_temperature={model.teacher_temperature.tolist()}'
                         if model.temperature_source == 'config' else
                         f'calibrator_file={self.calibrator_file}')
                runner.logger.warning(f'The checkpoint holds {saved} but the config sets '
                                      f'{given}; using the config value.')
            return
        if not resuming:
            runner.logger.info(
                f'The loaded checkpoint holds {saved} (fitted for teacher '
                f"{meta.get('teacher_ckpt', '?')}); load_from starts a new run, so the "
                'calibrator is fitted again for this run\'s teacher.')
            return
        if meta.get('teacher_fingerprint') != self._teacher_id(model):
            runner.logger.warning(
                f'The resumed checkpoint holds {saved}, fitted for teacher '
                f"{meta.get('teacher_ckpt', '?')} (fingerprint "
                f"{meta.get('teacher_fingerprint')}), but this run's teacher is "
                f'{model.teacher_ckpt} (fingerprint {self._teacher_id(model)}); the '
                'calibrator is fitted again for this teacher.')
            return
        model.set_teacher_calibration(state, source='checkpoint')
