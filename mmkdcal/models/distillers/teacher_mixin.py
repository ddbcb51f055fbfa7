"""What every mmkdcal distiller shares: a frozen teacher, its calibration temperature, the
configured distillation losses.

The teacher is a plain attribute (``object.__setattr__``), so it is not a sub-module: it is not in
``state_dict()``, ``parameters()`` or the DDP wrapper, and every checkpoint of a distillation run
is a plain student checkpoint. ``_apply`` is extended so that ``.to()/.cuda()/.cpu()`` move it.

The calibration temperature ``T`` (a scalar or one value per class) divides the teacher's
classification logits before any loss sees them. It lives in a non-persistent buffer (it moves
with the model but is not in ``state_dict``); :class:`~mmkdcal.engine.hooks.TeacherCalibrationHook`
fits it, writes it into checkpoint ``meta`` and restores it on resume.
"""
import inspect
import os.path as osp
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.runner.checkpoint import _load_checkpoint, load_state_dict

from mmdet.registry import MODELS

from ...utils.config_scope import resolve_config_path

__all__ = ['TeacherMixin', 'load_teacher_config']

TemperatureLike = Union[None, float, int, Sequence[float], torch.Tensor]


def load_teacher_config(teacher_config: Union[str, Path, dict, Config]) -> ConfigDict:
    """Return the teacher's model config from a path, a ``<scope>::`` path, a config or a dict.

    Args:
        teacher_config: A config file path, a scoped path (``'mmkdcal::demo/...py'``,
            ``'mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py'``), a full
            config (with a ``model`` key) or the model dict itself.

    Returns:
        The teacher's model config.
    """
    if isinstance(teacher_config, Path):
        teacher_config = str(teacher_config)
    if isinstance(teacher_config, str):
        teacher_config = resolve_config_path(teacher_config)  # 'mmkdcal::...', 'mmdet::...'
        if not osp.isfile(teacher_config):
            raise FileNotFoundError(
                f'teacher_config {teacher_config!r} does not exist: give a config file path '
                "(relative to where training starts), a '<scope>::<family>/<config>.py' path "
                "('mmkdcal::', 'mmdet::') or the model dict.")
        teacher_config = Config.fromfile(teacher_config)
    if not isinstance(teacher_config, (dict, Config)):
        raise TypeError(f'teacher_config must be a path or a dict, got {type(teacher_config)}.')
    model_cfg = teacher_config.get('model', teacher_config)
    if 'type' not in model_cfg:
        raise ValueError('teacher_config has no model type: it must be a config with a `model` '
                         'dict or the model dict itself.')
    return ConfigDict(model_cfg)


class TeacherMixin:
    """Teacher handling for distillers; mix into an ``nn.Module`` subclass (before it in the MRO).

    Subclasses call :meth:`_init_teacher` in ``__init__`` after the student is built, and
    :meth:`_init_distill_losses` to build the losses.
    """

    #: The ``inputs`` values a distiller accepts in ``distill_losses`` (set by each subclass).
    DISTILL_INPUTS: Sequence[str] = ()

    teacher: nn.Module

    # ------------------------------------------------------------------ construction
    def _init_teacher(self,
                      teacher_config: Union[str, Path, dict, Config],
                      teacher_ckpt: Optional[str],
                      teacher_temperature: TemperatureLike = None,
                      teacher_fp16: bool = False) -> None:
        if not teacher_ckpt:
            raise ValueError(
                'teacher_ckpt is required: distillation needs a trained teacher. Set '
                'model.teacher_ckpt to a checkpoint path or URL (e.g. with '
                '`--cfg-options model.teacher_ckpt=PATH`).')
        model_cfg = load_teacher_config(teacher_config)
        teacher = MODELS.build(model_cfg)
        self._load_teacher_weights(teacher, teacher_ckpt)
        teacher.eval()
        for p in teacher.parameters():
            p.requires_grad_(False)
        object.__setattr__(self, 'teacher', teacher)
        self.teacher_ckpt = teacher_ckpt
        self.teacher_fp16 = bool(teacher_fp16)
        self._check_preprocessors(model_cfg)
        self.register_buffer('_teacher_temperature', torch.ones(()), persistent=False)
        self.temperature_source: Optional[str] = None
        if teacher_temperature is not None:
            self.set_teacher_temperature(teacher_temperature, source='config')

    @staticmethod
    def _load_teacher_weights(teacher: nn.Module, teacher_ckpt: str) -> None:
        is_url = teacher_ckpt.startswith(('http://', 'https://'))
        if not is_url and not osp.isfile(teacher_ckpt):
            raise FileNotFoundError(
                f'model.teacher_ckpt {teacher_ckpt!r} does not exist. Train the teacher first '
                'or point teacher_ckpt at its checkpoint (path or URL).')
        try:
            ckpt = _load_checkpoint(teacher_ckpt, map_location='cpu')
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise RuntimeError(
                f'model.teacher_ckpt {teacher_ckpt!r} could not be read as a checkpoint '
                f'({type(exc).__name__}: {exc}). Check that the file is complete and was written '
                'by torch.save / MMEngine.') from exc
        state_dict = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
        if not isinstance(state_dict, dict):
            raise RuntimeError(f'model.teacher_ckpt {teacher_ckpt!r} holds no state_dict.')
        state_dict = {k[len('module.'):] if k.startswith('module.') else k: v
                      for k, v in state_dict.items()}
        own = teacher.state_dict()
        missing = [k for k in own if k not in state_dict]
        if missing:
            raise RuntimeError(
                f'model.teacher_ckpt {teacher_ckpt!r} does not match model.teacher_config: '
                f'{len(missing)} teacher weights are missing from it (e.g. {missing[:3]}). A '
                'teacher with random weights would teach noise; use the checkpoint trained with '
                'that config.')
        shape_errors = [k for k, v in own.items() if tuple(state_dict[k].shape) != tuple(v.shape)]
        if shape_errors:
            k = shape_errors[0]
            raise RuntimeError(
                f'model.teacher_ckpt {teacher_ckpt!r} does not match model.teacher_config: '
                f'{k} has shape {tuple(state_dict[k].shape)} in the checkpoint but '
                f'{tuple(own[k].shape)} in the model (e.g. a different num_classes).')
        load_state_dict(teacher, state_dict, strict=False)

    def _check_preprocessors(self, teacher_model_cfg: ConfigDict) -> None:
        """The teacher sees the student's preprocessed batch: the normalisation must agree."""
        t_pre = teacher_model_cfg.get('data_preprocessor', None) or {}
        s_pre = getattr(self, 'data_preprocessor', None)
        for key in ('mean', 'std'):
            t_val = t_pre.get(key, None)
            s_val = getattr(s_pre, key, None)
            if t_val is None or s_val is None:
                continue
            t_val = torch.as_tensor(t_val, dtype=torch.float32).flatten()
            if not torch.allclose(t_val, s_val.detach().float().flatten().cpu(), atol=1e-3):
                raise ValueError(
                    f'The teacher normalises images with {key}={t_val.tolist()} but the student '
                    f'with {key}={s_val.flatten().tolist()}; the teacher runs on the student\'s '
                    'batch, so set the same data_preprocessor mean/std in both configs (or use a '
                    'teacher trained with the student\'s normalisation).')
        t_bgr = t_pre.get('bgr_to_rgb', None)
        s_bgr = getattr(s_pre, '_channel_conversion', None)
        if t_bgr is not None and s_bgr is not None and bool(t_bgr) != bool(s_bgr):
            raise ValueError(
                f'data_preprocessor.bgr_to_rgb is {bool(t_bgr)} for the teacher but '
                f'{bool(s_bgr)} for the student: set the same value in both configs.')

    def _init_distill_losses(self, distill_losses: Optional[Dict[str, dict]]) -> None:
        """Build ``distill_losses`` (name -> loss config with an ``inputs`` key)."""
        self.distill_losses = nn.ModuleDict()
        self.distill_inputs: Dict[str, str] = {}
        self._loss_wants_labels: Dict[str, bool] = {}
        for name, cfg in (distill_losses or {}).items():
            if not name.startswith('loss_'):
                raise ValueError(
                    f'distill_losses key {name!r} must start with "loss_" (MMEngine only '
                    f'back-propagates loss_* entries); rename it to "loss_{name}".')
            cfg = dict(cfg)
            inputs = cfg.pop('inputs', None)
            if inputs not in self.DISTILL_INPUTS:
                raise ValueError(
                    f'distill_losses.{name}.inputs is {inputs!r}; {type(self).__name__} accepts '
                    f'one of {list(self.DISTILL_INPUTS)} (which outputs the loss compares).')
            self.distill_losses[name] = MODELS.build(cfg)
            self.distill_inputs[name] = inputs
            params = inspect.signature(self.distill_losses[name].forward).parameters
            self._loss_wants_labels[name] = 'labels' in params

    # ------------------------------------------------------------------ temperature
    @property
    def has_teacher_temperature(self) -> bool:
        """Whether a calibration temperature was given or fitted."""
        return self.temperature_source is not None

    @property
    def teacher_temperature(self) -> torch.Tensor:
        """The calibration temperature (0-dim, or one value per class)."""
        if not self.has_teacher_temperature:
            raise RuntimeError(
                'The teacher has no calibration temperature yet: model.teacher_temperature is None '
                'and no TeacherCalibrationHook fitted one. Add '
                "custom_hooks=[dict(type='TeacherCalibrationHook')] to the config, or set "
                'model.teacher_temperature (1.0 = distil from the uncalibrated teacher).')
        return self._teacher_temperature

    def num_teacher_logit_classes(self) -> int:
        """Number of classification logits per location/RoI/image of the teacher."""
        raise NotImplementedError

    def set_teacher_temperature(self, temperature: TemperatureLike, source: str = 'given') -> None:
        """Set the calibration temperature.

        Args:
            temperature: A positive float, or a sequence/tensor with one positive value per class
                of the teacher's classification logits.
            source: Where it comes from (``'config'``, ``'fitted'``, ``'checkpoint'``), for logs.
        """
        if temperature is None:
            raise ValueError('teacher_temperature must be a positive number or one per class, '
                             'not None.')
        t = torch.as_tensor(temperature, dtype=torch.float32).detach().cpu()
        if t.dim() > 1:
            raise ValueError(f'teacher_temperature must be a scalar or a 1-D list, got shape '
                             f'{tuple(t.shape)}.')
        if not torch.isfinite(t).all() or (t <= 0).any():
            raise ValueError(f'teacher_temperature must be finite and > 0, got {t.tolist()}.')
        if t.dim() == 1:
            k = self.num_teacher_logit_classes()
            if t.numel() == 1:
                t = t.reshape(())
            elif t.numel() != k:
                raise ValueError(
                    f'teacher_temperature has {t.numel()} values but the teacher has {k} '
                    'classification logits: give one value, or one per logit.')
        self._teacher_temperature = t.to(self._teacher_temperature.device)
        self.temperature_source = source

    def scale_teacher_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Divide teacher classification logits (classes in the last dim) by the temperature."""
        t = self.teacher_temperature
        return logits / t.to(dtype=logits.dtype)

    # ------------------------------------------------------------------ running the teacher
    @contextmanager
    def teacher_context(self, device_type: str) -> Iterator[None]:
        """``no_grad`` (+ fp16 autocast when ``teacher_fp16``) around teacher computations."""
        with torch.no_grad():
            if self.teacher_fp16:
                with torch.autocast(device_type=device_type, dtype=torch.float16):
                    yield
            else:
                yield

    @staticmethod
    def _float(x):
        """Cast (nested lists/tuples of) fp16 outputs back to fp32."""
        if isinstance(x, torch.Tensor):
            return x.float() if x.is_floating_point() else x
        if isinstance(x, (list, tuple)):
            return type(x)(TeacherMixin._float(v) for v in x)
        return x

    # ------------------------------------------------------------------ nn.Module plumbing
    def _apply(self, fn, *args, **kwargs):
        """Apply ``fn`` (``.to()``, ``.cuda()``...) to the teacher too."""
        teacher = self.__dict__.get('teacher', None)
        if teacher is not None:
            teacher._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def train(self, mode: bool = True):
        """The student follows ``mode``; the teacher stays in eval mode."""
        super().train(mode)
        teacher = self.__dict__.get('teacher', None)
        if teacher is not None:
            teacher.train(False)
        return self

    def _call_distill_loss(self, name: str, *args, **kwargs) -> torch.Tensor:
        loss = self.distill_losses[name]
        if getattr(loss, 'needs_iter', False):
            from mmengine.logging import MessageHub
            kwargs['cur_iter'] = MessageHub.get_current_instance().get_info('iter', 0)
        return loss(*args, **kwargs)

    @staticmethod
    def _log(msg: str) -> None:
        print_log(msg, logger='current')


def flatten_level_outputs(outputs: List[torch.Tensor], channels: int) -> torch.Tensor:
    """Flatten per-level dense-head outputs (N, A*C, H, W) to (N * sum(A*H*W), C).

    The ordering is (level, image, y, x, anchor) and identical for student and teacher when
    their head layouts agree.
    """
    return torch.cat([o.permute(0, 2, 3, 1).reshape(-1, channels) for o in outputs], dim=0)
