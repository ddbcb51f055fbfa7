"""Shared set-up of the command-line entry points (``tools/train.py``, ``tools/test.py``...).

The one thing here that stock MMDetection lacks is :func:`setup_cpu_distributed`: MMEngine 0.10.7's
``pytorch`` and ``slurm`` launchers call ``torch.cuda.set_device`` and wrap the model with
``device_ids=[LOCAL_RANK]``, both of which fail on a machine without CUDA. Multi-process runs on CPU
(``torchrun --nproc_per_node 2 tools/train.py CFG --launcher pytorch``, or ``srun`` on CPU-only
nodes with ``--launcher slurm``) are useful to debug distributed code paths, so the entry points
initialise a ``gloo`` process group themselves and ask for a device-less DDP wrapper when CUDA is
absent. With CUDA, both launchers are MMEngine's own.

The config argument may be a scoped path (``mmkdcal::demo/gfl_r18w32_digits.py``, see
:mod:`mmkdcal.utils.config_scope`).
"""
import logging
import os
import os.path as osp
import shlex
import subprocess
import tempfile
from typing import Optional

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

from .config_scope import resolve_config_path

__all__ = ['add_common_args', 'check_writable_dir', 'configure_resume', 'default_work_dir',
           'load_config', 'setup_cpu_distributed']


def add_common_args(parser) -> None:
    """The flags every entry point shares: ``--work-dir``, ``--cfg-options``, ``--launcher``."""
    from mmengine.config import DictAction
    parser.add_argument('--work-dir', help='the dir to save logs, checkpoints and metrics')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (e.g. model.teacher_temperature=1.5)')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_config(args) -> Config:
    """Read ``args.config``, apply ``--cfg-options``, ``--launcher`` and the work dir.

    Also sets ``LOCAL_RANK`` from ``--local-rank`` when the launcher did not.
    """
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = Config.fromfile(resolve_config_path(args.config))
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = default_work_dir(cfg, args.config, args.work_dir)
    return cfg


def default_work_dir(cfg: Config, config_path: str, work_dir: Optional[str]) -> str:
    """Work dir: the command line's, else the config's, else ``./work_dirs/<config name>``."""
    if work_dir is not None:
        return work_dir
    if cfg.get('work_dir', None) is not None:
        return cfg.work_dir
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


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


def configure_resume(cfg: Config, resume: Optional[str]) -> Optional[str]:
    """Set ``cfg.resume``/``cfg.load_from`` for ``--resume`` (``'auto'``) or ``--resume PATH``.

    Unlike MMEngine's auto-resume, which reads only ``last_checkpoint`` and otherwise starts a new
    run that overwrites the work dir's checkpoints, ``'auto'`` resumes from the newest checkpoint
    file (:func:`~mmkdcal.utils.checkpoint_files.resolve_resume`) or refuses; a work dir with
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
    from .checkpoint import check_complete
    from .checkpoint_files import (ResumeError, checkpoint_step, checkpoint_template,
                                   list_checkpoints, resolve_resume)
    from .work_dir import checkpoint_dir
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


def _slurm_environment() -> None:
    """Set the ``torchrun`` variables from Slurm's, as MMEngine's ``slurm`` launcher does.

    ``RANK`` = ``SLURM_PROCID``, ``WORLD_SIZE`` = ``SLURM_NTASKS``, ``LOCAL_RANK`` =
    ``SLURM_LOCALID``, ``MASTER_ADDR`` = the first host of ``SLURM_NODELIST`` (``scontrol show
    hostname``) unless set, ``MASTER_PORT`` = 29500 unless set.
    """
    missing = [k for k in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST')
               if k not in os.environ]
    if missing:
        raise RuntimeError(
            f'--launcher slurm needs the Slurm environment variables {missing}: start the script '
            'with srun (tools/slurm_train.sh / tools/slurm_test.sh).')
    if 'MASTER_ADDR' not in os.environ:
        nodes = os.environ['SLURM_NODELIST']
        addr = subprocess.getoutput(f'scontrol show hostname {shlex.quote(nodes)} | head -n1')
        os.environ['MASTER_ADDR'] = addr.strip()
    os.environ.setdefault('MASTER_PORT', '29500')
    os.environ['RANK'] = os.environ['SLURM_PROCID']
    os.environ['WORLD_SIZE'] = os.environ['SLURM_NTASKS']
    os.environ['LOCAL_RANK'] = os.environ.get('SLURM_LOCALID', '0')


def setup_cpu_distributed(cfg: Config) -> bool:
    """Prepare ``cfg`` (and the process group) for a ``pytorch``/``slurm`` run on CPU only.

    Does nothing (returns False) unless ``cfg.launcher`` is ``'pytorch'`` or ``'slurm'`` and CUDA
    is unavailable. Otherwise it initialises a ``gloo`` process group from the ``torchrun``
    environment variables (for ``slurm``: derived from Slurm's first, as MMEngine does), so that
    MMEngine's ``init_dist`` with its ``torch.cuda.set_device`` call is skipped; records
    ``backend='gloo'`` in ``env_cfg.dist_cfg``; and sets ``model_wrapper_cfg.device_ids=None`` so
    that DistributedDataParallel wraps a CPU module.

    Args:
        cfg: The full config; ``cfg.launcher`` must already be set.

    Returns:
        True if the CPU distributed set-up was applied.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher not in ('pytorch', 'slurm') or torch.cuda.is_available():
        return False
    if launcher == 'slurm':
        _slurm_environment()
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')
               if k not in os.environ]
    if missing:
        raise RuntimeError(
            f'--launcher pytorch needs the environment variables {missing}; start the script with '
            '`torchrun --nproc_per_node N tools/train.py CONFIG --launcher pytorch` '
            '(or tools/dist_train.sh).')
    dist_cfg = cfg.setdefault('env_cfg', ConfigDict()).setdefault('dist_cfg', ConfigDict())
    backend = dist_cfg.get('backend', 'nccl')
    if backend != 'gloo':
        print_log(f'CUDA is not available: using the gloo backend instead of env_cfg.dist_cfg.'
                  f'backend={backend!r} (nccl needs GPUs).', logger='current')
    dist_cfg['backend'] = 'gloo'
    if not torch_dist.is_initialized():
        init_kwargs = {k: v for k, v in dist_cfg.items() if k != 'backend'}
        torch_dist.init_process_group(
            backend='gloo',
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']),
            **init_kwargs)
    wrapper = cfg.get('model_wrapper_cfg', None) or ConfigDict(type='MMDistributedDataParallel')
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    return True
