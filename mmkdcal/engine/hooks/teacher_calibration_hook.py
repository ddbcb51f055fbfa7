"""Fit the teacher's calibrator before distillation, and keep it with the run."""
import hashlib
import os.path as osp
from typing import Optional, Union

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS

from ...models.distillers.distiller_mixin import adopt_legacy_distill_state
from ..calibration_modes import default_fit_on, get_calibration_mode
from ..teacher_calibration import (check_calibrator, collect_calibration_data, describe_calibrator,
                                   fit_and_report, format_report, log_calibration_to_visualizer,
                                   under_confidence_warning)

__all__ = ['TeacherCalibrationHook', 'teacher_fingerprint']


def teacher_fingerprint(teacher: torch.nn.Module, inference: Optional[dict] = None) -> str:
    """sha256 (first 16 hex digits) of the teacher's weights and its inference settings (the
    distiller's ``teacher_inference``): which teacher, run how, a temperature fits."""
    h = hashlib.sha256(repr(sorted((inference or {}).items())).encode())
    for name, tensor in sorted(teacher.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@HOOKS.register_module()
class TeacherCalibrationHook(Hook):
    """Calibrate a distiller's teacher before the first iteration (temperature, Platt...).

    A distiller trains, saves and resumes without it (adapters and the iteration are its own
    business); the hook only calibrates. It

    - ``before_train``: fits the calibrator unless one is set. It runs the teacher once over the
      calibration dataloader, gathers (logits, targets) from all ranks (each image once), fits
      the calibrator on rank 0, sets it on every rank, logs calibration error before/after (on
      all images, and on each half of them when fitted on the other), and writes
      ``teacher_calibration.json`` and ``teacher_calibration.png`` (reliability diagrams) in
      the work dir. A temperature given in the config is used as is; a calibrator found in
      the checkpoint is reused only on a true ``--resume`` with the *same* teacher (same
      weights and inference settings, checked by fingerprint); after ``load_from`` or with
      another teacher it is refitted.
    - saves the calibrator, its source and the teacher's fingerprint in checkpoint ``meta``,
      and restores it on a true resume with the same teacher.

    Args:
        dataloader: Calibration dataloader config; default: the runner's ``val_dataloader``
            config. Use a split the student is not evaluated on when you have one.
        objective: One of :data:`mmkdcal.calibration.OBJECTIVES` (``'nll'``: Guo et al. 2017);
            temperature calibrators only.
        fit_on: A registered calibration mode; default by model type (``'detections'`` for a
            teacher of another head family, which teaches by its detections).
        per_class: One temperature per class (``calibrator='class_temperature'``).
        calibrator: ``'temperature'``, ``'class_temperature'``, ``'platt'``, ``'isotonic'`` or
            ``'auto'`` (each fitted on half the images, the lowest held-out error kept;
            :mod:`mmkdcal.calibration.calibrators`).
        target: ``'tp'`` (a match at ``iou_thr`` is 1) or ``'iou'`` (the IoU of the match,
            LaECE's target; ``fit_on='detections'``).
        score_thr: ``'detections'``: ignore teacher detections below this score.
        iou_thr: ``'detections'``: IoU of a true detection.
        max_per_image: ``'anchors'``: priors kept per image.
        n_bins: Bins of the logged calibration errors.
    """

    priority = 'VERY_HIGH'

    def __init__(self,
                 dataloader: Optional[Union[dict, object]] = None,
                 objective: str = 'nll',
                 fit_on: Optional[str] = None,
                 per_class: bool = False,
                 score_thr: float = 0.05,
                 iou_thr: float = 0.5,
                 max_per_image: int = 1024,
                 n_bins: int = 15,
                 calibrator: str = 'temperature',
                 target: str = 'tp') -> None:
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
        self.report = None
        self._fingerprint: Optional[str] = None

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

    def before_run(self, runner) -> None:
        model = self._distiller(runner)
        if not model.has_teacher_temperature:
            self._resolve_fit_on(model)  # a mode that cannot work fails before training

    def before_train(self, runner) -> None:
        model = self._distiller(runner)
        if model.has_teacher_temperature:
            runner.logger.info(
                f'Teacher calibrator from the {model.temperature_source}: '
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
        try:
            dataloader = runner.build_dataloader(loader_cfg, seed=runner.seed)
        except ValueError as exc:
            if 'need at least one array to concatenate' in str(exc):
                raise ValueError(
                    f'The calibration dataset ({where}) has no images: point '
                    'TeacherCalibrationHook.dataloader at an annotated split with images.'
                ) from exc
            raise
        if len(dataloader.dataset) == 0 or len(dataloader) == 0:
            raise ValueError(f'The calibration dataset ({where}) has no images: point '
                             'TeacherCalibrationHook.dataloader at an annotated split.')
        return dataloader

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = self._distiller(runner)
        meta = checkpoint.setdefault('meta', {})
        if model.has_teacher_temperature:
            state = model.teacher_calibration
            meta['teacher_calibration'] = {
                k: v.detach().cpu() if isinstance(v, torch.Tensor) else v
                for k, v in state.items()}
            if 't' in state:  # the key older checkpoints and tools read
                meta['teacher_temperature'] = state['t'].tolist()
            meta['teacher_temperature_source'] = model.temperature_source
            meta['teacher_ckpt'] = str(model.teacher_ckpt)
            meta['teacher_fingerprint'] = self._teacher_id(model)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = self._distiller(runner)
        resuming = bool(getattr(runner, '_resume', False))
        if resuming:  # adapters of a checkpoint this hook wrote before the distiller kept them
            adopt_legacy_distill_state(checkpoint)
        meta = checkpoint.get('meta', {})
        state = meta.get('teacher_calibration')
        if state is None and meta.get('teacher_temperature') is not None:  # older checkpoints
            t = torch.as_tensor(meta['teacher_temperature'])
            state = dict(calibrator='temperature' if t.dim() == 0 else 'class_temperature',
                         mode=None, t=t)
        if state is None:
            return
        saved = (f"teacher_temperature={state['t'].tolist()}" if 't' in state else
                 f"the teacher calibrator {describe_calibrator(dict(state=state))}")
        if model.temperature_source == 'config':
            if 't' not in state or model.teacher_temperature.tolist() != state['t'].tolist():
                runner.logger.warning(
                    f'The checkpoint holds {saved} but the config sets teacher_temperature='
                    f'{model.teacher_temperature.tolist()}; using the config value.')
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
