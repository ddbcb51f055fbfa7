"""Give a distiller's teacher a calibrator state saved by the study's measurement.

The package lets a config give a temperature (``model.teacher_temperature``) but no other
calibrator state; :class:`GivenTeacherCalibratorHook` fills that gap for the study: before the
first iteration it loads a state file written by :func:`save_calibrator_state` (safe loading,
tensors and containers only), checks its sha256 against the one the command names, and hands
it to ``set_teacher_calibration``. So a KD student is distilled through exactly the calibrator
that the measurement fitted and reported, and a changed state changes the command (its stamp).
"""
import hashlib
import os
import os.path as osp
from typing import Any, Dict

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS

from mmkdcal.utils.checkpoint import load_checkpoint_file

__all__ = ['GivenTeacherCalibratorHook', 'file_sha256', 'load_calibrator_state',
           'save_calibrator_state']


def file_sha256(path: str) -> str:
    """sha256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def save_calibrator_state(state: Dict[str, Any], path: str) -> str:
    """Write a calibrator state (``fit_and_report(...)['state']``) with ``torch.save``.

    Args:
        state: The state: ``calibrator``, ``mode``, tensors and lists.
        path: The file to write.

    Returns:
        str: The file's sha256.
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    torch.save({k: v.detach().cpu() if isinstance(v, torch.Tensor) else v
                for k, v in state.items()}, path)
    return file_sha256(path)


def load_calibrator_state(path: str, sha256: str) -> Dict[str, Any]:
    """Load a state written by :func:`save_calibrator_state`, refusing another file.

    Args:
        path: The state file.
        sha256: The sha256 the file must have.

    Returns:
        dict: The state.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'GivenTeacherCalibratorHook.state_file: {path} does not exist; '
                                'run the teacher measurement that writes it first.')
    got = file_sha256(path)
    if got != sha256:
        raise ValueError(f'GivenTeacherCalibratorHook: {path} has sha256 {got}, the command '
                         f'names {sha256}; the measurement was rerun after this command was '
                         'built: rebuild the command from the new measure.json.')
    state = load_checkpoint_file(path, map_location='cpu')
    if not isinstance(state, dict) or 'calibrator' not in state:
        raise ValueError(f'GivenTeacherCalibratorHook: {path} holds no calibrator state (a dict '
                         "with a 'calibrator' key).")
    return state


@HOOKS.register_module()
class GivenTeacherCalibratorHook(Hook):
    """Set the teacher's calibrator from a saved state before training (no calibration pass).

    Args:
        state_file: A file written by :func:`save_calibrator_state`.
        sha256: Its sha256 (the run fails if the file is another).
    """

    priority = 'VERY_HIGH'

    def __init__(self, state_file: str, sha256: str) -> None:
        if not state_file or not sha256:
            raise ValueError('GivenTeacherCalibratorHook needs `state_file` and `sha256` (set '
                             'custom_hooks.0.state_file=... custom_hooks.0.sha256=...).')
        self.state_file = state_file
        self.sha256 = sha256

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'set_teacher_calibration'):
            raise TypeError('GivenTeacherCalibratorHook needs a distiller model, got '
                            f'{type(model).__name__}.')
        state = load_calibrator_state(self.state_file, self.sha256)
        model.set_teacher_calibration(state, source='given')
        runner.logger.info(f"Teacher calibrator {state['calibrator']} given by "
                           f'{self.state_file} (sha256 {self.sha256[:12]}).')
