"""Release a trained checkpoint: the plain student's weights and the run's meta, sha256-named.

As MMDetection's ``publish_model.py`` does for its model zoo, the released file drops the
optimizer, the parameter schedulers and the message hub, and its name ends with the first 8 hex
digits of its sha256 (``<name>-<sha8>.pth``). For a distillation run it also drops every weight
that the plain student does not have (distillation-only modules such as feature adapters under
``distill_losses.``): what is left loads with ``strict=True`` into the stock student config.
``meta`` is kept (epoch/iter, seed, config text, and ``teacher_temperature``, for information).
The released file holds only tensors and plain containers, so a bare
``torch.load(path, weights_only=True)`` reads it.
"""
import inspect
import os
import os.path as osp
from typing import Any, Dict, Optional, Sequence

import torch

from mmkdcal.utils.checkpoint import file_sha256

__all__ = ['plain_student_keys', 'release_checkpoint']

#: Top-level checkpoint entries a release keeps.
KEEP = ('meta', 'state_dict')


def _student_model(model_cfg: Any) -> torch.nn.Module:
    """Build the plain student of a (distiller or plain) model config, weights not loaded."""
    from mmengine.registry import DefaultScope

    from mmdet.registry import MODELS

    import mmkdcal  # noqa: F401  (registers the distillers)
    from mmkdcal.models.distillers.distiller_mixin import DistillerMixin
    cfg = model_cfg
    with DefaultScope.overwrite_default_scope('mmdet'):
        cls = MODELS.get(cfg['type'])
        if cls is None:
            raise KeyError(f'model type {cfg["type"]!r} is not registered.')
        if not issubclass(cls, DistillerMixin):
            return MODELS.build(cfg)
        student_cls = next(b for b in cls.__mro__[1:] if issubclass(b, torch.nn.Module)
                           and not issubclass(b, DistillerMixin))
        accepted = inspect.signature(student_cls.__init__).parameters
        kwargs = {k: v for k, v in cfg.items() if k != 'type' and k in accepted}
        return student_cls(**kwargs)


def plain_student_keys(config: str, cfg_options: Sequence[str] = (),
                       student_config: Optional[str] = None) -> Dict[str, torch.Size]:
    """Names and shapes of the plain student's ``state_dict``.

    Args:
        config: The run's config (a distiller or a plain model).
        cfg_options: Its ``--cfg-options``.
        student_config: A stock student config to take the model from instead (e.g.
            ``mmdet::gfl/gfl_r50_fpn_1x_coco.py``).
    """
    from mmengine.config import Config, ConfigDict

    from .plan import in_root, parse_cfg_options
    if student_config is not None:
        if student_config.startswith('mmdet::'):
            from mmengine.hub import get_config
            model_cfg = get_config(student_config).model
        else:
            model_cfg = Config.fromfile(student_config).model
    else:
        cfg = Config.fromfile(in_root(config))
        cfg.merge_from_dict(parse_cfg_options(cfg_options))
        model_cfg = cfg.model
    student = _student_model(ConfigDict(model_cfg))  # attribute access, as detectors expect
    return {k: v.shape for k, v in student.state_dict().items()}


def release_checkpoint(in_file: str, out_dir: str, name: str,
                       student_keys: Optional[Dict[str, torch.Size]] = None) -> Dict[str, Any]:
    """Write ``<out_dir>/<name>-<sha8>.pth`` from a training checkpoint.

    Args:
        in_file: The training checkpoint (loaded with ``weights_only=True`` and mmkdcal's
            allow-list).
        out_dir: Where the released file goes.
        name: File name stem (e.g. ``kd-cal_gfl_r50_r101_1x_coco``).
        student_keys: :func:`plain_student_keys`; weights outside it are dropped, and every key
            of it must be present with its shape. None: keep the whole ``state_dict``.

    Returns:
        ``dict(file=..., sha256=..., dropped_keys=[...], dropped_entries=[...])``.

    Raises:
        KeyError: The checkpoint lacks a weight of the plain student, or has no ``state_dict``.
        ValueError: A weight's shape differs from the plain student's.
    """
    from mmkdcal.utils.checkpoint import load_checkpoint_file
    ckpt = load_checkpoint_file(in_file, map_location='cpu')
    if not isinstance(ckpt, dict) or 'state_dict' not in ckpt:
        raise KeyError(f'{in_file!r} holds no state_dict.')
    state = {k[len('module.'):] if k.startswith('module.') else k: v
             for k, v in ckpt['state_dict'].items()}
    dropped_keys = []
    if student_keys is not None:
        missing = [k for k in student_keys if k not in state]
        if missing:
            raise KeyError(f'{in_file!r} lacks {len(missing)} weights of the plain student '
                           f'(e.g. {missing[:3]}): it is not a checkpoint of this config.')
        bad = [k for k, shape in student_keys.items() if tuple(state[k].shape) != tuple(shape)]
        if bad:
            raise ValueError(f'{in_file!r}: {bad[0]} has shape {tuple(state[bad[0]].shape)}, the '
                             f'plain student {tuple(student_keys[bad[0]])}.')
        dropped_keys = sorted(k for k in state if k not in student_keys)
        state = {k: state[k] for k in student_keys}
    dropped_entries = sorted(k for k in ckpt if k not in KEEP)
    meta = dict(ckpt.get('meta', {}) or {})
    released = dict(meta=meta, state_dict={k: v.detach().clone().contiguous()
                                           for k, v in state.items()})
    os.makedirs(out_dir, exist_ok=True)
    tmp = osp.join(out_dir, f'.{name}.pth.tmp')
    torch.save(released, tmp)
    digest = file_sha256(tmp)
    final = osp.join(out_dir, f'{name}-{digest[:8]}.pth')
    os.replace(tmp, final)
    return dict(file=final, sha256=digest, dropped_keys=dropped_keys,
                dropped_entries=dropped_entries)
