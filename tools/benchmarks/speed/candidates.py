"""What every process of one peer comparison builds alike: the spec, the models, the batch.

The shared comparison (:mod:`~.peer_compare`), its peak-RSS workers and the isolated workers
(:mod:`~.isolated`) build their candidates here, from the same spec and seed, so that they time
the same weights on the same batch in the same environment.
"""
import gc
import os
import os.path as osp
from typing import Dict, Tuple

import torch

from .data import synthetic_batch
from .models import (PAIRS, build_distiller, build_student, load_model_cfg, num_classes_of,
                     save_random_teacher, shrink_model_cfg)
from .peers import build_mmdet_ld, build_mmrazor_distill, ours_losses

__all__ = ['DEFAULT_SPEC', 'MALLOC_MODES', 'MALLOC_VARS', 'ROOT', 'build_models', 'pair_configs',
           'python_env', 'setup_process', 'spec_batch']

#: The checkout these benchmarks belong to (its ``mmkdcal`` and ``tools`` are what the worker
#: processes import).
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

#: The fields of a spec (what every process of one run agrees on) and their defaults.
DEFAULT_SPEC = dict(models='coco', size=[800, 1333], batch=2, warmup=1, iters=3, threads=1,
                    seed=0, lr=1e-4, rss_steps=2, profile=False, calib_batches=2,
                    calib_repeats=2, malloc='default', isolated_iters=0,
                    isolated_sets=1, control=False)
#: glibc malloc settings of the worker processes (environment variables). ``default``: glibc's
#: own, under which blocks above 32 MiB (most activations at COCO size) are mapped for each
#: allocation and unmapped when freed, so every step page-faults them in again (the kernel
#: zero-fills each page); ``keep``: no mapped blocks and no trimming, so freed memory stays in
#: the heap and later steps reuse it (RSS stays at its high-water mark). torch's 64-byte aligned
#: blocks do not always fit a freed block of the same size (the alignment slack), so under
#: ``keep`` the heap grows over the first steps until each size finds a fit: give it warm-up.
MALLOC_MODES: Dict[str, Dict[str, str]] = {
    'default': {},
    'keep': {'MALLOC_MMAP_MAX_': '0', 'MALLOC_TRIM_THRESHOLD_': str(1 << 40)},
}
#: The malloc variables a worker does not inherit from its parent.
MALLOC_VARS = ('MALLOC_MMAP_MAX_', 'MALLOC_TRIM_THRESHOLD_', 'MALLOC_MMAP_THRESHOLD_',
               'MALLOC_TOP_PAD_', 'MALLOC_ARENA_MAX', 'GLIBC_TUNABLES')


def pair_configs(models: str) -> Tuple[dict, dict]:
    """The GFL R-50 student and R-101 teacher model dicts (``'coco'``), or shrunk (``'tiny'``)."""
    if models not in ('coco', 'tiny'):
        raise ValueError(f"models must be 'coco' or 'tiny', got {models!r}.")
    student, teacher = (load_model_cfg(name) for name in PAIRS['gfl'])
    if models == 'tiny':
        student, teacher = shrink_model_cfg(student), shrink_model_cfg(teacher)
    return student, teacher


def setup_process(spec: dict) -> None:
    """Register mmdet's and mmkdcal's modules, quiet the logger, set the spec's threads."""
    from mmengine.logging import MMLogger

    from mmdet.utils import register_all_modules

    import mmkdcal  # noqa: F401  (registers the distillers and losses; imports mmdet)
    register_all_modules(init_default_scope=True)
    MMLogger.get_current_instance().setLevel('WARNING')  # no per-parameter init_weights lines
    torch.set_num_threads(spec['threads'])


def spec_batch(spec: dict, student_cfg: dict, preprocessor) -> Tuple[torch.Tensor, list]:
    """The spec's synthetic batch (size, batch, seed), through the model's preprocessor."""
    h, w = spec['size']
    raw = synthetic_batch(spec['batch'], h, w, num_classes_of(student_cfg), seed=spec['seed'])
    data = preprocessor(raw, True)
    return data['inputs'], data['data_samples']


def build_models(peer: str, spec: dict, tmp: str, want=('student', 'ours', 'peer')) -> dict:
    """Build the wanted models of one comparison, from the spec's seed.

    Args:
        peer: A key of :data:`~.peers.PEERS`.
        spec: The run's spec (``models``, ``seed``).
        tmp: Folder for the teacher checkpoint.
        want: Which of ``student``, ``ours``, ``peer`` to return.

    Returns:
        Name -> model, all in train mode, with the same student weights (seed + 1) and the same
        teacher checkpoint (seed); plus ``student_cfg``/``teacher_cfg``.
    """
    s_cfg, t_cfg = pair_configs(spec['models'])
    want = set(want)
    out = dict(student_cfg=s_cfg, teacher_cfg=t_cfg)
    ckpt = None
    if want & {'ours', 'peer'}:
        ckpt = save_random_teacher(t_cfg, osp.join(tmp, 'teacher.pth'), spec['seed'])
        gc.collect()
    student = build_student(s_cfg, spec['seed'] + 1)
    state = student.state_dict()
    if 'ours' in want:
        out['ours'] = build_distiller(s_cfg, t_cfg, ckpt, ours_losses(peer), 1.0, state)
    if 'peer' in want:
        if peer == 'mmdet_ld':
            out['peer'] = build_mmdet_ld(s_cfg, t_cfg, ckpt, state)
        else:
            out['peer'] = build_mmrazor_distill(s_cfg, t_cfg, ckpt, state,
                                                num_levels=s_cfg['neck']['num_outs'])
    if 'student' in want:
        out['student'] = student
    else:
        del student, state
    gc.collect()
    return out


def python_env(threads: int, malloc: str = 'default') -> dict:
    """Environment of child processes: this checkout first on the path (its ``mmkdcal`` and
    ``tools``), the same threads, the malloc settings of :data:`MALLOC_MODES` (and none
    inherited from this process)."""
    if malloc not in MALLOC_MODES:
        raise ValueError(f'malloc must be one of {sorted(MALLOC_MODES)}, got {malloc!r}.')
    root = ROOT
    env = {k: v for k, v in os.environ.items() if k not in MALLOC_VARS}
    env.update(MALLOC_MODES[malloc])
    env['PYTHONPATH'] = os.pathsep.join([root] + [p for p in env.get('PYTHONPATH', '').split(
        os.pathsep) if p and osp.abspath(p) != root])
    env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
    return env
