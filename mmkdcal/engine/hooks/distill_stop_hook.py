"""Stop distilling at a chosen epoch or iteration; the student then trains on its task alone.

As MMYOLO's RTMDet distillation after its ``PipelineSwitchHook``: from then on the teacher is not
run and every distillation loss is 0 (adapters stay in the graph); derived from the runner's
step, so a resumed run stops at the same point (docs/distillation_protocol.md)::

    custom_hooks = [..., dict(type='DistillStopHook', stop_epoch=280)]
"""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS

__all__ = ['DistillStopHook']


def _check_stop(name: str, value: Optional[int]) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f'DistillStopHook.{name} must be a non-negative int or None, got '
                         f'{value!r}.')
    return value


@HOOKS.register_module()
class DistillStopHook(Hook):
    """Turn the distillation losses off from ``stop_epoch`` or ``stop_iter`` (0-based; one)."""

    priority = 'NORMAL'

    def __init__(self, stop_epoch: Optional[int] = None, stop_iter: Optional[int] = None):
        self.stop_epoch = _check_stop('stop_epoch', stop_epoch)
        self.stop_iter = _check_stop('stop_iter', stop_iter)
        if (stop_epoch is None) == (stop_iter is None):
            raise ValueError('DistillStopHook needs exactly one of stop_epoch and stop_iter, got '
                             f'stop_epoch={stop_epoch!r}, stop_iter={stop_iter!r}.')

    @staticmethod
    def _distiller(runner):
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'distill_enabled'):
            raise TypeError(f'DistillStopHook needs an mmkdcal distiller as the model, got '
                            f'{type(model).__name__}; remove the hook or distil (model.type='
                            "'DistillSingleStageDetector', ...).")
        return model

    def before_run(self, runner) -> None:
        self._distiller(runner)  # fail before training, not at the stop epoch

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        enabled = (runner.epoch < self.stop_epoch if self.stop_epoch is not None else
                   runner.iter < self.stop_iter)
        model = self._distiller(runner)
        if model.distill_enabled and not enabled:
            runner.logger.info(f'DistillStopHook: distillation stops at epoch {runner.epoch}, '
                               f'iteration {runner.iter}; the student trains on its task '
                               'losses alone from here on.')
        model.distill_enabled = enabled
