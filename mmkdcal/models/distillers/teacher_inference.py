"""How the frozen teacher runs: BatchNorm folded into convs, channels-last, precision, compile.

``model.teacher_inference`` is checked against the machine (:func:`resolve_teacher_inference`)
and applied to the loaded teacher (:func:`apply_teacher_inference`): each direct child that
holds weights gets a forward that runs under autocast and hands back fp32, contiguous outputs,
so the distillers' and the calibration pass see the same teacher (docs/teacher_inference.md).
"""
import functools
from typing import Any, Callable, Dict, Optional

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmcv.ops import ModulatedDeformConv2d
from mmengine.logging import print_log

__all__ = ['PRECISIONS', 'TEACHER_INFERENCE_DEFAULTS', 'apply_teacher_inference',
           'resolve_teacher_inference']

#: The teacher's compute precisions and the autocast dtype of each (None: no autocast).
PRECISIONS: Dict[str, Optional[torch.dtype]] = {
    'fp32': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}

#: Settings not given in ``model.teacher_inference``. Folding BatchNorm changes no output beyond
#: fp32 rounding; the rest stays opt-in (see docs/teacher_inference.md for the measurements).
TEACHER_INFERENCE_DEFAULTS: Dict[str, Any] = dict(
    fuse_conv_bn=True, channels_last=False, precision='fp32', compile=False)

FIELD = 'model.teacher_inference'


def _cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX), as PyTorch detects it."""
    probes = ('_is_avx512_bf16_supported', '_is_amx_tile_supported')
    return any(getattr(torch.cpu, p, lambda: False)() for p in probes)


def check_precision(precision: str, cuda: Optional[bool] = None,
                    cpu_bf16: Optional[bool] = None) -> None:
    """Refuse a precision the device this run trains on cannot run fast (``cuda`` and
    ``cpu_bf16`` default to what PyTorch detects)."""
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if precision == 'fp16' and not cuda:
        raise ValueError(
            f"{FIELD}.precision='fp16' needs a CUDA device and this machine has none: PyTorch's "
            "CPU autocast runs few ops in fp16 and has no fast kernels for them. Use 'bf16' on "
            "a CPU with AVX512-BF16/AMX, or 'fp32'.")
    if precision == 'bf16':
        if cuda and not torch.cuda.is_bf16_supported():
            raise ValueError(f"{FIELD}.precision='bf16': this CUDA device does not support "
                             "bf16; use 'fp16' or 'fp32'.")
        native = _cpu_has_native_bf16() if cpu_bf16 is None else cpu_bf16
        if not cuda and not native:
            raise ValueError(
                f"{FIELD}.precision='bf16': this CPU has no native bf16 (AVX512-BF16 or AMX), so "
                "PyTorch would emulate it and the teacher would run slower than in fp32. Use "
                "'fp32' here.")


def resolve_teacher_inference(teacher_inference: Optional[dict],
                              teacher_fp16: Optional[bool] = None) -> Dict[str, Any]:
    """The teacher's full inference settings: :data:`TEACHER_INFERENCE_DEFAULTS` updated by
    ``model.teacher_inference`` (and the retired ``model.teacher_fp16``, with a warning),
    checked."""
    given = dict(teacher_inference or {})
    unknown = sorted(set(given) - set(TEACHER_INFERENCE_DEFAULTS))
    if unknown:
        raise ValueError(f'{FIELD} has unknown keys {unknown}; the keys are '
                         f'{sorted(TEACHER_INFERENCE_DEFAULTS)}.')
    if teacher_fp16 is not None:
        if 'precision' in given:
            raise ValueError(f'model.teacher_fp16 and {FIELD}.precision are both set: remove '
                             'model.teacher_fp16 (it is the old name).')
        print_log(f"model.teacher_fp16 is deprecated: use {FIELD}=dict(precision="
                  f"{'fp16' if teacher_fp16 else 'fp32'!r}).", logger='current', level=30)
        given['precision'] = 'fp16' if teacher_fp16 else 'fp32'
    settings = {**TEACHER_INFERENCE_DEFAULTS, **given}
    for key in ('fuse_conv_bn', 'channels_last', 'compile'):
        if not isinstance(settings[key], bool):
            raise TypeError(f'{FIELD}.{key} must be True or False, got {settings[key]!r}.')
    if settings['precision'] not in PRECISIONS:
        raise ValueError(f'{FIELD}.precision must be one of {sorted(PRECISIONS)}, got '
                         f"{settings['precision']!r}.")
    check_precision(settings['precision'])
    return settings


def apply_teacher_inference(teacher: nn.Module, settings: Dict[str, Any]) -> nn.Module:
    """Fold, lay out and wrap a loaded teacher in place (eval mode, frozen) with the
    :func:`resolve_teacher_inference` ``settings``; return it."""
    teacher.eval()
    if settings['fuse_conv_bn']:
        fold_batchnorm(teacher)
    if settings['channels_last']:
        teacher.to(memory_format=torch.channels_last)
    dtype = PRECISIONS[settings['precision']]
    if dtype is not None or settings['channels_last'] or settings['compile']:
        for name, child in teacher.named_children():
            if name != 'data_preprocessor' and any(True for _ in child.parameters()):
                # mmcv's DCNv2 gives wrong outputs on channels-last tensors, with no error to
                # fall back on (NAS-FCOS's neck and head): a child holding one stays contiguous
                last = settings['channels_last'] and not any(
                    isinstance(m, ModulatedDeformConv2d) for m in child.modules())
                if not last:
                    child.to(memory_format=torch.contiguous_format)
                child.forward = FastForward(child.forward, dtype, last, settings['compile'], name)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def fold_batchnorm(module: nn.Module, shared: Optional[set] = None) -> int:
    """Fold each BatchNorm into the conv registered right before it, where the conv feeds it.

    The BatchNorm becomes an ``nn.Identity``. Only adjacent children with matching channels
    are folded, not in a ``ConvModule`` that normalises first, and never a conv shared by
    several modules (RTMDet's head; ``shared``: their ids); mmcv's ``fuse_conv_bn`` instead
    folds into the last conv seen (docs/teacher_inference.md).

    Returns:
        How many BatchNorms were folded.
    """
    if shared is None:
        seen: Dict[int, int] = {}
        for _, m in module.named_modules(remove_duplicate=False):
            seen[id(m)] = seen.get(id(m), 0) + 1
        shared = {k for k, n in seen.items() if n > 1}
    folded = 0
    children = list(module.named_children())
    norm_first = isinstance(module, ConvModule) and module.order.index('norm') < \
        module.order.index('conv')
    for (_, conv), (name, bn) in zip(children, children[1:]):
        if norm_first or id(conv) in shared or not isinstance(conv, nn.Conv2d) or not isinstance(
                bn, nn.modules.batchnorm._BatchNorm) or bn.running_var is None \
                or bn.num_features != conv.out_channels:
            continue
        with torch.no_grad():
            scale = (bn.running_var + bn.eps).rsqrt()
            if bn.weight is not None:
                scale = scale * bn.weight
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            bias = (bias - bn.running_mean) * scale
            conv.weight = nn.Parameter(conv.weight * scale.reshape(-1, 1, 1, 1))
            conv.bias = nn.Parameter(bias + bn.bias if bn.bias is not None else bias)
        setattr(module, name, nn.Identity())
        folded += 1
    return folded + sum(fold_batchnorm(child, shared) for _, child in module.named_children())


def _to_fp32(x):
    """fp32, contiguous copies of the floating tensors in (nested lists/tuples/dicts of) ``x``."""
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            return x
        return x.to(dtype=torch.float32, memory_format=torch.contiguous_format)
    if isinstance(x, (list, tuple)) and not hasattr(x, '_fields'):
        return type(x)(_to_fp32(v) for v in x)
    if isinstance(x, dict):
        return type(x)((k, _to_fp32(v)) for k, v in x.items())
    return x


class FastForward:
    """The child ``name``'s bound ``forward`` under autocast (``dtype``; None: fp32), with
    channels-last weights and ``torch.compile`` if asked, returning fp32, contiguous outputs. A
    child whose ops have no kernel for the reduced setting logs why and runs in fp32,
    contiguous, from then on; a failed compile runs eagerly."""

    def __init__(self, forward: Callable, dtype: Optional[torch.dtype], channels_last: bool,
                 compile: bool, name: str) -> None:
        self.eager = forward
        self.dtype = dtype
        self.channels_last = channels_last
        self.name = name
        self.compiled: Optional[Callable] = torch.compile(forward) if compile else None
        functools.update_wrapper(self, forward)

    def __call__(self, *args, **kwargs):
        module = self.eager.__self__
        device = next(module.parameters()).device.type
        try:
            return self._run(device, args, kwargs)
        except (RuntimeError, NotImplementedError) as exc:
            if self.dtype is None and not self.channels_last:
                raise
            print_log(f'{FIELD}: the teacher {self.name} cannot run in '
                      f"{'channels-last ' if self.channels_last else ''}"
                      f"{self.dtype or 'fp32'} here ({type(exc).__name__}: {str(exc)[:200]}); "
                      'it runs in fp32, contiguous, from now on.', logger='current', level=30)
            self.dtype, self.channels_last, self.compiled = None, False, None
            module.to(memory_format=torch.contiguous_format)
            return self._run(device, args, kwargs)

    def _run(self, device: str, args, kwargs):
        with torch.autocast(device, dtype=self.dtype or torch.float32,
                            enabled=self.dtype is not None):
            if self.compiled is not None:
                try:
                    return _to_fp32(self.compiled(*args, **kwargs))
                except Exception as exc:  # inductor/dynamo failures: eager from now on
                    print_log(f'{FIELD}.compile: compiling the teacher {self.name} failed '
                              f'({type(exc).__name__}: {str(exc)[:300]}); it runs eagerly.',
                              logger='current', level=30)
                    self.compiled = None
            return _to_fp32(self.eager(*args, **kwargs))
