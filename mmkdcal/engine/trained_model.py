"""A trained detector or classifier and one split of its config, ready for a calibration pass.

What ``tools/calibrate.py`` and ``tools/analysis/rank_teachers.py`` share: read the config (a file
or a ``mmkdcal::``/``mmdet::`` path) with ``--cfg-options``, check the requested splits, build the
model in the config's default scope, load its checkpoint strictly (through the safe loader that
``import mmkdcal`` installs), and build a split's dataloader.
"""
import os.path as osp
import time
from typing import Iterable, Optional, Tuple

import torch
from mmengine.config import Config, ConfigDict
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from mmengine.runner.checkpoint import CheckpointLoader

from mmdet.registry import MODELS

from ..utils.checkpoint import install
from ..utils.checkpoint_match import check_checkpoint_matches, checkpoint_state_dict
from ..utils.config_scope import resolve_config_path

__all__ = ['build_split_loader', 'check_splits', 'load_trained_model', 'read_config']


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
