"""The checks ``tools/train.py`` makes on its work dir before the run starts.

- :func:`check_writable_dir`: the work dir can be written;
- :func:`refuse_new_run_over_checkpoints`: a new run (no ``--resume``) in a work dir that holds a
  complete checkpoint is refused, naming ``--resume`` (to continue that run) and a new
  ``--work-dir`` (to start another one). It refuses rather than writing beside the old files: a
  second run in the same dir would also mix its logs, ``last_checkpoint`` and visualisations with
  the first one's, and ``--resume`` could no longer tell the two apart. Truncated checkpoints do
  not count: replacing them loses nothing. (The lock that keeps two live runs apart is
  :class:`mmkdcal.utils.work_dir.WorkDirLock`.)
- :func:`configure_resume`: ``--resume`` resumes from the newest checkpoint file
  (:func:`resolve_resume`), not only from what ``last_checkpoint`` names, or refuses;
- :func:`check_disk_space`: room for the run's checkpoints, checked before training starts
  rather than at the first save, after the iterations up to it have run. One checkpoint of the
  run is estimated (:func:`checkpoint_bytes`: the model's ``state_dict`` plus the optimizer's
  state for the trainable parameters; the small non-tensor parts are left out) and compared with
  the free space where checkpoints go: less than one checkpoint free is refused
  (:class:`DiskSpaceError`), less than two warned about, since each save writes the new checkpoint
  before the retired one is removed (:class:`~mmkdcal.engine.hooks.AtomicCheckpointHook`).
"""
import errno
import logging
import os
import os.path as osp
import shutil
import tempfile
from typing import List, Optional

import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmkdcal.utils.checkpoint import check_complete
from mmkdcal.utils.checkpoint_files import (ResumeError, checkpoint_step, checkpoint_template,
                                            is_complete, list_checkpoints)

__all__ = ['DiskSpaceError', 'STATE_PER_PARAM', 'UsedWorkDirError', 'check_disk_space',
           'check_writable_dir', 'checkpoint_bytes', 'checkpoint_dir', 'complete_checkpoints',
           'configure_resume', 'refuse_new_run_over_checkpoints', 'resolve_resume']


class UsedWorkDirError(RuntimeError):
    """A new run would write over the checkpoints of an earlier run; nothing was started."""


def check_writable_dir(path: str, what: str = 'work dir') -> None:
    """Create ``path`` if needed and write (then remove) a probe file in it.

    Run before the runner is built, so that a work dir that cannot be written (a read-only
    mount, a path under ``/proc``, a path through a regular file) fails at once with its name,
    not with a bare "No such file or directory" from deep inside MMEngine.

    Args:
        path: The directory.
        what: What it is, for the message (``'work dir'``).

    Raises:
        OSError: with the failing call's ``errno``, naming ``path`` and the fix.
    """
    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix='.write_probe_', dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as exc:
        raise OSError(exc.errno, f'{what} {path!r} cannot be written ({exc.strerror or exc}): '
                      'logs and checkpoints go there. Choose a writable directory with '
                      '--work-dir DIR.') from exc


def checkpoint_dir(cfg: Config) -> str:
    """Where the config's checkpoint hook writes: the work dir, or ``out_dir/<work dir name>``.

    Args:
        cfg: The full config, with ``work_dir`` set.

    Returns:
        The directory of the run's checkpoints.
    """
    hook = (cfg.get('default_hooks', None) or {}).get('checkpoint', None) or {}
    if hook.get('out_dir', None):
        return osp.join(hook['out_dir'], osp.basename(cfg.work_dir.rstrip(osp.sep)))
    return cfg.work_dir


def complete_checkpoints(cfg: Config) -> List[str]:
    """The complete checkpoints of the config's naming in its checkpoint dir, oldest first.

    Args:
        cfg: The full config, with ``work_dir`` set.

    Returns:
        Paths of the checkpoints whose file can be read to its end
        (:func:`~mmkdcal.utils.checkpoint_files.is_complete`).
    """
    hook = (cfg.get('default_hooks', None) or {}).get('checkpoint', None) or {}
    found = list_checkpoints(checkpoint_dir(cfg), checkpoint_template(hook))
    return [path for _, path in found if is_complete(path)]


def refuse_new_run_over_checkpoints(cfg: Config) -> None:
    """Refuse a new run (no ``--resume``) in a work dir that holds a complete checkpoint.

    Args:
        cfg: The full config, with ``work_dir`` set.

    Raises:
        UsedWorkDirError: naming the newest checkpoint, ``--resume`` and ``--work-dir``.
    """
    found = complete_checkpoints(cfg)
    if not found:
        return
    raise UsedWorkDirError(
        f'work dir {cfg.work_dir!r} already holds checkpoints of an earlier run ({len(found)}, '
        f'the newest {found[-1]}); a new run there would write over them. Continue that run '
        'with --resume, or start a new run in another directory with --work-dir NEW_DIR.')


def _read_last_checkpoint(work_dir: str) -> Optional[str]:
    save_file = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(save_file):
        return None
    with open(save_file) as f:
        return f.read().strip()


def resolve_resume(work_dir: str, template: str, ckpt_dir: Optional[str] = None) -> Optional[str]:
    """The checkpoint that ``--resume`` (without a path) must resume from.

    Rules: the newest checkpoint file named by ``template`` wins. ``last_checkpoint`` (MMEngine's
    pointer) is used when it names that same file; when it names an older one, or a file that is
    not there while others are, the caller gets a :class:`ResumeError` or the newest file, as
    listed below. No checkpoint at all means a new run (None): nothing can be overwritten.

    - ``last_checkpoint`` names an existing file and no checkpoint is newer: that file.
    - ``last_checkpoint`` names an existing file but a newer checkpoint exists: ResumeError (the
      two disagree; resuming from the older one would overwrite the newer ones).
    - ``last_checkpoint`` is missing, empty or names a missing file: the newest checkpoint file.
    - ``last_checkpoint`` names a missing file and there is no checkpoint: ResumeError.

    Args:
        work_dir: The run's work dir (where ``last_checkpoint`` is).
        template: File name template of the run's checkpoints (:func:`checkpoint_template`).
        ckpt_dir: Where the checkpoints are written, if not ``work_dir`` (``CheckpointHook``'s
            ``out_dir`` joined with the work dir's name).

    Returns:
        The checkpoint path, or None when the work dir holds no checkpoint.

    Raises:
        ResumeError: as listed above.
    """
    ckpt_dir = ckpt_dir or work_dir
    found = list_checkpoints(ckpt_dir, template)
    newest = found[-1][1] if found else None
    named = _read_last_checkpoint(work_dir)
    if named and osp.isfile(named):
        step = checkpoint_step(named, template)
        if newest is None or step is None or step >= found[-1][0]:
            return named
        raise ResumeError(
            f'--resume: {osp.join(work_dir, "last_checkpoint")} names {named}, but {ckpt_dir} '
            f'holds a newer checkpoint, {newest}. Resuming from the older one would overwrite '
            f'the newer ones. Say which one to resume from: --resume {newest} (or --resume '
            f'{named} after moving the newer checkpoints away).')
    if newest is not None:
        return newest
    if named:
        raise ResumeError(
            f'--resume: {osp.join(work_dir, "last_checkpoint")} names {named}, which does not '
            f'exist, and {ckpt_dir} holds no {template.replace("{}", "*")} checkpoint. Give the '
            'checkpoint with --resume PATH, or train without --resume to start a new run.')
    return None


def configure_resume(cfg: Config, resume: Optional[str]) -> Optional[str]:
    """Set ``cfg.resume``/``cfg.load_from`` for ``--resume`` (``'auto'``) or ``--resume PATH``.

    Unlike MMEngine's auto-resume, which reads only ``last_checkpoint`` and otherwise starts a new
    run that overwrites the work dir's checkpoints, ``'auto'`` resumes from the newest checkpoint
    file (:func:`resolve_resume`) or refuses; a work dir with
    no checkpoint at all (e.g. a misspelt ``--work-dir``) is refused too, since the run asked to
    continue an earlier one and a new run would be silent about it. The chosen file must be
    complete (:func:`~mmkdcal.utils.checkpoint.check_complete`). Only files are read here.

    Args:
        cfg: The full config, with ``work_dir`` set.
        resume: None (no resume), ``'auto'``, or a checkpoint path or URL.

    Returns:
        The checkpoint resumed from, or None.

    Raises:
        ResumeError: ``'auto'`` cannot tell which checkpoint is the latest, or finds none.
        FileNotFoundError: ``resume`` names a local file that does not exist.
        CheckpointReadError: the checkpoint is truncated.
    """
    if resume is None:
        return None
    hook = (cfg.get('default_hooks', None) or {}).get('checkpoint', None) or {}
    template = checkpoint_template(hook)
    ckpt_dir = checkpoint_dir(cfg)
    if resume == 'auto':
        path = resolve_resume(cfg.work_dir, template, ckpt_dir)
        if path is None:
            where = ('does not exist' if not osp.isdir(ckpt_dir) else
                     f'holds no {template.replace("{}", "*")} checkpoint and no last_checkpoint')
            raise ResumeError(
                f'--resume: {ckpt_dir} {where}, so there is no run to continue. Check the work '
                'dir (--work-dir, or the config\'s work_dir) names the run to resume, or give '
                'the checkpoint with --resume PATH; to start a new run, leave out --resume.')
        print_log(f'--resume: resuming from {path}', logger='current')
    else:
        path = resume
        if '://' not in path:
            if not osp.isfile(path):
                raise FileNotFoundError(f'--resume {path!r}: no such checkpoint file.')
            step = checkpoint_step(path, template)
            newer = [p for s, p in list_checkpoints(ckpt_dir, template)
                     if step is not None and s > step]
            if newer:
                print_log(f'--resume {path}: {ckpt_dir} holds newer checkpoints ({newer}); this '
                          'run will replace those it reaches again.', logger='current',
                          level=logging.WARNING)
    if '://' not in path:
        check_complete(path)
    cfg.resume = True
    cfg.load_from = path
    return path


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
