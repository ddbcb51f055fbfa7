"""Fit the teacher's calibration temperature once, before distillation starts."""
import os.path as osp
from typing import Optional, Union

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS

from ..teacher_calibration import (FIT_ON, collect_calibration_data, default_fit_on,
                                   fit_and_report, format_report)
from .calibration_visualization import log_calibration_to_visualizer

__all__ = ['TeacherCalibrationHook']


@HOOKS.register_module()
class TeacherCalibrationHook(Hook):
    """Calibrate a distiller's teacher by temperature scaling before the first iteration.

    ``before_train``: if the distiller has no temperature (``model.teacher_temperature=None`` and
    none restored from a resumed checkpoint), run the teacher once over the calibration
    dataloader, gather (logits, targets) from all ranks, fit the temperature on rank 0, set it on
    every rank, log calibration error before/after, and write ``teacher_calibration.json`` and
    ``teacher_calibration.png`` (reliability diagrams) in the work dir. A temperature given in the
    config or found in the resumed checkpoint is used as is (no refit).

    The temperature is saved in checkpoint ``meta['teacher_temperature']`` and restored on resume.

    Args:
        dataloader: Calibration dataloader config; default: the runner's ``val_dataloader``
            config. Use a split the student is not evaluated on when you have one.
        objective: ``'nll'`` (Guo et al. 2017), ``'ace'`` or ``'ece'``.
        fit_on: ``'detections'``, ``'anchors'``, ``'rois'`` or ``'logits'``
            (see :mod:`mmkdcal.engine.teacher_calibration`); default by model type.
        per_class: One temperature per class.
        score_thr: ``'detections'``: ignore teacher detections below this score.
        iou_thr: ``'detections'``: IoU of a true detection.
        max_per_batch: ``'anchors'``/``'rois'``: samples kept per batch.
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
                 max_per_batch: int = 4096,
                 n_bins: int = 15) -> None:
        if objective not in ('nll', 'ace', 'ece'):
            raise ValueError(f"TeacherCalibrationHook.objective must be 'nll', 'ace' or 'ece', "
                             f'got {objective!r}.')
        if fit_on is not None and fit_on not in FIT_ON:
            raise ValueError(f'TeacherCalibrationHook.fit_on must be one of {FIT_ON} or None, '
                             f'got {fit_on!r}.')
        if per_class and fit_on == 'detections':
            raise ValueError("TeacherCalibrationHook: per_class=True needs class logits; use "
                             "fit_on='anchors', 'rois' or 'logits'.")
        self.dataloader = dataloader
        self.objective = objective
        self.fit_on = fit_on
        self.per_class = per_class
        self.score_thr = score_thr
        self.iou_thr = iou_thr
        self.max_per_batch = max_per_batch
        self.n_bins = n_bins
        self.report = None

    @staticmethod
    def _distiller(runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'set_teacher_temperature'):
            raise TypeError(
                f'TeacherCalibrationHook needs a distiller model (DistillSingleStageDetector, '
                f'DistillTwoStageDetector, DistillImageClassifier); the model is '
                f'{type(model).__name__}. Remove the hook or use a distiller config.')
        return model

    def before_train(self, runner) -> None:
        model = self._distiller(runner)
        if model.has_teacher_temperature:
            runner.logger.info(
                f'Teacher temperature from the {model.temperature_source}: '
                f'{model.teacher_temperature.tolist()} (no calibration pass).')
            return
        loader_cfg = self.dataloader if self.dataloader is not None else runner.cfg.get(
            'val_dataloader', None)
        if loader_cfg is None:
            raise ValueError('TeacherCalibrationHook has no calibration data: set its '
                             '`dataloader` or define val_dataloader in the config.')
        dataloader = runner.build_dataloader(loader_cfg, seed=runner.seed)
        fit_on = self.fit_on or default_fit_on(model.teacher)
        runner.logger.info(f'Calibrating the teacher on {len(dataloader.dataset)} images '
                           f'(fit_on={fit_on}, objective={self.objective})...')
        data = collect_calibration_data(
            model.teacher, dataloader, fit_on, data_preprocessor=model.data_preprocessor,
            score_thr=self.score_thr, iou_thr=self.iou_thr, max_per_batch=self.max_per_batch,
            seed=runner.seed or 0)
        self.report = fit_and_report(data, fit_on, objective=self.objective,
                                     per_class=self.per_class, n_bins=self.n_bins,
                                     out_dir=runner.work_dir)
        model.set_teacher_temperature(self.report['temperature'], source='fitted')
        runner.logger.info('Teacher calibration: ' + format_report(self.report))
        runner.message_hub.update_info('teacher_temperature', self.report['temperature'])
        log_calibration_to_visualizer(runner, self.report,
                                      osp.join(runner.work_dir, 'teacher_calibration.png'))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        model = self._distiller(runner)
        if model.has_teacher_temperature:
            meta = checkpoint.setdefault('meta', {})
            meta['teacher_temperature'] = model.teacher_temperature.tolist()
            meta['teacher_temperature_source'] = model.temperature_source

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = self._distiller(runner)
        saved = checkpoint.get('meta', {}).get('teacher_temperature', None)
        if saved is None:
            return
        if model.temperature_source == 'config':
            if model.teacher_temperature.tolist() != saved:
                runner.logger.warning(
                    f'The checkpoint holds teacher_temperature={saved} but the config sets '
                    f'{model.teacher_temperature.tolist()}; using the config value.')
            return
        model.set_teacher_temperature(saved, source='checkpoint')
