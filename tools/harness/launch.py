"""What the command-line entry points share: their common flags, the config, CPU-only DDP.

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
import os
import os.path as osp
import shlex
import subprocess
from typing import Optional

import torch
import torch.distributed as torch_dist
from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log

from mmkdcal.utils.config_scope import resolve_config_path

__all__ = ['add_common_args', 'default_work_dir', 'end_distributed', 'load_config',
           'setup_cpu_distributed']


def add_common_args(parser) -> None:
    """The flags every entry point shares: ``--work-dir``, ``--cfg-options``, ``--launcher``."""
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


def end_distributed() -> None:
    """Tear the process group down once every rank is done, so that no rank exits while the
    backend's threads still run (a rank may otherwise abort at exit)."""
    if torch_dist.is_available() and torch_dist.is_initialized():
        torch_dist.barrier()
        torch_dist.destroy_process_group()
