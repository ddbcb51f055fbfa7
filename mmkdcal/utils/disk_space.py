"""Room for the run's checkpoints, checked before training starts rather than at the first save.

A disk that cannot hold a checkpoint is otherwise found only when the first one is written, after
the iterations up to it have run: that work is lost. :func:`check_disk_space` estimates one
checkpoint of the run (:func:`checkpoint_bytes`: the model's ``state_dict`` plus the optimizer's
state for the trainable parameters) and compares it with the free space where checkpoints go:

- less than one checkpoint free: refused (:class:`DiskSpaceError`), since the first save fails;
- less than two free: a warning, since each save writes the new checkpoint before the retired one
  is removed (:class:`~mmkdcal.engine.hooks.AtomicCheckpointHook`), so the second save fails.

The estimate leaves out the small non-tensor parts (message hub, meta) and the zip archive's
per-tensor headers, which matter only for tiny models; the optimizer's share is exact for the
optimizers listed in :data:`STATE_PER_PARAM`.
"""
import errno
import logging
import os.path as osp
import shutil

import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

__all__ = ['DiskSpaceError', 'STATE_PER_PARAM', 'check_disk_space', 'checkpoint_bytes']

# Tensors of optimizer state per trainable parameter tensor, by optimizer type (torch's
# optimizers). SGD keeps a momentum buffer only when momentum > 0; unlisted types count 2.
STATE_PER_PARAM = {'SGD': 1, 'Adam': 2, 'AdamW': 2, 'Adamax': 2, 'NAdam': 2, 'RAdam': 2,
                   'Adagrad': 1, 'Adadelta': 2, 'RMSprop': 1, 'Rprop': 2, 'ASGD': 2, 'Lion': 1}
_MB = 1024 ** 2


class DiskSpaceError(OSError):
    """The checkpoint directory's disk cannot hold one checkpoint of the run."""


def _state_per_param(cfg: Config) -> int:
    wrapper = cfg.get('optim_wrapper', None) or {}
    optimizer = wrapper.get('optimizer', None) if isinstance(wrapper, dict) else None
    if not isinstance(optimizer, dict):
        return 2
    kind = optimizer.get('type', '')
    kind = kind.rsplit('.', 1)[-1] if isinstance(kind, str) else getattr(kind, '__name__', '')
    if kind == 'SGD' and not optimizer.get('momentum', 0):
        return 0
    return STATE_PER_PARAM.get(kind, 2)


def checkpoint_bytes(model: nn.Module, state_per_param: int) -> int:
    """Bytes of one checkpoint: the ``state_dict``'s tensors plus the optimizer's state.

    Args:
        model: The model the checkpoint saves (a wrapper is looked through).
        state_per_param: Optimizer state tensors per trainable parameter (Adam: 2).

    Returns:
        The estimate in bytes.
    """
    if is_model_wrapper(model):
        model = model.module
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values()
                  if hasattr(t, 'element_size'))
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return weights + state_per_param * trainable


def _existing(path: str) -> str:
    path = osp.abspath(path)
    while not osp.isdir(path) and osp.dirname(path) != path:
        path = osp.dirname(path)
    return path


def check_disk_space(model: nn.Module, cfg: Config, ckpt_dir: str) -> None:
    """Refuse (less than one checkpoint free) or warn (less than two) before training starts.

    Args:
        model: The built model.
        cfg: The full config (its ``optim_wrapper`` gives the optimizer type; its
            ``default_hooks.checkpoint`` whether checkpoints are written at all).
        ckpt_dir: Where the checkpoints go.

    Raises:
        DiskSpaceError: (``ENOSPC``) naming the directory, the free and the needed space, and
            the fix.
    """
    hooks = cfg.get('default_hooks', None) or {}
    if 'checkpoint' in hooks and not hooks['checkpoint']:
        return  # no checkpoints are written
    need = checkpoint_bytes(model, _state_per_param(cfg))
    free = shutil.disk_usage(_existing(ckpt_dir)).free
    if free >= 2 * need:
        return
    where = ('default_hooks.checkpoint.out_dir' if (hooks.get('checkpoint') or {}).get('out_dir')
             else '--work-dir')
    sizes = (f'{ckpt_dir} has {free / _MB:.1f} MiB free; one checkpoint of this run takes about '
             f'{need / _MB:.1f} MiB (weights and optimizer state)')
    fix = f'Free space on that disk, or write the checkpoints to a disk with room ({where} DIR).'
    if free < need:
        raise DiskSpaceError(
            errno.ENOSPC, f'{sizes}: the first checkpoint could not be written, and the training '
            f'up to it would be lost. {fix}')
    print_log(f'{sizes}, room for one but not two: each save writes the new checkpoint before '
              f'removing the old one, so the second save will fail. {fix}',
              logger='current', level=logging.WARNING)
