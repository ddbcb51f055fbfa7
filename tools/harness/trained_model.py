"""A trained detector or classifier, its checkpoint checked against its config, and its splits.

What ``tools/test.py``, ``tools/calibrate.py`` and ``tools/analysis/rank_teachers.py`` share: read
the config (a file or a ``mmkdcal::``/``mmdet::`` path) with ``--cfg-options``, check the requested
splits, build the model in the config's default scope, load its checkpoint strictly (through the
safe loader that ``import mmkdcal`` installs), and build a split's dataloader.

MMEngine's ``load_from`` loads with ``strict=False``: a checkpoint of another architecture gives
a list of warnings and a model that keeps its random weights, which then evaluates to mAP 0 and
exits normally. :func:`check_checkpoint_matches` refuses it: every weight of the model must be in
the checkpoint with the same shape, and the checkpoint must hold nothing else. A checkpoint of a
distillation run passes for the plain student config, since it holds only the student's weights.
"""
import os.path as osp
import time
from collections import OrderedDict
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader
from torch import nn

from mmdet.registry import MODELS

from mmkdcal.utils.checkpoint import install
from mmkdcal.utils.config_scope import resolve_config_path

__all__ = ['CheckpointMismatchError', 'build_split_loader', 'check_checkpoint_matches',
           'check_splits', 'checkpoint_state_dict', 'load_trained_model', 'read_config']

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


def read_config(config: str, cfg_options: Optional[dict] = None) -> Config:
    """Read a config file or scoped path and merge ``cfg_options`` into it.

    Args:
        config: A config file, or ``'mmkdcal::<folder>/<config>.py'`` (any ``<scope>::``).
        cfg_options: ``--cfg-options`` style overrides (``{'a.b': value}``).

    Returns:
        The config.
    """
    path = resolve_config_path(config)
    if not osp.isfile(path):
        raise FileNotFoundError(f'config {config!r} does not exist.')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg


def check_splits(cfg: Config, splits: Iterable[str], config: str) -> None:
    """Fail unless the config defines ``<split>_dataloader`` for every split.

    Args:
        cfg: The config.
        splits: Split names (``'val'``, ``'test'``, ``'calib'`` ...).
        config: The config's name, for the message.
    """
    choices = sorted(k[:-len('_dataloader')] for k in cfg.keys() if k.endswith('_dataloader'))
    for split in splits:
        if f'{split}_dataloader' not in cfg:
            raise ValueError(f'split {split!r}: the config {config} has no {split}_dataloader; '
                             f'choose one of {choices}.')


def _enter_default_scope(cfg: Config) -> None:
    DefaultScope.get_instance(f'trained-model-{time.time_ns()}',
                              scope_name=cfg.get('default_scope', 'mmdet'))


def load_trained_model(config: str,
                       checkpoint: str,
                       cfg_options: Optional[dict] = None,
                       splits: Iterable[str] = ()) -> Tuple[Config, torch.nn.Module]:
    """Build the model of ``config`` and load ``checkpoint`` into it (strictly).

    The model is moved to the GPU when one is available. The config's ``default_scope``
    becomes the current default scope (needed to build its dataloaders too).

    Args:
        config: A config file or scoped path.
        checkpoint: The model's checkpoint.
        cfg_options: Overrides merged into the config.
        splits: Splits the caller will use: checked before anything is built.

    Returns:
        ``(cfg, model)``; the model is in eval mode.

    Raises:
        ValueError: A distillation config (calibrate its teacher with the teacher's own config
            and checkpoint), or a missing split.
    """
    cfg = read_config(config, cfg_options)
    check_splits(cfg, splits, config)
    if not osp.isfile(checkpoint) and not checkpoint.startswith(('http://', 'https://')):
        raise FileNotFoundError(f'checkpoint {checkpoint!r} (of {config}) does not exist.')
    _enter_default_scope(cfg)
    model_cfg = ConfigDict(cfg.model)
    if hasattr(MODELS.get(model_cfg.type), 'set_teacher_temperature'):
        raise ValueError(f'{config} is a distillation config; calibrate its teacher with the '
                         "teacher's own config and checkpoint (or let TeacherCalibrationHook do "
                         'it).')
    model = MODELS.build(model_cfg)
    install()
    state_dict = checkpoint_state_dict(
        CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu'), checkpoint)
    check_checkpoint_matches(model, state_dict, checkpoint, config)
    model.load_state_dict(state_dict, strict=True)
    if torch.cuda.is_available():
        model = model.cuda()
    return cfg, model.eval()


def build_split_loader(cfg: Config, split: str, seed: int = 0):
    """Build the dataloader ``<split>_dataloader`` of ``cfg`` (in its default scope).

    Args:
        cfg: The config.
        split: The split name.
        seed: Dataloader seed.

    Returns:
        The built dataloader.
    """
    _enter_default_scope(cfg)
    return Runner.build_dataloader(cfg[f'{split}_dataloader'], seed=seed)
