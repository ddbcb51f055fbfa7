"""Input checks and the weighted reduction shared by the distillation losses."""
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from mmdet.models.losses.utils import weight_reduce_loss

__all__ = [
    'check_reduction', 'check_positive', 'check_non_negative', 'check_same_shape',
    'check_ndim', 'check_pair', 'check_weight', 'detach_teacher', 'kl_div',
    'standardise_channels', 'weighted_reduce'
]

_REDUCTIONS = ('none', 'mean', 'sum')


def check_reduction(reduction: str) -> str:
    """Return ``reduction`` if it is ``'none'``, ``'mean'`` or ``'sum'``; raise otherwise."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f'reduction must be one of {_REDUCTIONS}, got {reduction!r}.')
    return reduction


def _check_number(name: str, value: Union[int, float], allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f'{name} must be a number, got {type(value).__name__}.')
    value = float(value)
    ok = value >= 0 if allow_zero else value > 0
    if not (ok and value != float('inf')):
        kind = 'non-negative' if allow_zero else 'positive'
        raise ValueError(f'{name} must be a {kind} finite number, got {value}.')
    return value


def check_positive(name: str, value: Union[int, float]) -> float:
    """``value`` as a float if it is a positive finite number (``name`` for the message)."""
    return _check_number(name, value, allow_zero=False)


def check_non_negative(name: str, value: Union[int, float]) -> float:
    """``value`` as a float if it is a non-negative finite number (``name`` for the message)."""
    return _check_number(name, value, allow_zero=True)


def _check_tensor(name: str, x: Tensor) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f'{name} must be a torch.Tensor, got {type(x).__name__}.')
    if not x.is_floating_point():
        raise TypeError(f'{name} must be a floating-point tensor, got dtype {x.dtype}.')


def check_same_shape(student_name: str, student: Tensor, teacher_name: str,
                     teacher: Tensor) -> None:
    """Check that a student and a teacher tensor are float tensors of one shape."""
    _check_tensor(student_name, student)
    _check_tensor(teacher_name, teacher)
    if student.shape != teacher.shape:
        raise ValueError(
            f'{student_name} and {teacher_name} must have the same shape, got '
            f'{tuple(student.shape)} and {tuple(teacher.shape)}; gather the student and '
            'teacher outputs for the same samples and layout before calling the loss.')


def check_ndim(name: str, x: Tensor, ndim: int, layout: str) -> None:
    """Check that ``x`` is a float tensor of ``ndim`` dims (``layout``, e.g. ``'(M, C)'``)."""
    _check_tensor(name, x)
    if x.dim() != ndim:
        raise ValueError(f'{name} must have shape {layout} ({ndim} dims), got '
                         f'{tuple(x.shape)}.')


def check_pair(what: str, student: Tensor, teacher: Tensor, layout: str) -> None:
    """:func:`check_ndim` on ``student_<what>`` (2 dims), then :func:`check_same_shape`."""
    check_ndim(f'student_{what}', student, 2, layout)
    check_same_shape(f'student_{what}', student, f'teacher_{what}', teacher)


def check_weight(weight: Optional[Tensor], shapes: Sequence[torch.Size]) -> None:
    """Check that an optional weight tensor has one of the allowed ``shapes``."""
    if weight is None:
        return
    if not isinstance(weight, Tensor):
        raise TypeError(f'weight must be a torch.Tensor or None, got {type(weight).__name__}.')
    if weight.shape not in [torch.Size(s) for s in shapes]:
        allowed = ' or '.join(str(tuple(s)) for s in shapes)
        raise ValueError(f'weight must have shape {allowed}, got {tuple(weight.shape)}.')


def detach_teacher(teacher: Tensor, student: Tensor) -> Tensor:
    """The teacher tensor cut from the graph, in the student's dtype (an fp16 teacher may teach
    an fp32 student)."""
    return teacher.detach().to(dtype=student.dtype)


def standardise_channels(feat: Tensor, eps: float = 1e-6) -> Tensor:
    """``(feat - mean_c) / (std_c + eps)`` per channel of an (N, C, H, W) map over (N, H, W),
    population std (``eps``: a constant channel standardises to zeros)."""
    mean = feat.mean(dim=(0, 2, 3), keepdim=True)
    std = feat.var(dim=(0, 2, 3), keepdim=True, unbiased=False).sqrt()
    return (feat - mean) / (std + eps)


def kl_div(log_q: Tensor, log_p: Tensor, dim: int = -1) -> Tensor:
    """``KL(q || p) = sum q (log q - log p)`` over ``dim``, from log-probabilities of the
    target (teacher) ``log_q`` and the prediction (student) ``log_p``."""
    return (log_q.exp() * (log_q - log_p)).sum(dim=dim)


def weighted_reduce(loss: Tensor, weight: Optional[Tensor] = None, reduction: str = 'mean',
                    avg_factor: Optional[Union[float, Tensor]] = None) -> Tensor:
    """Weight per-sample losses and reduce them with MMDetection's ``weight_reduce_loss``.

    Where ours differ from mmdet's, it is decided here: an empty input with ``mean`` gives a
    zero still in the graph (mmdet: NaN); ``avg_factor`` is refused unless
    ``reduction='mean'`` and when negative; ``weight`` is cast to the loss's dtype.

    Args:
        loss: Per-sample (or per-element) losses.
        weight: Weights broadcastable to ``loss``, or None.
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        avg_factor: Normaliser for ``'mean'``, or None.

    Returns:
        Tensor: The reduced loss.
    """
    check_reduction(reduction)
    if weight is not None:
        weight = weight.to(loss.dtype)
    if avg_factor is not None:
        if reduction != 'mean':
            raise ValueError(f'avg_factor is only used with reduction="mean", got '
                             f'reduction={reduction!r}; drop avg_factor or use "mean".')
        if isinstance(avg_factor, Tensor) and avg_factor.is_cuda:
            # checked on the device: reading the value back would sync every training step
            torch._assert_async(avg_factor >= 0, 'avg_factor must be non-negative')
        elif float(avg_factor) < 0:
            raise ValueError(f'avg_factor must be non-negative, got {float(avg_factor)}.')
    elif reduction == 'mean' and loss.numel() == 0:
        return weight_reduce_loss(loss, weight, 'sum')
    return weight_reduce_loss(loss, weight, reduction, avg_factor)
