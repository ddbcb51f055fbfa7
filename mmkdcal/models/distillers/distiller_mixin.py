"""What every mmkdcal distiller shares: the frozen teacher, its calibration temperature, the
configured distillation losses and the one training step that uses them.

The teacher is a plain attribute (``object.__setattr__``): not in ``state_dict()``,
``parameters()`` or DDP; ``_apply`` moves it with the student. Distillation-only parameters
(feature adapters) stay out of ``state_dict()`` and travel in MMEngine's ``MessageHub`` under
:data:`DISTILL_STATE_KEY` (:meth:`DistillerMixin._sync_distill_state`). The training step
(:meth:`DistillerMixin.loss`) and the run-time state: docs/distillation_protocol.md.
"""
import copy
import math
import os.path as osp
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Union

import torch
import torch.nn as nn
from mmengine.config import Config, ConfigDict
from mmengine.logging import MessageHub, print_log
from mmengine.runner.checkpoint import _load_checkpoint, load_state_dict
from torch import Tensor

from mmdet.registry import MODELS

from ...calibration.calibrators import CALIBRATORS, apply_calibrator
from ...utils.config_scope import resolve_config_path
from ...utils.read_errors import checkpoint_read_error, is_url
from ..contract import DistillBatch, DistillInput, call_distill_loss, check_loss_input
from .heterogeneous import HeteroPair
from .taps import OutputTaps, single_call
from .teacher_classes import teacher_dataset_meta
from .teacher_inference import apply_teacher_inference, resolve_teacher_inference
from .zoo import check_student

__all__ = ['DISTILL_STATE_KEY', 'DistillerMixin', 'TEMPERATURE_RANGE', 'adopt_legacy_distill_state',
           'flatten_level_outputs', 'foreground_confidence', 'load_teacher_config']

TemperatureLike = Union[None, float, int, Sequence[float], torch.Tensor]

#: Temperatures accepted from a config or a checkpoint (the NLL fit's own range).
TEMPERATURE_RANGE = (1e-3, 1e3)

#: Loss names that MMDetection's own heads return: a distillation loss must not replace one.
STOCK_LOSS_NAMES = frozenset({
    'loss_cls', 'loss_bbox', 'loss_dfl', 'loss_centerness', 'loss_iou', 'loss_obj', 'loss_mask',
    'loss_rpn_cls', 'loss_rpn_bbox', 'loss_bbox_rf', 'loss_center_heatmap', 'loss_wh',
    'loss_offset', 'loss_l1', 'loss_semantic_seg', 'loss_mask_iou'})

#: state_dict prefixes of distillation-only modules (kept out of the student checkpoint).
DISTILL_ONLY_PREFIXES = ('distill_losses.', )

#: MessageHub runtime-info key under which a training run keeps the distillation-only state.
DISTILL_STATE_KEY = 'mmkdcal_distill_state'


def load_teacher_config(teacher_config: Union[str, Path, dict, Config]) -> ConfigDict:
    """The teacher's model config from a config file path, a scoped path
    (``'mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py'``), a full config (with ``model``) or the model
    dict itself."""
    if isinstance(teacher_config, Path):
        teacher_config = str(teacher_config)
    if isinstance(teacher_config, str):
        teacher_config = resolve_config_path(teacher_config)  # 'mmkdcal::...', 'mmdet::...'
        if not osp.isfile(teacher_config):
            raise FileNotFoundError(
                f'model.teacher_config {teacher_config!r} does not exist: give a config file path '
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


def check_temperature(temperature, num_classes: Optional[int]) -> Tensor:
    """Validate a calibration temperature (a number, or one per class of ``num_classes``
    teacher logits); return it as a 0-dim or (K,) float32 CPU tensor."""
    field = 'model.teacher_temperature'
    lo, hi = TEMPERATURE_RANGE
    values = temperature.tolist() if isinstance(temperature, Tensor) else temperature
    flat = values if isinstance(values, (list, tuple)) else [values]
    if not flat or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in flat):
        raise TypeError(
            f'{field} must be a number (e.g. 1.5) or a list with one number per class, got '
            f'{temperature!r}; use None to let TeacherCalibrationHook fit it and 1.0 to distil '
            'from the uncalibrated teacher.')
    t = torch.tensor([float(v) for v in flat], dtype=torch.float32)
    if isinstance(values, (list, tuple)) and any(isinstance(v, (list, tuple)) for v in values):
        raise ValueError(f'{field} must be a number or a flat list, got {temperature!r}.')
    if not all(math.isfinite(float(v)) and lo <= float(v) <= hi for v in flat):
        raise ValueError(
            f'{field} must be finite and within [{lo:g}, {hi:g}] (the range the calibration fit '
            f'searches; T = 1 leaves the teacher as it is), got {values}.')
    if not isinstance(values, (list, tuple)) or len(flat) == 1:
        return t.reshape(())
    if num_classes is not None and len(flat) != num_classes:
        raise ValueError(f'{field} has {len(flat)} values but the teacher has {num_classes} '
                         'classification logits: give one value, or one per logit.')
    return t


def flatten_level_outputs(outputs: Sequence[Tensor], channels: int) -> Tensor:
    """Flatten per-level dense-head outputs (N, A*C, H, W) to (N * sum(A*H*W), C), in
    (level, image, y, x, anchor) order."""
    return torch.cat([o.permute(0, 2, 3, 1).reshape(-1, channels) for o in outputs], dim=0)


def foreground_confidence(logits: Tensor, activation: str) -> Tensor:
    """The largest foreground class probability of each row (classes in the last dim; a
    softmax's last class is the background)."""
    probs = logits.sigmoid() if activation == 'sigmoid' else logits.softmax(dim=-1)[..., :-1]
    return probs.max(dim=-1).values


class DistillerMixin:
    """The shared part of every distiller; mix into an MMDetection model class (first in the MRO).

    The distiller of a student class ``X`` is an explicit, registered class
    ``DistillX(<kind distiller>, X)``, the student class last (:attr:`STUDENT_CLASS`): it *is*
    an ``X`` and keeps ``X``'s behaviour. Subclasses set :attr:`DISTILL_INPUTS`, call
    :meth:`_init_distiller` at the end of ``__init__``, and implement :meth:`_check_teacher`,
    :meth:`num_teacher_logit_classes`, :meth:`_tap_student` and :meth:`_distill_batches`.
    """

    #: The outputs this distiller can hand to a loss, selected by ``inputs``.
    DISTILL_INPUTS: Sequence[DistillInput] = ()
    #: The student's model class: the distiller class's last base (set when it is defined).
    STUDENT_CLASS: Optional[type] = None

    teacher: nn.Module
    #: False once DistillStopHook has stopped distillation (the student trains on its task alone).
    distill_enabled: bool = True
    #: Set by ``_check_teacher`` for a teacher of another head family (:mod:`.heterogeneous`).
    hetero: Optional[HeteroPair] = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        student = cls.__bases__[-1]
        if issubclass(student, nn.Module) and not issubclass(student, DistillerMixin):
            cls.STUDENT_CLASS = student

    def __init__(self, *args, **kwargs) -> None:
        """Refuse the retired ``student_type`` key (naming the class to use) and a student of a
        refused family (:func:`.zoo.check_student`), then build the student."""
        if 'student_type' in kwargs:
            raise ValueError(_student_type_message(type(self), kwargs['student_type']))
        check_student(kwargs)
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------ construction
    def _init_distiller(self,
                        teacher_config: Union[str, Path, dict, Config],
                        teacher_ckpt: Optional[str],
                        teacher_temperature: TemperatureLike,
                        teacher_inference: Optional[dict],
                        distill_losses: Optional[Dict[str, dict]],
                        teacher_fp16: Optional[bool] = None) -> None:
        """Build, check, load, freeze and speed up the teacher (``teacher_inference``, see
        :mod:`.teacher_inference`; ``teacher_fp16`` is its retired alias); build and check the
        losses."""
        if not teacher_ckpt:
            raise ValueError(
                'model.teacher_ckpt is required: distillation needs a trained teacher. Set '
                'model.teacher_ckpt to a checkpoint path or URL (e.g. with '
                '`--cfg-options model.teacher_ckpt=PATH`).')
        self.teacher_inference = resolve_teacher_inference(teacher_inference, teacher_fp16)
        teacher = MODELS.build(load_teacher_config(teacher_config))
        # what the teacher *is* comes first: family, classes, head layout, normalisation
        self._check_teacher(teacher)
        if self.hetero is not None and isinstance(distill_losses, dict):
            for name, cfg in distill_losses.items():  # what the pair allows, before the weights
                self.hetero.check_input(name, cfg.get('inputs') if isinstance(cfg, dict) else None)
        self._check_preprocessors(teacher)
        self._load_teacher_weights(teacher, teacher_ckpt)
        apply_teacher_inference(teacher, self.teacher_inference)  # eval mode, frozen
        object.__setattr__(self, 'teacher', teacher)
        self.teacher_ckpt = teacher_ckpt
        self.register_buffer('_teacher_temperature', torch.ones(()), persistent=False)
        self.temperature_source: Optional[str] = None
        self._teacher_calibrator: Optional[Dict[str, Any]] = None  # a calibrator other than T
        if teacher_temperature is not None:
            self.set_teacher_temperature(teacher_temperature, source='config')
        self._init_distill_losses(distill_losses)
        self._register_state_dict_hook(_drop_distill_only_keys)

    def _check_teacher(self, teacher: nn.Module) -> None:
        """Raise ValueError unless ``teacher`` can teach this student (family, classes, layout)."""
        raise NotImplementedError

    def _check_preprocessors(self, teacher: nn.Module) -> None:
        """The teacher sees the student's preprocessed batch: the *effective* normalisation
        (none: mean 0, std 1, no channel swap) must agree."""
        def effective(pre):
            on = bool(getattr(pre, '_enable_normalize', False))
            mean = pre.mean.detach().float().flatten().cpu() if on else torch.zeros(1)
            std = pre.std.detach().float().flatten().cpu() if on else torch.ones(1)
            return dict(mean=mean, std=std,
                        bgr_to_rgb=bool(getattr(pre, '_channel_conversion', False)))

        s_pre = getattr(self, 'data_preprocessor', None)
        t_pre = getattr(teacher, 'data_preprocessor', None)
        if s_pre is None or t_pre is None:
            return
        s, t = effective(s_pre), effective(t_pre)
        if s['bgr_to_rgb'] != t['bgr_to_rgb'] and all(torch.allclose(
                *torch.broadcast_tensors(s[k].flip(0), t[k]), atol=1e-3) for k in ('mean', 'std')):
            raise ValueError(
                'The teacher and the student normalise the same colours in reversed channel order '
                f"(data_preprocessor.bgr_to_rgb is {t['bgr_to_rgb']} for the teacher, "
                f"{s['bgr_to_rgb']} for the student); the teacher runs on the student's batch, so "
                "give the student the teacher's data_preprocessor mean, std and bgr_to_rgb (it "
                "then trains in the teacher's channel order).")
        for key in ('mean', 'std'):
            a, b = torch.broadcast_tensors(s[key], t[key])
            if not torch.allclose(a, b, atol=1e-3):
                raise ValueError(
                    f'The teacher normalises images with {key}={t[key].tolist()} but the student '
                    f'with {key}={s[key].tolist()} (no mean/std means no normalisation); the '
                    "teacher runs on the student's batch, so set the same data_preprocessor "
                    'mean/std in both configs (or use a teacher trained with the student\'s '
                    'normalisation).')
        if s['bgr_to_rgb'] != t['bgr_to_rgb']:
            raise ValueError(
                f"data_preprocessor.bgr_to_rgb is {t['bgr_to_rgb']} for the teacher but "
                f"{s['bgr_to_rgb']} for the student: set the same value in both configs.")

    @staticmethod
    def _load_teacher_weights(teacher: nn.Module, teacher_ckpt: str) -> None:
        if not is_url(teacher_ckpt):
            if osp.isdir(teacher_ckpt):
                raise IsADirectoryError(
                    f'model.teacher_ckpt {teacher_ckpt!r} is a directory; point it at the '
                    "teacher's checkpoint file inside it (e.g. a work dir's iter_*.pth / "
                    'epoch_*.pth, whose name its last_checkpoint file holds).')
            if not osp.isfile(teacher_ckpt):
                raise FileNotFoundError(
                    f'model.teacher_ckpt {teacher_ckpt!r} does not exist. Train the teacher first '
                    'or point teacher_ckpt at its checkpoint (path or URL).')
        try:
            ckpt = _load_checkpoint(teacher_ckpt, map_location='cpu')
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise checkpoint_read_error('model.teacher_ckpt', teacher_ckpt, exc) from exc
        teacher.dataset_meta = teacher_dataset_meta(ckpt)  # checked by check_teacher_classes
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
        bad = [k for k in own if state_dict[k].is_floating_point()
               and not torch.isfinite(state_dict[k]).all()]
        if bad:
            raise ValueError(
                f'model.teacher_ckpt {teacher_ckpt!r} holds NaN/inf weights ({len(bad)} tensors, '
                f'e.g. {bad[:3]}): the teacher would teach NaN. Use an earlier checkpoint of the '
                'teacher run (training probably diverged).')
        load_state_dict(teacher, state_dict, strict=False)

    @property
    def distill_input_specs(self) -> Dict[str, DistillInput]:
        """The inputs this distiller offers, by name (feature widths filled in where known)."""
        return {spec.name: spec for spec in self._input_specs()}

    def _input_specs(self) -> List[DistillInput]:
        """The class's :attr:`DISTILL_INPUTS`; subclasses may fill in ``channels``."""
        return list(self.DISTILL_INPUTS)

    def _init_distill_losses(self, distill_losses: Optional[Dict[str, dict]]) -> None:
        """Build ``distill_losses``; check each against the distiller input it names."""
        self.distill_losses = nn.ModuleDict()
        self.distill_inputs: Dict[str, str] = {}
        specs = self.distill_input_specs
        if distill_losses is not None and not isinstance(distill_losses, dict):
            raise TypeError(f'model.distill_losses must be a dict of loss configs, got '
                            f'{type(distill_losses).__name__}.')
        for name, cfg in (distill_losses or {}).items():
            if not name.startswith('loss_'):
                raise ValueError(
                    f'distill_losses key {name!r} must start with "loss_" (MMEngine only '
                    f'back-propagates loss_* entries); rename it to "loss_{name}".')
            if name in STOCK_LOSS_NAMES:
                raise ValueError(
                    f'distill_losses key {name!r} is a name the student\'s own losses use; it '
                    f'would replace that task loss. Rename it (e.g. "loss_kd_{name[5:]}").')
            if not isinstance(cfg, dict) or 'type' not in cfg:
                raise ValueError(f'distill_losses.{name} must be a loss config dict with a '
                                 "'type' and an 'inputs' key.")
            cfg = dict(cfg)
            inputs = cfg.pop('inputs', None)
            loss = MODELS.build(cfg)
            check_loss_input(name, loss, specs.get(inputs), type(self).__name__, specs)
            self.distill_losses[name] = loss
            self.distill_inputs[name] = inputs

    # ------------------------------------------------------------------ calibration
    @property
    def has_teacher_temperature(self) -> bool:
        """Whether a calibrator (a temperature or another) was given, fitted or restored."""
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
        if self._teacher_calibrator is not None:
            raise RuntimeError(f"The teacher is calibrated by "
                               f"'{self._teacher_calibrator['calibrator']}', not by a temperature: "
                               'read model.teacher_calibration.')
        return self._teacher_temperature

    @property
    def teacher_calibration(self) -> Dict[str, Any]:
        """The teacher's calibrator as :func:`mmkdcal.calibration.fit_calibrator` states it."""
        if self._teacher_calibrator is not None:
            return self._teacher_calibrator
        t = self.teacher_temperature.detach().cpu()
        return dict(calibrator='temperature' if t.dim() == 0 else 'class_temperature', mode=None,
                    t=t)

    def num_teacher_logit_classes(self) -> int:
        """Number of classification logits per location/RoI/image of the teacher."""
        raise NotImplementedError

    def set_teacher_temperature(self, temperature: TemperatureLike, source: str = 'given') -> None:
        """Set the calibration temperature: a float in :data:`TEMPERATURE_RANGE`, or one per
        class logit of the teacher; ``source`` (``'config'``, ``'fitted'``...) for logs."""
        if temperature is None:
            raise ValueError('teacher_temperature must be a positive number or one per class, '
                             'not None.')
        t = check_temperature(temperature, self.num_teacher_logit_classes())
        self._teacher_temperature = t.to(self._teacher_temperature.device)
        self._teacher_calibrator = None
        self.temperature_source = source

    def set_teacher_calibration(self, state: Dict[str, Any], source: str = 'given') -> None:
        """Set the teacher's calibrator (temperature, Platt, isotonic...) from ``state``, the
        output of :func:`mmkdcal.calibration.fit_calibrator`; ``source`` for logs."""
        name = state.get('calibrator') if isinstance(state, dict) else None
        if name in ('temperature', 'class_temperature'):
            self.set_teacher_temperature(state['t'], source)
            return
        if name not in CALIBRATORS:
            raise ValueError(f'A teacher calibrator state needs calibrator= one of '
                             f'{sorted(CALIBRATORS)}, got {state!r:.200}.')
        k = self.num_teacher_logit_classes()
        for key, value in state.items():
            if isinstance(value, Tensor) and value.shape[0] != k:
                raise ValueError(
                    f"The '{name}' calibrator has {value.shape[0]} classes but this teacher's "
                    f'class logits have {k} ({type(self).__name__}); a calibrator fitted on '
                    "detection scores (fit_on='detections') covers the K object classes, while a "
                    "softmax head's logits add a background class: fit it on the head's logits "
                    "(fit_on='rois' or 'queries_softmax') or use calibrator='temperature'.")
        self._teacher_calibrator = dict(state)
        self._teacher_temperature = torch.ones((), device=self._teacher_temperature.device)
        self.temperature_source = source

    def scale_teacher_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrate teacher classification logits (classes in the last dim): divide them by the
        temperature, or map them by the teacher's other calibrator."""
        if self._teacher_calibrator is not None:
            return apply_calibrator(self._teacher_calibrator, logits)
        t = self.teacher_temperature
        return logits / t.to(dtype=logits.dtype)

    # ------------------------------------------------------------------ the training step
    def loss(self, batch_inputs: Tensor, batch_data_samples) -> dict:
        """The student's stock losses plus every configured distillation loss."""
        if not self.distill_losses:
            return super().loss(batch_inputs, batch_data_samples)
        self._sync_distill_state()
        if not self.distill_enabled:  # stopped by DistillStopHook: no teacher, zero KD terms
            losses = super().loss(batch_inputs, batch_data_samples)
            for name, loss in self.distill_losses.items():  # adapters stay in the graph (DDP)
                losses[name] = sum((0.0 * p.sum() for p in loss.parameters()),
                                   batch_inputs.new_zeros(()))
            return losses
        needed = set(self.distill_inputs.values())
        teacher_out = self._teacher_before_student(batch_inputs, needed)
        with OutputTaps() as taps:
            self._tap_student(taps, needed)
            losses = super().loss(batch_inputs, batch_data_samples)
        batches = self._distill_batches(taps, batch_inputs, batch_data_samples, needed,
                                        teacher_out)
        if self.hetero is not None and 'neck' in batches:
            batches['neck'] = self.hetero.pair_levels(batches['neck'])
        return self._add_distill_terms(losses, batches)

    def _add_distill_terms(self, losses: dict, batches: Dict[str, DistillBatch]) -> dict:
        """Add every configured distillation loss on ``batches`` to ``losses`` (in place)."""
        specs = self.distill_input_specs
        cur_iter = self._train_iter()
        for name, loss in self.distill_losses.items():
            if name in losses:
                raise ValueError(f'distill_losses key {name!r} is also a loss of the student '
                                 f'({type(self).__name__}); rename it, e.g. to '
                                 f'"loss_kd_{name[5:]}".')
            spec = specs[self.distill_inputs[name]]
            losses[name] = call_distill_loss(loss, batches[spec.name], spec, cur_iter)
        return losses

    def _train_iter(self) -> Optional[int]:
        """The 0-based training iteration from MMEngine's MessageHub, when a loss needs it."""
        needing = [name for name, loss in self.distill_losses.items()
                   if getattr(loss, 'needs_iter', False)]
        if not needing:
            return None
        cur_iter = MessageHub.get_current_instance().get_info('iter')
        if cur_iter is None:
            raise RuntimeError(
                f'distill_losses {needing} need the training iteration, which MMEngine\'s '
                "training loop publishes in its MessageHub ('iter'), and none is set: "
                'model.loss was called outside a Runner. Set it before the call with '
                "MessageHub.get_current_instance().update_info('iter', i) (i: the 0-based "
                'iteration).')
        return int(cur_iter)

    def _tap_student(self, taps: OutputTaps, needed: Set[str]) -> None:
        """Register on ``taps`` what the student's stock ``loss()`` must record."""
        raise NotImplementedError

    def _tap_neck(self, taps: OutputTaps) -> None:
        """Record the student's neck (or backbone) levels under ``'feats'``."""
        taps.module_output('feats', self.neck if self.with_neck else self.backbone)

    @staticmethod
    def _neck_batch(taps: OutputTaps, t_feats) -> DistillBatch:
        """The student's recorded neck levels against the teacher's ``t_feats``."""
        return DistillBatch(list(single_call(taps['feats'], 'neck')), list(t_feats))

    def _teacher_before_student(self, batch_inputs: Tensor, needed: Set[str]):
        """The teacher's outputs that do not depend on the student, computed first (handed to
        :meth:`_distill_batches` as ``teacher_out``); None: the teacher runs after."""
        return None

    def _distill_batches(self, taps: OutputTaps, batch_inputs: Tensor, batch_data_samples,
                         needed: Set[str], teacher_out=None) -> Dict[str, DistillBatch]:
        """Run the teacher's needed parts and pair its outputs with the student's."""
        raise NotImplementedError

    # ------------------------------------------------------------------ running the teacher
    @contextmanager
    def teacher_context(self, device_type: str) -> Iterator[None]:
        """``no_grad`` around teacher computations (its children apply its precision)."""
        with torch.no_grad():
            yield

    @staticmethod
    def _check_finite(t: Tensor, what: str) -> None:
        """Fail on NaN/inf teacher outputs (checked on the device on CUDA: no sync per step)."""
        msg = (f'The teacher produced NaN/inf {what}: check teacher_ckpt and the input '
               'normalisation (data_preprocessor), or set teacher_inference.precision to '
               "'fp32'.")
        if t.is_cuda:
            torch._assert_async(torch.isfinite(t).all(), msg)
        elif not torch.isfinite(t).all():
            raise FloatingPointError(msg)

    # ------------------------------------------------------------------ distillation-only state
    def distill_state_dict(self) -> Dict[str, Tensor]:
        """Parameters and buffers of the distillation-only modules (feature adapters)."""
        out: Dict[str, Tensor] = {}
        for prefix in DISTILL_ONLY_PREFIXES:
            module = getattr(self, prefix.rstrip('.'))
            for k, v in module.state_dict().items():
                out[prefix + k] = v.detach()
        return out

    def load_distill_state_dict(self, state: Dict[str, Tensor]) -> None:
        """Load :meth:`distill_state_dict` output (strict: every key, every shape)."""
        for prefix in DISTILL_ONLY_PREFIXES:
            module = getattr(self, prefix.rstrip('.'))
            sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            module.load_state_dict(sub, strict=True)

    def _sync_distill_state(self) -> None:
        """In a Runner's training loop, load a value under :data:`DISTILL_STATE_KEY` that this
        model did not publish (a resumed checkpoint's), then publish the live state."""
        state = self.distill_state_dict()
        hub = MessageHub.get_current_instance()
        if not state or hub.get_info('loop_stage') != 'train':
            return
        saved = hub.get_info(DISTILL_STATE_KEY)
        if saved is not None and saved is not self.__dict__.get('_published_distill_state'):
            try:
                self.load_distill_state_dict(saved)
            except RuntimeError as exc:
                raise RuntimeError(
                    'The resumed checkpoint holds distillation-only parameters (feature '
                    'adapters) that do not fit this config\'s distill_losses: resume with the '
                    'config that wrote it, or start a new run with load_from instead of '
                    f'resume ({exc}).') from exc
            self._log(f'Restored {len(saved)} distillation-only tensors (feature adapters) '
                      'from the resumed checkpoint.')
            state = self.distill_state_dict()
        hub.update_info(DISTILL_STATE_KEY, state, resumed=True)
        self.__dict__['_published_distill_state'] = state

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

    def __deepcopy__(self, memo):
        """Copies (e.g. an EMA model) share the frozen teacher instead of duplicating it."""
        teacher = self.__dict__.get('teacher', None)
        if teacher is not None:
            memo[id(teacher)] = teacher
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            object.__setattr__(new, key, copy.deepcopy(value, memo))
        return new

    @staticmethod
    def _log(msg: str) -> None:
        print_log(msg, logger='current')


def _student_type_message(distiller: type, student_type) -> str:
    """The build error for a config that still gives ``model.student_type``."""
    name = f'Distill{student_type}' if isinstance(student_type, str) else None
    found = MODELS.get(name) if name else None
    if found is not None and issubclass(found, DistillerMixin):
        return (f'model.student_type={student_type!r} is gone: the distiller of a '
                f'{student_type} student is its own class; use type={name!r} and remove '
                'student_type.')
    base = distiller.__name__
    return (f'model.student_type={student_type!r} is gone and mmkdcal has no {name or "such"} '
            f'class: remove student_type (type={base!r} distils a plain '
            f'{getattr(distiller.STUDENT_CLASS, "__name__", "model")}), or define the '
            f'distiller of your class X as `@MODELS.register_module() class DistillX({base}, X)` '
            "and use type='DistillX'.")


def _drop_distill_only_keys(module, state_dict, prefix, local_metadata):
    """state_dict hook: the student's state_dict holds no distillation-only entries."""
    for key in [k for k in state_dict
                if any(k.startswith(prefix + p) for p in DISTILL_ONLY_PREFIXES)]:
        del state_dict[key]
    return state_dict


def adopt_legacy_distill_state(checkpoint: dict) -> bool:
    """Move a legacy ``checkpoint['distill_state_dict']`` into its MessageHub state, before
    ``Runner.resume`` loads ``message_hub``.

    Args:
        checkpoint: A checkpoint dict as MMEngine loads it (changed in place).

    Returns:
        bool: Whether there was a legacy entry to move.
    """
    legacy = checkpoint.pop('distill_state_dict', None)
    hub = checkpoint.get('message_hub')
    if not legacy or not isinstance(hub, dict) or 'runtime_info' not in hub:
        return False
    hub['runtime_info'].setdefault(DISTILL_STATE_KEY, dict(legacy))
    hub.setdefault('resumed_keys', {})[DISTILL_STATE_KEY] = True
    return True
