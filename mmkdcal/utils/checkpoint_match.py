"""Refuse a checkpoint that does not fit the model of the config it is evaluated with.

MMEngine's ``load_from`` loads with ``strict=False``: a checkpoint of another architecture gives
a list of warnings and a model that keeps its random weights, which then evaluates to mAP 0 and
exits normally. ``tools/test.py`` and ``tools/calibrate.py`` call :func:`check_checkpoint_matches`
first: every weight of the model must be in the checkpoint with the same shape, and the
checkpoint must hold nothing else. A checkpoint of a distillation run passes for the plain student
config, since it holds only the student's weights.
"""
from collections import OrderedDict
from typing import Any, Dict, List, Mapping

import torch
from torch import nn

__all__ = ['CheckpointMismatchError', 'check_checkpoint_matches', 'checkpoint_state_dict']

_EXAMPLES = 3


class CheckpointMismatchError(RuntimeError):
    """A checkpoint's weights do not match the model built from the config."""


def checkpoint_state_dict(checkpoint: Any, filename: str) -> Dict[str, torch.Tensor]:
    """The state dict inside a loaded checkpoint, without a DDP ``module.`` prefix.

    Args:
        checkpoint: What :func:`mmkdcal.utils.checkpoint.load_checkpoint_file` returned.
        filename: Its file, for the error message.

    Returns:
        ``checkpoint['state_dict']`` (or the checkpoint itself if it is a bare state dict).

    Raises:
        CheckpointMismatchError: the checkpoint holds no state dict.
    """
    state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state_dict, Mapping) or not all(
            isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointMismatchError(f'checkpoint {filename!r} holds no state_dict of tensors.')
    stripped = OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v)
                           for k, v in state_dict.items())
    metadata = getattr(state_dict, '_metadata', None)  # module versions, for load_state_dict
    if metadata is not None:
        stripped._metadata = OrderedDict(
            (k[len('module.'):] if k.startswith('module.') else k, v) for k, v in metadata.items())
    return stripped


def _examples(keys: List[str]) -> str:
    shown = ', '.join(keys[:_EXAMPLES])
    return f'{shown}, ... ({len(keys)} in all)' if len(keys) > _EXAMPLES else shown


def check_checkpoint_matches(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                             filename: str, config: str) -> None:
    """Raise unless ``state_dict`` has exactly the model's weights, with the model's shapes.

    Args:
        model: The model built from ``config`` (unwrapped).
        state_dict: The checkpoint's state dict (:func:`checkpoint_state_dict`).
        filename: The checkpoint file, for the message.
        config: The config file, for the message.

    Raises:
        CheckpointMismatchError: naming the file, the config and examples of the weights that
            are missing, unexpected or of another shape.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f'{k} {tuple(state_dict[k].shape)} in the checkpoint vs {tuple(v.shape)} in the '
              'model' for k, v in own.items()
              if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)]
    if not (missing or unexpected or shapes):
        return
    problems = []
    if shapes:
        problems.append(f'{len(shapes)} weights have another shape ({_examples(shapes)})')
    if missing:
        problems.append(f'{len(missing)} of the model\'s {len(own)} weights are missing from the '
                        f'checkpoint ({_examples(missing)})')
    if unexpected:
        problems.append(f'{len(unexpected)} weights of the checkpoint are not in the model '
                        f'({_examples(unexpected)})')
    raise CheckpointMismatchError(
        f'checkpoint {filename!r} does not match the model of {config!r}: '
        + '; '.join(problems) + '. Evaluating it would use random weights for what does not '
        'match. Pass the config the checkpoint was trained with (a distillation run\'s '
        'checkpoint goes with its student config).')
